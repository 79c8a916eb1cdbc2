"""Bugs of the DeepFD benchmark (Cao et al., ICSE 2022; github ArabelaTso/DeepFD,
``Benchmark/Benchmark-with-patches.xlsx``) that are not already in deepmufl.

DeepFD publishes, per StackOverflow question, the ground-truth fault types (act, loss, lr, opt,
missing_prep, ...) and the patch; its repository keeps the full program for two of them
(31556268, 59282996). For the others the port rebuilds the program from the patch's lines (the
layers, loss and optimizer it changes) and a comparable bundled or generated dataset; ``notes``
says what was reconstructed. Fault types that no loss diagnosis can name on its own (too few
epochs, batch size) are left out of ``expected``; bugs whose only fault is of that kind are not
ported.
"""

from __future__ import annotations

import numpy as np
import torch
from bug import Program, Registry
from common import (
    CategoricalCE,
    Flatten,
    Last,
    SparseCE,
    acc_argmax,
    acc_binary,
    act,
    adam,
    bundled,
    classification,
    col,
    conv,
    dense,
    minmax,
    mlp,
    onehot,
    regression,
    rmsprop,
    rng,
    sgd,
    standardize,
    t,
)
from torch import nn

bug = Registry("DeepFD")
BUGS = bug.bugs


@bug("31556268", title="XOR with Keras: the network does not learn",
     symptom="predictions stay near 0.5 after 1000 epochs", cause="mean absolute error on a "
     "sigmoid output for 0/1 labels (the gradient carries s'(z)), SGD at lr 0.05 with momentum "
     "0.11: far too slow (DeepFD: loss, epoch, lr, opt)",
     expected=("mse-on-saturating-output", "lr-too-low", "loss-plateau"), scope="training",
     notes="the program from DeepFD's Subjects/31556268/origin.py (train_test_split keeps 3 of "
           "the 4 XOR rows)")
def so_31556268(fixed: bool) -> Program:
    x = t([[1, 1], [1, 0], [0, 0]])
    y = t([[0], [1], [0]])
    m = mlp(2, (4, "sigmoid"), (1, "sigmoid"))
    return Program(m, x, y, nn.L1Loss(), sgd(m, 0.05, 0.11, True), 4, 300, 2, acc_binary)


@bug("59282996", title="Bidirectional LSTM sequence labelling: accuracy stuck at 0.37",
     symptom="loss and accuracy flat", cause="labels 1/2 plus 0 for padding fed to 3 sigmoid "
     "units with sparse categorical cross-entropy: the padding is learnt as a class, the "
     "outputs are not a distribution (DeepFD: epoch, training data quality, layer properties)",
     expected=("labels-degenerate", "non-probability-into-prob-loss", "loss-task-mismatch"),
     fix="labels 1/2 -> 0/1 and Dense(2) (DeepFD patch); padded steps weigh 0",
     notes="DeepFD's Subjects/59282996/origin.py; its 30 hand-written sequences regenerated "
           "with the same shapes (20 steps x 5 features, zero padding); Masking dropped")
def so_59282996(fixed: bool) -> Program:
    r = rng(0)
    n = 40
    lengths = r.integers(5, 21, n)
    x = r.normal(1.0, 1.2, (n, 20, 5))
    cls = (x[:, :, 0] + x[:, :, 1] > 2).astype(int) + 1
    mask = np.arange(20)[None, :] < lengths[:, None]
    x[~mask] = 0.0
    y = np.where(mask, cls, 0)
    m = nn.Sequential(BiLSTM(5, 20), nn.Dropout(0.2), dense(40, 2 if fixed else 3), nn.Sigmoid())
    if fixed:
        w = t(mask)

        def loss(p: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
            lab, weight = yy[..., 0].long(), yy[..., 1]
            ll = -torch.log((p / p.sum(-1, keepdim=True)).clamp(1e-7, 1)).gather(
                -1, lab.unsqueeze(-1)).squeeze(-1)
            return (ll * weight).sum() / weight.sum()

        yy = torch.stack([t(np.clip(y - 1, 0, 1)), w], -1)
        share = float((t(np.clip(y - 1, 0, 1)) * w).sum() / w.sum())
        return Program(m, t(x), yy, loss, sgd(m, 0.01, 0.9, True), 20, 300, 2,
                       lambda o, yy: ((o.argmax(-1) == yy[..., 0].long()).float() * yy[..., 1]
                                      ).sum().item() / yy[..., 1].sum().item(),
                       max(share, 1 - share))
    return Program(m, t(x), t(y, torch.long), SeqSparseCE(), sgd(m, 0.01, 0.9, True), 20, 100)


class BiLSTM(nn.Module):
    """Keras ``Bidirectional(LSTM(h, return_sequences=True))``."""

    def __init__(self, i: int, h: int) -> None:
        super().__init__()
        self.f, self.b = Last("lstm", i, h, True), Last("lstm", i, h, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.f(x), self.b(x.flip(1)).flip(1)], -1)


