"""Bugs of Defects4ML (Morovati et al., EMSE 2023; github mohmehmo/defects4ml,
``bugs/<n>/{buggy,fixed}``, ``conf.ini`` with the root cause) that are loss or optimisation
faults and not already in deepmufl or DeepFD. Most Defects4ML bugs are crashes from API misuse
or shapes (out of lossdoctor's scope) or duplicates of deepmufl's StackOverflow programs.

MNIST is replaced by scikit-learn's digits scaled to [0, 1] (the originals' input pipeline
scales MNIST to [0, 1] too).
"""

from __future__ import annotations

import torch
from bug import Program, Registry
from common import (
    CategoricalCE,
    Flatten,
    acc_argmax,
    act,
    adam,
    bundled,
    conv,
    dense,
    onehot,
    sgd,
)
from torch import nn

bug = Registry("Defects4ML")
BUGS = bug.bugs


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = bundled("digits")
    return x / 16.0, y


def elementwise_xent(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``-reduce_mean(y * log(p) + (1 - y) * log(1 - p))``, written by hand."""
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


def clipped_xent(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The same with ``tf.clip_by_value(., 1e-10, inf)`` inside both logs."""
    return -(y * torch.log(p.clamp(min=1e-10)) + (1 - y) * torch.log((1 - p).clamp(min=1e-10))
             ).mean()


class SoftmaxRegression(nn.Module):
    """``softmax(x W + b)`` with zero-initialised W and b."""

    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d, k)
        nn.init.zeros_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.lin(x), -1)


@bug("003", title="Deep-Learning-TensorFlow 726b371: logistic regression loss becomes NaN",
     symptom="training loss NaN after a number of iterations", cause="a hand-written "
     "element-wise cross-entropy takes log(p) and log(1 - p) of softmax outputs without a clip: "
     "once a probability saturates to 0 or 1 the loss is NaN (Defects4ML: wrong loss function "
     "calculation)", expected=("log-of-zero", "nonfinite"), scope="training",
     fix="tf.clip_by_value(., 1e-10, inf) inside both logs (the commit)",
     notes="models/logistic_regression.py with run_logistic_regression.py's defaults: zero "
           "init, Adam 0.01, batch 10; MNIST -> digits")
def d4ml_003(fixed: bool) -> Program:
    x, y = digits()
    m = SoftmaxRegression(64, 10)
    loss = clipped_xent if fixed else elementwise_xent
    # the NaN needs a saturated softmax: step 3408 here (10 MNIST epochs are 60,000 steps)
    return Program(m, x, onehot(y, 10), loss, adam(m, 0.01), 10, 300 if fixed else 4000, 10,
                   acc_argmax)


@bug("005", title="Deep-Learning-TensorFlow 1bcc1ef: DBN fine-tuning stuck at 10% accuracy",
     symptom="accuracy near 10%", cause="the fine-tuning cross-entropy (clip + log of p and of "
     "1 - p) is applied to the last layer's raw linear outputs: no softmax, so the values are "
     "not probabilities (Defects4ML: missing API call; Defects4ML 004 is the same fix in the "
     "library's stacked-autoencoder path)",
     expected=("non-probability-into-prob-loss", "log-of-zero"),
     fix="model_output = tf.nn.softmax(model_output) before the loss (the commit)",
     notes="run_dbn.py's fine-tuning network (784-256 ReLU-10, gradient descent lr 0.01, batch "
           "10) without the RBM pre-training; MNIST -> digits")
def d4ml_005(fixed: bool) -> Program:
    x, y = digits()
    m = nn.Sequential(dense(64, 256), nn.ReLU(), dense(256, 10),
                      *([act("softmax")] if fixed else []))
    return Program(m, x, onehot(y, 10), clipped_xent, sgd(m, 0.01), 10, 600, 10, acc_argmax)


@bug("091", title="StackOverflow 56103207: Keras CNN accuracy stays near 0",
     symptom="validation accuracy near 0", cause="the data is sorted by class and never "
     "shuffled: every batch (and Keras' validation_split tail) holds a single class "
     "(Defects4ML: missing preprocessing)", expected=("labels-degenerate",),
     fix="shuffle x and y with one permutation before fit (the answer)",
     notes="the question's x.npy/y.npy (5 classes, 28x28) -> digits 0-4 sorted by class "
           "(8x8, so the convolutions pad)")
def d4ml_091(fixed: bool) -> Program:
    x, y = digits()
    keep = y < 5
    x, y = x[keep], y[keep]
    order = torch.argsort(y, stable=True)
    if fixed:
        order = order[torch.randperm(len(order), generator=torch.Generator().manual_seed(0))]
    x, y = x[order].reshape(-1, 1, 8, 8), y[order]
    m = nn.Sequential(conv(2, 1, 32, 5, same=True), nn.ReLU(), nn.MaxPool2d(2),
                      conv(2, 32, 16, 3, same=True), nn.ReLU(), nn.MaxPool2d(2), Flatten(),
                      dense(64, 128), nn.ReLU(), dense(128, 64), nn.ReLU(), dense(64, 5),
                      act("softmax"))
    return Program(m, x, onehot(y, 5), CategoricalCE(), adam(m), 100, 150, 5, acc_argmax)