class SeqSparseCE(nn.Module):
    """Keras sparse categorical cross-entropy over (batch, steps, classes) probabilities."""

    def forward(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return SparseCE()(p.reshape(-1, p.shape[-1]), y.reshape(-1))


@bug("38648195", title="binary classifier with softmax and MSE: accuracy constant",
     symptom="accuracy does not change", cause="softmax on the single output unit (always 1) "
     "with mean squared error (DeepFD: act, loss, epoch)", expected=("loss-degenerate",),
     fix="sigmoid output + binary_crossentropy (DeepFD patch)",
     notes="reconstructed from the patch: Dense(1) + Activation('softmax'), MSE, SGD; data "
           "make_classification(1000, 20)")
def so_38648195(fixed: bool) -> Program:
    x, y = classification(1000, 20)
    m = mlp(20, (64, "relu"), (64, "relu"), (1, "sigmoid" if fixed else "softmax"))
    loss = nn.BCELoss() if fixed else nn.MSELoss()
    return Program(m, x, col(y), loss, sgd(m), 32, 300, 2, acc_binary)


@bug("39525358", title="binary classifier without an output activation, unscaled inputs",
     symptom="accuracy stuck", cause="no sigmoid on the output unit with binary_crossentropy, "
     "features unscaled (DeepFD: act, lr, missing_prep)",
     expected=("non-probability-into-prob-loss", "input-not-normalized"),
     fix="StandardScaler + Activation('sigmoid') (DeepFD patch; Adam default lr kept)",
     notes="reconstructed: breast-cancer features (raw, up to ~4000), Dense(12)-Dense(1)")
def so_39525358(fixed: bool) -> Program:
    x, y = bundled("breast_cancer")
    if fixed:
        x = standardize(x)
    m = mlp(30, (12, "relu"), (1, "sigmoid" if fixed else "linear"))
    return Program(m, x, col(y), nn.BCELoss(), adam(m), 32, 300, 2, acc_binary)


@bug("48934338", title="regression loss becomes nan with SGD(lr=0.1)",
     symptom="loss nan after a few steps", cause="learning rate 0.1 on an unscaled regression "
     "(DeepFD: lr)", expected=("lr-too-high", "nonfinite", "loss-diverging"),
     fix="SGD(lr=0.0001) (DeepFD patch)",
     notes="reconstructed: make_regression(1000, 10) (targets of size ~100, unscaled), "
           "Dense(10, relu)-Dense(1)")
def so_48934338(fixed: bool) -> Program:
    x, y = regression(1000, 10)
    m = mlp(10, (10, "relu"), (1, "linear"))
    return Program(m, x, y, nn.MSELoss(), sgd(m, 1e-4 if fixed else 0.1), 32, 300)


@bug("47724077", title="multi-class MLP on unscaled features: accuracy low",
     symptom="accuracy near chance", cause="features unscaled (DeepFD: opt, lr, missing_prep, "
     "epoch)", expected=("input-not-normalized",),
     fix="StandardScaler, Adam lr 0.01 (DeepFD patch)",
     notes="reconstructed: wine (13 raw features up to 1680), softmax MLP")
def so_47724077(fixed: bool) -> Program:
    x, y = bundled("wine")
    if fixed:
        x = standardize(x)
    m = mlp(13, (32, "relu"), (16, "relu"), (3, "softmax"))
    return Program(m, x, onehot(y, 3), CategoricalCE(), adam(m, 0.01 if fixed else 1e-3), 32,
                   300, 3, acc_argmax)


@bug("59325381", title="MNIST: labels divided by 255 instead of the test images",
     symptom="accuracy ~10%", cause="y_train = y_train / 255: sparse labels become fractions "
     "that the loss casts to class 0, every sample has the same label (DeepFD: loss, "
     "wrong_prep)", expected=("labels-degenerate", "labels-out-of-range"),
     fix="x_test = x_test / 255 (DeepFD patch)", notes="MNIST -> sklearn digits / 16")
def so_59325381(fixed: bool) -> Program:
    x, y = bundled("digits")
    yy = y if fixed else y.float() / 255
    m = nn.Sequential(Flatten(), dense(64, 128), nn.ReLU(), dense(128, 10), act("softmax"))
    return Program(m, (x / 16).reshape(-1, 8, 8), yy, SparseCE(), adam(m), 32, 300, 10,
                   acc_argmax)


@bug("52800582", title="1-D regression does not fit", symptom="predictions flat",
     cause="inputs and targets unscaled (DeepFD: missing_prep)",
     expected=("input-not-normalized",), fix="StandardScaler on x and y (DeepFD patch)",
     notes="reconstructed: x in [0, 1000], y = 3x + noise, Dense(32, relu)-Dense(1)")
def so_52800582(fixed: bool) -> Program:
    r = rng(0)
    x = t(r.uniform(0, 1000, (500, 1)))
    y = 3 * x + t(r.normal(0, 50, (500, 1)))
    if fixed:
        x, y = standardize(x), standardize(y)
    m = mlp(1, (32, "relu"), (32, "relu"), (1, "linear"))
    return Program(m, x, y, nn.MSELoss(), adam(m), 32, 300)


@bug("50079585", title="3 classes with one sigmoid unit and BCE", symptom="accuracy stuck",
     cause="three-class labels fed to Dense(1) + sigmoid with binary_crossentropy (DeepFD: "
     "epoch, lr, act, loss, layer properties)",
     expected=("labels-out-of-range", "head-label-mismatch", "loss-task-mismatch"),
     fix="Dense(3) + softmax + categorical_crossentropy, RMSprop(0.005) (DeepFD patch)",
     notes="reconstructed: iris (standardised), Dense(64, relu) hidden layer")
def so_50079585(fixed: bool) -> Program:
    x, y = bundled("iris")
    x = standardize(x)
    m = mlp(4, (64, "relu"), (3, "softmax") if fixed else (1, "sigmoid"))
    if fixed:
        return Program(m, x, onehot(y, 3), CategoricalCE(), rmsprop(m, 0.005), 32, 300, 3,
                       acc_argmax)
    return Program(m, x, col(y), nn.BCELoss(), rmsprop(m), 32, 100)


@bug("45337371", title="multi-label classifier with softmax output",
     symptom="only one label ever predicted", cause="softmax over 10 independent labels with "
     "binary cross-entropy: the outputs must sum to 1 while the targets hold several 1s "
     "(DeepFD: act)", expected=("loss-task-mismatch", "output-range-mismatch"),
     fix="Dense(10, activation='sigmoid') (DeepFD patch)",
     notes="reconstructed: make_multilabel_classification(1000, 20, 10 labels)")
def so_45337371(fixed: bool) -> Program:
    from sklearn.datasets import make_multilabel_classification
    x, y = make_multilabel_classification(1000, 20, n_classes=10, random_state=0)
    x, y = standardize(t(x)), t(y)
    m = mlp(20, (64, "relu"), (10, "sigmoid" if fixed else "softmax"))
    return Program(m, x, y, nn.BCELoss(), adam(m), 32, 300, 2,
                   lambda o, yy: ((o > 0.5).float() == yy).float().mean().item())


@bug("44066044", title="binary classifier on unscaled features: accuracy constant",
     symptom="accuracy stuck at the majority share", cause="features unscaled (DeepFD: "
     "missing_prep)", expected=("input-not-normalized",),
     fix="X = preprocessing.scale(X) (DeepFD patch)",
     notes="reconstructed: breast-cancer features (raw), normal-initialised MLP")
def so_44066044(fixed: bool) -> Program:
    x, y = bundled("breast_cancer")
    if fixed:
        x = standardize(x)
    m = mlp(30, (30, "relu", "normal"), (1, "sigmoid", "normal"))
    return Program(m, x, col(y), nn.BCELoss(), adam(m), 32, 300, 2, acc_binary)


@bug("47352366", title="MNIST with a ReLU output layer", symptom="accuracy stuck",
     cause="Dense(10, activation='relu') as the output with categorical cross-entropy (DeepFD: "
     "act, epoch)", expected=("non-probability-into-prob-loss", "dead-relu", "log-of-zero"),
     fix="Dense(10, activation='softmax') (DeepFD patch)", notes="MNIST -> sklearn digits / 16")
def so_47352366(fixed: bool) -> Program:
    x, y = bundled("digits")
    m = mlp(64, (128, "relu"), (10, "softmax" if fixed else "relu"))
    return Program(m, x / 16, onehot(y, 10), CategoricalCE(), adam(m), 50, 300, 10, acc_argmax)


@bug("58609115", title="cats vs dogs CNN: accuracy 50% with categorical_crossentropy",
     symptom="loss 0 / accuracy 50%", cause="Dense(1, sigmoid) with categorical_crossentropy: "
     "one class, loss identically 0 (DeepFD: loss)",
     expected=("loss-degenerate", "head-label-mismatch"),
     fix="binary_crossentropy (DeepFD patch)",
     notes="reconstructed: the Keras cats/dogs CNN on generated 3x32x32 images")
def so_58609115(fixed: bool) -> Program:
    x, y = classification(400, 3 * 32 * 32)
    m = nn.Sequential(conv(2, 3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), conv(2, 32, 32, 3),
                      nn.ReLU(), nn.MaxPool2d(2), Flatten(), dense(32 * 6 * 6, 128), nn.ReLU(),
                      dense(128, 1), nn.Sigmoid())
    loss = nn.BCELoss() if fixed else CategoricalCE()
    return Program(m, x.reshape(-1, 3, 32, 32), col(y), loss, adam(m), 32, 200, 2, acc_binary)


@bug("39810655", title="categorical_crossentropy on integer labels",
     symptom="shape error / wrong accuracy", cause="integer class labels given to "
     "categorical_crossentropy, which expects one-hot rows (DeepFD: loss)",
     expected=("head-label-mismatch", "loss-task-mismatch", "labels-out-of-range"),
     fix="sparse_categorical_crossentropy (DeepFD patch)", notes="reconstructed on digits")
def so_39810655(fixed: bool) -> Program:
    x, y = bundled("digits")
    m = mlp(64, (64, "relu"), (10, "softmax"))
    loss = SparseCE() if fixed else CategoricalCE()
    return Program(m, x / 16, y, loss, adam(m), 32, 300, 10, acc_argmax)


@bug("42514960", title="autoencoder: accuracy does not increase",
     symptom="reconstruction loss stuck", cause="a sigmoid reconstruction layer for data "
     "scaled to [-1, 1]: the negative half is unreachable (DeepFD: act; patch: tanh)",
     expected=("output-range-mismatch",), fix="tanh layers and output (DeepFD patch)",
     notes="reconstructed: 30 features min-max scaled to [-1, 1], bottleneck 8")
def so_42514960(fixed: bool) -> Program:
    x, _ = bundled("breast_cancer")
    x = minmax(x, -1, 1)
    a = "tanh" if fixed else "relu"
    m = mlp(30, (60, a), (60, a), (8, a), (60, a), (60, a), (30, "tanh" if fixed else "sigmoid"))
    return Program(m, x, x, nn.MSELoss(), adam(m), 32, 300)


@bug("42800203", title="binary classifier with Dense(1, softmax)",
     symptom="accuracy constant", cause="softmax over a single output unit (always 1) "
     "(DeepFD: act)", expected=("loss-degenerate",),
     fix="Dense(1, activation='sigmoid') (DeepFD patch)",
     notes="reconstructed: make_classification(1000, 8), Dense(16, relu)")
def so_42800203(fixed: bool) -> Program:
    x, y = classification(1000, 8)
    m = mlp(8, (16, "relu"), (1, "sigmoid" if fixed else "softmax"))
    return Program(m, x, col(y), nn.BCELoss(), adam(m), 32, 300, 2, acc_binary)


@bug("46642627", title="regression trained with binary_crossentropy on unscaled targets",
     symptom="loss negative, predictions wrong", cause="binary cross-entropy on continuous "
     "targets in the hundreds, inputs unscaled, SGD (DeepFD: opt, lr, loss, missing_prep)",
     expected=("labels-out-of-range", "loss-task-mismatch", "input-not-normalized"),
     fix="scale X and Y, MSE, Adam (DeepFD patch)",
     notes="reconstructed: diabetes raw features and targets, sigmoid output")
def so_46642627(fixed: bool) -> Program:
    x, y = diabetes_raw()
    if fixed:
        x, y = (x - x.max(0).values) / x.max(0).values, (y - y.max()) / y.max()
    m = mlp(10, (16, "relu"), (1, "linear" if fixed else "sigmoid"))
    loss = nn.MSELoss() if fixed else nn.BCELoss()
    return Program(m, x, y, loss, adam(m) if fixed else sgd(m), 32, 300)


@bug("46995209", title="deep narrow ReLU stack on unscaled inputs: predictions constant",
     symptom="the same prediction for every input", cause="unscaled inputs into a tanh layer "
     "followed by nine 10-unit ReLU layers: saturated first layer, dead ReLUs (DeepFD: act, "
     "missing_prep, layer properties, layers)",
     expected=("input-not-normalized", "saturation", "dead-relu", "grad-vanishing"),
     fix="X scaled, two ReLU layers (DeepFD patch)",
     notes="reconstructed: diabetes raw features, regression target standardised")
def so_46995209(fixed: bool) -> Program:
    x, y = diabetes_raw()
    y = standardize(y)
    if fixed:
        x = (x - x.max(0).values) / x.max(0).values
        m = mlp(10, (10, "relu"), (25, "relu"), (1, "linear"))
    else:
        m = mlp(10, (10, "tanh"), (90, "tanh"), *[(10, "relu")] * 9, (1, "linear"))
    return Program(m, x, y, nn.MSELoss(), adam(m), 32, 300)


@bug("47932589", title="regression on unscaled data: loss huge", symptom="loss in the "
     "thousands, predictions flat", cause="inputs and targets not scaled (DeepFD: "
     "missing_prep)", expected=("input-not-normalized",),
     fix="min-max scale x and y (DeepFD patch)",
     notes="reconstructed: diabetes raw features and targets, Dense(64, relu) x 2")
def so_47932589(fixed: bool) -> Program:
    x, y = diabetes_raw()
    if fixed:
        x, y = minmax(x), minmax(y)
    m = mlp(10, (64, "relu"), (64, "relu"), (1, "linear"))
    return Program(m, x, y, nn.MSELoss(), adam(m), 32, 300)


@bug("FacialKeypointsDetection", title="facial keypoints CNN with Adam(lr=0.1)",
     symptom="loss explodes / stays huge", cause="Adam at lr 0.1 (DeepFD: opt, epoch)",
     expected=("lr-too-high", "loss-diverging", "loss-oscillating", "nonfinite"),
     notes="reconstructed: 1x16x16 generated images, 30 keypoint "
     "coordinates as a linear function of the pixels, scaled to [-1, 1]")
def so_facial(fixed: bool) -> Program:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(500, 1, 16, 16, generator=g)
    w = torch.randn(256, 30, generator=g) / 16
    y = torch.tanh(x.reshape(500, -1) @ w - (x.reshape(500, -1) @ w).mean(0))
    m = nn.Sequential(conv(2, 1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), conv(2, 32, 64, 2),
                      nn.ReLU(), nn.MaxPool2d(2), Flatten(), dense(64 * 3 * 3, 500), nn.ReLU(),
                      dense(500, 30))
    opt = adam(m, 0.1)
    return Program(m, x, y, nn.MSELoss(), opt, 32, 300)


def diabetes_raw() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's diabetes data unscaled (age in years, BMI, blood pressure...)."""
    from sklearn.datasets import load_diabetes
    x, y = load_diabetes(return_X_y=True, scaled=False)
    perm = np.random.default_rng(0).permutation(len(y))
    return t(x[perm]), t(y[perm]).reshape(-1, 1)
