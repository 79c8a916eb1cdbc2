"""Bugs of the deepmufl benchmark (Ghanbari et al., ASE 2023; github ali-ghanbari/deepmufl-ase-2023,
``Dataset/all-bugs/<StackOverflow question>/bug.py``): 109 Keras programs from StackOverflow,
reduced by the benchmark's authors to generated data (mostly ``make_classification``).

The benchmark ships the programs but no root-cause labels; ``cause`` is the accepted answer of the
question (and, for the 30 bugs also in DeepFD, DeepFD's ground-truth fault types). Where the
reduced program's root cause is not something a loss diagnosis can name (missing ``fit``, a
model that is simply too small, train/eval disparity), ``expected`` is empty and the bug is
listed but not scored.

Sizes: inputs larger than a few thousand features are shrunk (say so in ``notes``); the
architecture, activations, init, loss, optimizer and learning rate are the original's.
"""

from __future__ import annotations

import numpy as np
import torch
from bug import Program, Registry
from common import (
    MAPE,
    CategoricalCE,
    CategoricalCEFromLogits,
    Flatten,
    GlobalAvg,
    GlobalMax,
    Last,
    LogCosh,
    Permute,
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
    nadam,
    onehot,
    poisson,
    regression,
    rmsprop,
    rng,
    sgd,
    standardize,
    t,
)
from torch import nn

bug = Registry("deepmufl")
BUGS = bug.bugs

SOFTMAX1 = "softmax over a single output unit is constantly 1: the loss is constant and every " \
           "gradient is exactly zero, the network cannot learn"
SIGMOID_CCE = "sigmoid outputs into categorical cross-entropy: the K outputs are not a " \
              "distribution (Keras renormalises them), so the loss does not push the classes " \
              "apart the way softmax does"
FIX_SIGMOID = "Dense(1, activation='sigmoid') instead of softmax (accepted answer)"
FIX_SOFTMAX = "activation='softmax' on the output layer (accepted answer)"


def binary_head(d_in: int, *hidden: tuple, head: str, init: str = "glorot_uniform"
                ) -> nn.Sequential:
    """An MLP ending in one unit with activation ``head``."""
    return mlp(d_in, *hidden, (1, head), init=init)


def bce_program(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: str = "adam",
                lr: float | None = None, bs: int = 32, steps: int = 150) -> Program:
    """Binary labels, ``binary_crossentropy`` on a one-unit probability."""
    o = {"adam": adam, "sgd": sgd, "rmsprop": rmsprop, "nadam": nadam}[opt]
    optimizer = o(model) if lr is None else o(model, lr)
    return Program(model, x, col(y), nn.BCELoss(), optimizer, bs, steps, 2, acc_binary)


# ------------------------------------------------------------------ softmax on one unit + BCE


@bug("31880720", title="Keras: model.predict for a binary classifier always returns 1",
     symptom="accuracy stays at 50%, predictions all 1", cause=SOFTMAX1,
     expected=("loss-degenerate",), fix=FIX_SIGMOID)
def so_31880720(fixed: bool) -> Program:
    x = torch.cat([torch.ones(1000, 128), torch.zeros(1000, 128)])
    y = torch.cat([torch.ones(1000), torch.zeros(1000)])
    perm = torch.randperm(2000, generator=torch.Generator().manual_seed(0))
    m = mlp(128, (128, "relu"), ("dropout", 0.2), (50, "relu"), ("dropout", 0.2),
            (1, "sigmoid" if fixed else "softmax"))
    return Program(m, x[perm], col(y[perm]), nn.BCELoss(), rmsprop(m), 24, 100, 2, acc_binary)


@bug("45378493", title="Conv1D binary classifier: accuracy stuck", symptom="accuracy constant",
     cause=SOFTMAX1, expected=("loss-degenerate",), fix=FIX_SIGMOID)
def so_45378493(fixed: bool) -> Program:
    x, y = classification(600, 40)
    m = nn.Sequential(Permute(0, 2, 1), conv(1, 4, 16, 4, same=True), nn.BatchNorm1d(16),
                      nn.LeakyReLU(0.3), nn.Dropout(0.2), conv(1, 16, 8, 4, same=True),
                      nn.BatchNorm1d(8), nn.LeakyReLU(0.3), nn.Dropout(0.2), Flatten(),
                      dense(8 * 10, 64), nn.BatchNorm1d(64), nn.LeakyReLU(0.3), dense(64, 1),
                      act("sigmoid" if fixed else "softmax"))
    return bce_program(m, x.reshape(-1, 10, 4), y, bs=128)


@bug("47241622", title="LSTM binary classifier stuck at 50%", symptom="accuracy 0.5",
     cause=SOFTMAX1, expected=("loss-degenerate",), fix=FIX_SIGMOID,
     notes="50000x128 sequences shrunk to 2000x32, LSTM 128 -> 32 units")
def so_47241622(fixed: bool) -> Program:
    x, y = classification(2000, 32)
    m = nn.Sequential(Last("lstm", 1, 32), dense(32, 1), act("sigmoid" if fixed else "softmax"))
    return bce_program(m, x.reshape(-1, 32, 1), y, bs=200, steps=80)


@bug("47704695", title="CNN binary classification: loss not decreasing",
     symptom="loss and accuracy constant", cause=SOFTMAX1, expected=("loss-degenerate",),
     notes="128x128x3 images shrunk to 32x32x3 (4 of the 6 pooling stages kept), 500 -> 200")
def so_47704695(fixed: bool) -> Program:
    x, y = classification(200, 3 * 32 * 32)
    c = [conv(2, 3, 16, 5, same=True), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.5),
         conv(2, 16, 32, 3, same=True), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.5),
         conv(2, 32, 32, 3, same=True), nn.ReLU(), nn.Dropout(0.5),
         conv(2, 32, 64, 3, same=True), nn.ReLU(), conv(2, 64, 64, 3, same=True), nn.ReLU(),
         nn.MaxPool2d(2), conv(2, 64, 128, 3, same=True), nn.ReLU(), nn.MaxPool2d(2),
         Flatten(), nn.Dropout(0.5), dense(128 * 2 * 2, 1), act("softmax")]
    m = nn.Sequential(*c)
    return bce_program(m, x.reshape(-1, 3, 32, 32), y)


@bug("51581521", title="VGG16 transfer learning: binary accuracy stuck at 50%",
     symptom="accuracy 0.5 for 50 epochs", cause=SOFTMAX1, expected=("loss-degenerate",),
     fix=FIX_SIGMOID,
     notes="frozen ImageNet VGG16 replaced by a frozen random 2-conv base (no download); "
           "150x150 -> 32x32")
def so_51581521(fixed: bool) -> Program:
    x, y = classification(200, 3 * 32 * 32)
    base = nn.Sequential(conv(2, 3, 16, 3, same=True), nn.ReLU(), nn.MaxPool2d(2),
                         conv(2, 16, 16, 3, same=True), nn.ReLU(), nn.MaxPool2d(2))
    for p in base.parameters():
        p.requires_grad_(False)
    m = nn.Sequential(base, Flatten(), dense(16 * 8 * 8, 256), nn.ReLU(), nn.Dropout(0.5),
                      dense(256, 1), act("sigmoid" if fixed else "softmax"))
    return bce_program(m, x.reshape(-1, 3, 32, 32), y, bs=64)


@bug("51749207", title="Conv1D: accuracy does not change", symptom="accuracy constant",
     cause=SOFTMAX1, expected=("loss-degenerate",), fix=FIX_SIGMOID)
def so_51749207(fixed: bool) -> Program:
    x, y = classification(549, 600)
    m = nn.Sequential(Permute(0, 2, 1), conv(1, 1, 20, 4, same=True), nn.ReLU(),
                      nn.MaxPool1d(2), nn.Dropout(0.3), Flatten(), dense(20 * 300, 50),
                      nn.ReLU(), dense(50, 1), act("sigmoid" if fixed else "softmax"))
    return bce_program(m, x[91:].reshape(-1, 600, 1), y[91:], opt="nadam", bs=8)


@bug("52983831", title="GRU sequence labelling with softmax: accuracy stuck",
     symptom="loss constant over 3000 epochs", cause=SOFTMAX1, expected=("loss-degenerate",))
def so_52983831(fixed: bool) -> Program:
    x = t([[[0], [0], [0], [1], [1], [0], [1], [1]]])
    y = t([[[0], [0], [0], [1], [0], [1], [1], [0]]])
    m = nn.Sequential(Last("gru", 1, 10, True), Last("gru", 10, 10, True), dense(10, 1),
                      act("softmax"))
    return Program(m, x, y, nn.BCELoss(), adam(m), 32, 100)


@bug("57397440", title="breast cancer classifier: accuracy stuck at 37%",
     symptom="accuracy equals the negative share", cause=SOFTMAX1,
     expected=("loss-degenerate",), fix=FIX_SIGMOID)
def so_57397440(fixed: bool) -> Program:
    x, y = bundled("breast_cancer")
    m = nn.Sequential(dense(30, 30), nn.ReLU(), nn.BatchNorm1d(30, eps=1e-3, momentum=0.01),
                      dense(30, 60), nn.ReLU(), nn.BatchNorm1d(60, eps=1e-3, momentum=0.01),
                      dense(60, 1), act("sigmoid" if fixed else "softmax"))
    return bce_program(m, x, y)


@bug("58055105", title="binary classifier: val accuracy constant", symptom="accuracy constant",
     cause=SOFTMAX1, expected=("loss-degenerate",), fix=FIX_SIGMOID)
def so_58055105(fixed: bool) -> Program:
    x, y = classification(670, 22)
    m = binary_head(22, (48, "relu"), ("dropout", 0.5), head="sigmoid" if fixed else "softmax")
    return bce_program(m, x, y, lr=1e-4 if not fixed else 1e-3, bs=5, steps=300)


@bug("58392266", title="VGG16 fine-tuning: accuracy stuck", symptom="accuracy 0.5",
     cause=SOFTMAX1, expected=("loss-degenerate",),
     notes="frozen VGG16 replaced by a frozen random conv base; 57x57 -> 32x32")
def so_58392266(fixed: bool) -> Program:
    x, y = classification(100, 3 * 32 * 32)
    base = nn.Sequential(conv(2, 3, 16, 3, same=True), nn.ReLU(), nn.MaxPool2d(4))
    for p in base.parameters():
        p.requires_grad_(False)
    m = nn.Sequential(base, Flatten(), dense(16 * 8 * 8, 512), nn.ReLU(), dense(512, 128),
                      nn.ReLU(), dense(128, 1), act("softmax"))
    return bce_program(m, x.reshape(-1, 3, 32, 32), y, lr=1e-5)


@bug("58844149", title="AlexNet-like CNN binary: accuracy 50%", symptom="accuracy constant",
     cause=SOFTMAX1, expected=("loss-degenerate",), fix=FIX_SIGMOID,
     notes="30x30 inputs -> 16x16")
def so_58844149(fixed: bool) -> Program:
    x, y = classification(1000, 256)
    m = nn.Sequential(conv(2, 1, 96, 11, same=True), nn.ReLU(), nn.MaxPool2d(3, 2),
                      conv(2, 96, 128, 3, same=True), nn.ReLU(), nn.MaxPool2d(2, 2),
                      conv(2, 128, 128, 3, same=True), nn.ReLU(), nn.MaxPool2d(2, 2),
                      Flatten(), dense(128 * 1 * 1, 300), nn.ReLU(), nn.Dropout(0.2),
                      dense(300, 1), act("sigmoid" if fixed else "softmax"))
    return bce_program(m, x.reshape(-1, 1, 16, 16), y, steps=200)


@bug("60355380", title="CNN on 5x5 inputs: accuracy constant", symptom="accuracy 0.5",
     cause=SOFTMAX1, expected=("loss-degenerate",), fix=FIX_SIGMOID)
def so_60355380(fixed: bool) -> Program:
    x, y = classification(670, 25)
    layers = [conv(2, 1, 32, 3, same=True), nn.ReLU(), conv(2, 32, 32, 3), nn.ReLU(),
              nn.MaxPool2d(2, ceil_mode=True)]
    cin = 32
    for _ in range(2):
        layers += [conv(2, cin, 128, 3, same=True), nn.ReLU()]
        cin = 128
    layers += [nn.MaxPool2d(2, ceil_mode=True)]
    for _ in range(2):
        layers += [conv(2, 128, 128, 3, same=True), nn.ReLU()]
    layers += [nn.MaxPool2d(2, ceil_mode=True), Flatten(), dense(128, 128), nn.ReLU(),
               dense(128, 64), nn.ReLU(), dense(64, 32), nn.ReLU(), dense(32, 1),
               act("sigmoid" if fixed else "softmax")]
    m = nn.Sequential(*layers)
    return bce_program(m, x.reshape(-1, 1, 5, 5), y)


@bug("65669308", title="text classifier with Embedding: accuracy stuck",
     symptom="accuracy constant", cause=SOFTMAX1, expected=("loss-degenerate",),
     fix=FIX_SIGMOID, notes="the tokenised text replaced by generated token ids whose label "
                            "depends on a token's presence")
def so_65669308(fixed: bool) -> Program:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 100, (400, 10), generator=g)
    y = (x == 7).any(1) | (x < 20).sum(1).ge(2)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, 24)
            nn.init.uniform_(self.emb.weight, -0.05, 0.05)
            self.head = nn.Sequential(dense(24, 24), nn.ReLU(), dense(24, 1),
                                      act("sigmoid" if fixed else "softmax"))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.emb(x).mean(1))

    m = Net()
    return bce_program(m, x, y.long(), steps=300)


@bug("66087653", title="Dense on 3-D input: accuracy stuck", symptom="accuracy 0.5",
     cause=SOFTMAX1, expected=("loss-degenerate",), fix=FIX_SIGMOID)
def so_66087653(fixed: bool) -> Program:
    x, y = classification(1000, 1500)
    m = nn.Sequential(dense(150, 32), nn.ReLU(), Flatten(), dense(320, 128), nn.ReLU(),
                      nn.Dropout(0.2), dense(128, 128), nn.ReLU(), dense(128, 1),
                      act("sigmoid" if fixed else "softmax"))
    return bce_program(m, x.reshape(-1, 10, 150), y, bs=2, steps=300)


@bug("66407123", title="binary classifier with SGD: accuracy constant",
     symptom="accuracy constant", cause=SOFTMAX1, expected=("loss-degenerate",), fix=FIX_SIGMOID)
def so_66407123(fixed: bool) -> Program:
    x, y = classification(900, 5)
    m = binary_head(5, (32, "relu"), (32, "relu"), head="sigmoid" if fixed else "softmax")
    return bce_program(m, x, y, opt="sgd", bs=64, steps=300)


@bug("70148149", title="Conv1D + GlobalMaxPooling: accuracy 50%", symptom="accuracy 0.5",
     cause=SOFTMAX1 + "; one-hot (N, 2) labels against the one unit",
     expected=("loss-degenerate", "head-label-mismatch"),
     notes="560x560 -> 56x56, 320 filters -> 32, Dense 1500/750 -> 150/75")
def so_70148149(fixed: bool) -> Program:
    x, y = classification(100, 56 * 56)
    m = nn.Sequential(Permute(0, 2, 1), conv(1, 56, 32, 8), Permute(0, 2, 1), dense(32, 150),
                      nn.ReLU(), nn.Dropout(0.6), dense(150, 75), nn.ReLU(), nn.Dropout(0.6),
                      Permute(0, 2, 1), GlobalMax(), dense(75, 1), act("softmax"))
    return Program(m, x.reshape(-1, 56, 56), onehot(y, 2), nn.BCELoss(), adam(m, 1e-5), 150)


@bug("60801900", title="autoencoder with ReLU output: loss stuck", symptom="loss stops at a "
     "high value", cause="the reconstruction layer ends in ReLU, so it cannot produce the "
     "negative half of its targets (inputs scaled to [-1.92, 1.92])",
     expected=("output-range-mismatch", "dead-relu"), fix="linear output layer",
     notes="430 contexts -> 43")
def so_60801900(fixed: bool) -> Program:
    x, _ = classification(100, 43 * 3)
    x = minmax(x, -1.9236537371711413, 1.9242677998256246).reshape(-1, 43, 3)
    m = mlp(3, (128, "relu"), (64, "relu"), (32, "relu"), (64, "relu"), (128, "relu"),
            (3, "linear" if fixed else "relu"))
    return Program(m, x, x, nn.MSELoss(), adam(m), 2, 300)


# ------------------------------------------------------------------ softmax on one unit, others


@bug("33969059", title="Keras regression: accuracy zero, loss constant",
     symptom="loss does not move", cause="softmax on the single regression output: it is "
     "always 1 (zero gradient), and can never reach targets in the thousands; inputs in "
     "[0, 10000] unscaled", expected=("loss-degenerate", "output-range-mismatch"),
     fix="linear output unit; inputs and targets standardised",
     notes="100000 samples -> 2000")
def so_33969059(fixed: bool) -> Program:
    r = rng(0)
    x = t(10000 * r.random((2000, 3)))
    y = (x @ t([2.0, 1.0, 0.5]) + 2.2).reshape(-1, 1)
    if fixed:
        x, y = standardize(x), standardize(y)
    m = mlp(3, (3, "tanh"), ("dropout", 0.5), (2, "tanh"), ("dropout", 0.5),
            (1, "linear" if fixed else "softmax"), init="uniform")
    return Program(m, x, y, nn.MSELoss(), sgd(m, 0.1, 0.9, True), 32, 300)


@bug("34311586", title="XOR with Keras: output always 1", symptom="predictions constant",
     cause="softmax on one output unit (always 1), MSE, lr 0.001",
     expected=("loss-degenerate",))
def so_34311586(fixed: bool) -> Program:
    x = t([[1, 1], [0, 0], [1, 0], [0, 1], [1, 1], [0, 0]])
    y = t([[0], [0], [1], [1], [0], [0]])
    m = mlp(2, (2, "sigmoid"), (3, "sigmoid"), (1, "softmax"), init="uniform")
    return Program(m, x, y, nn.MSELoss(), sgd(m, 0.001, 0.9, True), 32, 100, 2, acc_binary)


@bug("54738769", title="regression with softmax output: constant prediction",
     symptom="loss constant", cause="softmax on the one regression output (always 1)",
     expected=("loss-degenerate", "output-range-mismatch"), fix="linear output")
def so_54738769(fixed: bool) -> Program:
    x, y = regression(100, 18)
    if fixed:
        y = standardize(y)
    m = mlp(18, (18, "tanh"), (36, "relu"), (72, "relu"), (72, "relu"), (32, "relu"),
            (16, "relu"), (1, "linear" if fixed else "softmax"))
    return Program(m, x, y, nn.MSELoss(), adam(m), 35, 300)


@bug("56218256", title="binary classifier with categorical_crossentropy: loss 0",
     symptom="loss exactly 0, accuracy constant", cause="Dense(1, softmax) with "
     "categorical_crossentropy: one class, probability 1, loss -y*log(1) = 0 and no gradient",
     expected=("loss-degenerate", "head-label-mismatch"),
     fix="Dense(1, sigmoid) + binary_crossentropy", notes="19900 features -> 2000")
def so_56218256(fixed: bool) -> Program:
    x, y = classification(1000, 2000)
    m = binary_head(2000, (1000, "relu"), (64, "relu"), (32, "relu"),
                    head="sigmoid" if fixed else "softmax")
    loss = nn.BCELoss() if fixed else CategoricalCE()
    return Program(m, x[:670], col(y[:670]), loss, adam(m), 1000 if not fixed else 64, 60, 2,
                   acc_binary)


@bug("68751439", title="binary classifier: accuracy stuck", symptom="accuracy constant",
     cause="Dense(1, softmax) with categorical_crossentropy (loss identically 0)",
     expected=("loss-degenerate", "head-label-mismatch"),
     fix="Dense(1, sigmoid) + binary_crossentropy")
def so_68751439(fixed: bool) -> Program:
    x, y = classification(100, 14)
    m = binary_head(14, (64, "relu"), (128, "relu"), (64, "relu"),
                    head="sigmoid" if fixed else "softmax")
    return Program(m, x[:80], col(y[:80]), nn.BCELoss() if fixed else CategoricalCE(), adam(m),
                   32, 200, 2, acc_binary)


@bug("61997645", title="GRU with softmax output and MSE: accuracy stuck",
     symptom="accuracy constant", cause="Dense(1, softmax) output (always 1) with MSE",
     expected=("loss-degenerate",), notes="GRU activation relu -> tanh (torch GRU)")
def so_61997645(fixed: bool) -> Program:
    r = rng(0)
    a = r.integers(1, 10, (300, 5))
    x, y = t(a.reshape(300, 5, 1)), t(a[:, 0] % 2)
    m = nn.Sequential(Last("gru", 1, 24, True), nn.Dropout(0.5), Last("gru", 24, 12),
                      nn.Dropout(0.5), dense(12, 1), act("softmax"))
    return Program(m, x[:168], col(y[:168]), nn.MSELoss(), adam(m), 32, 100, 2, acc_binary)


@bug("68938619", title="LSTM classifier with softmax and MSE: accuracy 50%",
     symptom="accuracy 0.5", cause="Dense(1, softmax) output (always 1), MSE",
     expected=("loss-degenerate",), fix="Dense(1, sigmoid)")
def so_68938619(fixed: bool) -> Program:
    x, y = classification(1000, 10)
    x = x / x.norm(dim=1, keepdim=True)
    m = nn.Sequential(Last("lstm", 1, 80), dense(80, 1), act("sigmoid" if fixed else "softmax"))
    return Program(m, x[:900].reshape(-1, 10, 1), col(y[:900]), nn.MSELoss(), rmsprop(m), 32,
                   300, 2, acc_binary)


@bug("68321264", title="fashion-MNIST 3 classes with Dense(1) softmax: accuracy stuck",
     symptom="accuracy constant", cause="one softmax unit for 3 one-hot classes with "
     "binary_crossentropy: the output is constantly 1",
     expected=("loss-degenerate", "head-label-mismatch"),
     fix="Dense(3, softmax) + categorical_crossentropy",
     notes="fashion-MNIST classes 0-2 replaced by digits 0-2 (8x8)")
def so_68321264(fixed: bool) -> Program:
    x, y = bundled("digits")
    keep = y < 3
    x, y = (x[keep] / 16.0).reshape(-1, 1, 8, 8), y[keep]
    m = nn.Sequential(conv(2, 1, 64, 3), nn.ReLU(), nn.MaxPool2d(2), conv(2, 64, 64, 3),
                      nn.ReLU(), Flatten(), dense(64, 64), dense(64, 3 if fixed else 1),
                      act("softmax"))
    loss = CategoricalCE() if fixed else nn.BCELoss()
    return Program(m, x, onehot(y, 3), loss, adam(m), 24, 150, 3, acc_argmax)


@bug("62440336", title="Conv1D + LSTM on audio: accuracy stuck", symptom="loss constant",
     cause="Dense(1, softmax) output (always 1) into BinaryCrossentropy(from_logits=True), "
     "with continuous regression targets", expected=("loss-degenerate", "loss-task-mismatch",
                                                     "labels-out-of-range"),
     notes="1,323,000 samples per input -> 2000, filters 100 -> 16, LSTM 1000 -> 32")
def so_62440336(fixed: bool) -> Program:
    x, y = regression(100, 2000)
    m = nn.Sequential(Permute(0, 2, 1), conv(1, 1, 16, 20, stride=10), nn.ReLU(),
                      conv(1, 16, 16, 10, stride=3), nn.ReLU(), Permute(0, 2, 1),
                      Last("lstm", 16, 32), dense(32, 50), nn.ReLU(), dense(50, 25), nn.ReLU(),
                      dense(25, 1), act("softmax"))
    return Program(m, x.reshape(-1, 2000, 1), y, nn.BCEWithLogitsLoss(), adam(m), 32, 50)


@bug("63212385", title="3-D CNN with poisson loss: accuracy stuck",
     symptom="loss does not move", cause="Dense(1, softmax) output (always 1) with poisson "
     "loss, SGD lr 1e-6", expected=("loss-degenerate", "lr-too-low"),
     notes="64x64x40x20 volumes -> 20 channels of 8x8x8, 100 -> 64 samples")
def so_63212385(fixed: bool) -> Program:
    x, y = classification(64, 20 * 8 * 8 * 8)
    x = x.reshape(-1, 20, 8, 8, 8)
    m = nn.Sequential(conv(3, 20, 16, 3, same=True), nn.ReLU(), nn.MaxPool3d(2),
                      conv(3, 16, 16, 3, same=True), nn.ReLU(), nn.MaxPool3d(2),
                      nn.BatchNorm3d(16, eps=1e-3, momentum=0.01), Flatten(),
                      nn.BatchNorm1d(128, eps=1e-3, momentum=0.01), dense(128, 128), nn.ReLU(),
                      nn.Dropout(0.5), dense(128, 128), nn.Sigmoid(), dense(128, 1),
                      act("softmax"))
    return Program(m, x, col(y), poisson(), sgd(m, 1e-6), 64, 30)


# ------------------------------------------------------------------ sigmoid + categorical CE


def sigmoid_cce(d_in: int, hidden: tuple, k: int, fixed: bool, opt: str = "adam",
                init: str = "glorot_uniform") -> nn.Sequential:
    return mlp(d_in, *hidden, (k, "softmax" if fixed else "sigmoid"), init=init)


@bug("41823068", title="multi-class MLP: accuracy low with sigmoid output",
     symptom="accuracy far below what the data allows", cause=SIGMOID_CCE,
     expected=("non-probability-into-prob-loss", "loss-task-mismatch"), fix=FIX_SOFTMAX)
def so_41823068(fixed: bool) -> Program:
    x, y = classification(1000, 10, classes=5, informative=5)
    m = nn.Sequential(Flatten(), *sigmoid_cce(10, ((256, "relu"), ("dropout", 0.5)), 5, fixed))
    return Program(m, x[:900].reshape(-1, 10, 1), onehot(y[:900], 5), CategoricalCE(),
                   rmsprop(m), 32, 200, 5, acc_argmax)


@bug("41999686", title="deep MLP 4 classes: accuracy stuck", symptom="accuracy near chance",
     cause=SIGMOID_CCE, expected=("non-probability-into-prob-loss", "loss-task-mismatch"),
     fix=FIX_SOFTMAX)
def so_41999686(fixed: bool) -> Program:
    x, y = classification(1000, 283, classes=4, informative=4)
    hidden = ((100, "relu"), ("dropout", 0.2), (150, "relu"), ("dropout", 0.2), (200, "relu"),
              ("dropout", 0.2), (200, "relu"), ("dropout", 0.2), (200, "relu"), ("dropout", 0.2))
    m = sigmoid_cce(283, hidden, 4, fixed, init="normal")
    return Program(m, x, onehot(y, 4), CategoricalCE(), sgd(m, 0.01, 0.9, True), 32, 800, 4,
                   acc_argmax)


@bug("42472447", title="122-class MLP: accuracy stays low", symptom="accuracy near chance",
     cause=SIGMOID_CCE, expected=("non-probability-into-prob-loss", "loss-task-mismatch"))
def so_42472447(fixed: bool) -> Program:
    x, y = classification(1000, 33, classes=122, informative=20, redundant=2)
    m = sigmoid_cce(33, ((50, "relu"), (33, "relu"), (33, "relu"), (33, "relu")), 122, fixed,
                    init="uniform")
    return Program(m, x, onehot(y, 122), CategoricalCE(), adam(m), 20, 150, 122, acc_argmax)


@bug("50914860", title="3-class CNN: accuracy low", symptom="accuracy near chance",
     cause=SIGMOID_CCE, expected=("non-probability-into-prob-loss", "loss-task-mismatch"),
     fix=FIX_SOFTMAX, notes="200x200x3 -> 32x32x3, 1000 -> 500 samples")
def so_50914860(fixed: bool) -> Program:
    x, y = classification(500, 3 * 32 * 32, classes=3, informative=3)
    m = nn.Sequential(conv(2, 3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), conv(2, 32, 32, 3),
                      nn.ReLU(), nn.MaxPool2d(2), Flatten(), dense(32 * 6 * 6, 128), nn.ReLU(),
                      dense(128, 3), act("softmax" if fixed else "sigmoid"))
    return Program(m, x.reshape(-1, 3, 32, 32), onehot(y, 3), CategoricalCE(), adam(m), 32, 150,
                   3, acc_argmax)


@bug("51930566", title="iris: accuracy 0.33 with sigmoid output",
     symptom="accuracy stuck for many epochs", cause=SIGMOID_CCE + "; the scaled features "
     "were computed but the unscaled ones were used", expected=(
         "non-probability-into-prob-loss", "loss-task-mismatch", "input-not-normalized"),
     fix=FIX_SOFTMAX)
def so_51930566(fixed: bool) -> Program:
    x, y = bundled("iris")
    m = sigmoid_cce(4, ((4, "relu"),), 3, fixed, init="normal")
    return Program(m, x[:75], onehot(y[:75], 3), CategoricalCE(), adam(m), 5, 400, 3, acc_argmax)


@bug("55198221", title="5-class CNN: val accuracy stuck", symptom="accuracy near chance",
     cause=SIGMOID_CCE, expected=("non-probability-into-prob-loss", "loss-task-mismatch"),
     fix=FIX_SOFTMAX, notes="75x75x3 -> 32x32x3")
def so_55198221(fixed: bool) -> Program:
    x, y = classification(500, 3 * 32 * 32, classes=5, informative=4)
    m = nn.Sequential(conv(2, 3, 16, 2), nn.ReLU(), nn.MaxPool2d(2), conv(2, 16, 16, 2),
                      nn.ReLU(), nn.MaxPool2d(2), conv(2, 16, 32, 2), nn.ReLU(), nn.MaxPool2d(2),
                      Flatten(), dense(32 * 3 * 3, 128), nn.ReLU(), dense(128, 5),
                      act("softmax" if fixed else "sigmoid"))
    return Program(m, x[:450].reshape(-1, 3, 32, 32), onehot(y[:450], 5), CategoricalCE(),
                   adam(m, 1e-4), 32, 500, 5, acc_argmax)


@bug("55328966", title="MNIST MLP: accuracy around 10%", symptom="accuracy near chance",
     cause="raw 0-255 pixels (no /255), sigmoid outputs into categorical cross-entropy, "
     "plain SGD at lr 1e-4 (DeepFD: act, opt, missing_prep)",
     expected=("input-not-normalized", "non-probability-into-prob-loss", "loss-task-mismatch"),
     fix="x / 255, softmax output, Adam (DeepFD patch)",
     notes="MNIST 28x28 replaced by sklearn digits 8x8 rescaled to 0-255")
def so_55328966(fixed: bool) -> Program:
    x, y = bundled("digits")
    x = x * 255 / 16
    if fixed:
        x = x / 255
    m = mlp(64, (64, "linear"), (50, "relu"), (10, "softmax" if fixed else "sigmoid"))
    opt = torch.optim.Adam(m.parameters(), 1e-4, eps=1e-7) if fixed else sgd(m, 1e-4)
    return Program(m, x, onehot(y, 10), CategoricalCE(), opt, 32, 300, 10, acc_argmax)


@bug("59278771", title="iris with KerasClassifier: accuracy 0.66",
     symptom="accuracy plateaus", cause=SIGMOID_CCE + " (DeepFD: act, opt, missing_prep)",
     expected=("non-probability-into-prob-loss", "loss-task-mismatch"), fix=FIX_SOFTMAX)
def so_59278771(fixed: bool) -> Program:
    x, y = bundled("iris")
    m = sigmoid_cce(4, ((4, "relu"),), 3, fixed, init="normal")
    return Program(m, minmax(x), onehot(y, 3), CategoricalCE(), adam(m), 32, 600, 3, acc_argmax)


@bug("61886777", title="3-class CNN: accuracy stuck", symptom="accuracy near chance",
     cause=SIGMOID_CCE, expected=("non-probability-into-prob-loss", "loss-task-mismatch"),
     fix=FIX_SOFTMAX)
def so_61886777(fixed: bool) -> Program:
    x, y = classification(1000, 28 * 28, classes=3, informative=5)
    m = nn.Sequential(conv(2, 1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
                      nn.BatchNorm2d(16, eps=1e-3, momentum=0.01), nn.Dropout(0.2), Flatten(),
                      dense(16 * 13 * 13, 512), nn.ReLU(), dense(512, 3),
                      act("softmax" if fixed else "sigmoid"))
    return Program(m, x.reshape(-1, 1, 28, 28), onehot(y, 3), CategoricalCE(), adam(m), 32, 100,
                   3, acc_argmax)


@bug("57943425", title="CNN with 2 sigmoid outputs and sparse CE: accuracy stuck",
     symptom="accuracy near chance", cause="sigmoid outputs into sparse categorical "
     "cross-entropy (not a distribution); BatchNormalization on the wrong axis",
     expected=("non-probability-into-prob-loss", "loss-task-mismatch"),
     notes="BatchNormalization(axis=1) over the height axis kept as BatchNorm over channels")
def so_57943425(fixed: bool) -> Program:
    x, y = classification(100, 100)

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [conv(2, cin, cout, 3, same=True), nn.ReLU(),
                nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)]

    m = nn.Sequential(*block(1, 32), nn.MaxPool2d(2), nn.Dropout(0.25), *block(32, 64),
                      *block(64, 64), nn.MaxPool2d(2), nn.Dropout(0.25), *block(64, 128),
                      *block(128, 128), *block(128, 128), nn.MaxPool2d(2), nn.Dropout(0.25),
                      Flatten(), dense(128, 512), nn.ReLU(),
                      nn.BatchNorm1d(512, eps=1e-3, momentum=0.01), nn.Dropout(0.5),
                      dense(512, 2), nn.Sigmoid())
    return Program(m, x.reshape(-1, 1, 10, 10), y, SparseCE(), sgd(m, 0.001), 32, 50, 2,
                   acc_argmax)


@bug("70650848", title="iris with Dense(1, sigmoid) and categorical CE: loss 0",
     symptom="loss 0, accuracy constant", cause="one sigmoid unit for 3 classes with "
     "categorical_crossentropy on sparse labels; the scaler's output was thrown away",
     expected=("loss-degenerate", "head-label-mismatch"),
     fix="Dense(3, softmax) + sparse_categorical_crossentropy on the scaled features")
def so_70650848(fixed: bool) -> Program:
    x, y = bundled("iris")
    x = x[:105]
    y = y[:105]
    if fixed:
        x = standardize(x)
    m = mlp(4, (4, "relu"), ("bn",), ("dropout", 0.3), (4, "relu"), ("bn",), ("dropout", 0.3),
            (3 if fixed else 1, "softmax" if fixed else "sigmoid"))
    loss = SparseCE() if fixed else CategoricalCE()
    yy = y if fixed else col(y)
    return Program(m, x, yy, loss, sgd(m), 16, 600, 3, acc_argmax if fixed else None)


@bug("70589997", title="101-class CNN with one sigmoid output: accuracy 0",
     symptom="loss 0, accuracy 0", cause="Dense(1, sigmoid) for 101 classes with "
     "categorical_crossentropy on sparse labels",
     expected=("loss-degenerate", "head-label-mismatch"), notes="128x128x3 -> 32x32x3")
def so_70589997(fixed: bool) -> Program:
    x, y = classification(200, 3 * 32 * 32, classes=101, informative=51, redundant=2)
    m = nn.Sequential(conv(2, 3, 32, 5), nn.ReLU(), nn.MaxPool2d(2), conv(2, 32, 64, 5),
                      nn.ReLU(), nn.MaxPool2d(2), conv(2, 64, 128, 3), nn.ReLU(), Flatten(),
                      dense(128 * 3 * 3, 1), nn.Sigmoid())
    return Program(m, x.reshape(-1, 3, 32, 32), col(y), CategoricalCE(), adam(m), 32, 50)


@bug("68773774", title="20 classes with Dense(1, sigmoid): accuracy 0",
     symptom="accuracy 0", cause="one sigmoid unit (on a 3-D input: one per timestep) for 20 "
     "one-hot classes with categorical cross-entropy",
     expected=("loss-degenerate", "head-label-mismatch"))
def so_68773774(fixed: bool) -> Program:
    x, y = classification(100, 6000, classes=20, informative=10, redundant=2)
    m = mlp(300, (300, "relu"), (20, "relu"), (1, "sigmoid"))
    return Program(m, x.reshape(100, 20, 300), onehot(y, 20), CategoricalCE(), adam(m), 1, 50)


@bug("66602662", title="5 classes, Dense(1, sigmoid), CategoricalCrossentropy(from_logits)",
     symptom="loss 0 from the first epoch", cause="one output unit for 5 classes with "
     "categorical cross-entropy on sparse labels: softmax of one logit is 1, loss 0",
     expected=("loss-degenerate", "head-label-mismatch", "labels-out-of-range"),
     fix="Dense(5) logits + SparseCategoricalCrossentropy(from_logits=True)")
def so_66602662(fixed: bool) -> Program:
    x, y = classification(1000, 5, classes=5, informative=4, redundant=0)
    m = mlp(5, (32, "relu"), (16, "relu"), ("dropout", 0.2), (8, "relu"), ("dropout", 0.2),
            (5, "linear") if fixed else (1, "sigmoid"))
    if fixed:
        return Program(m, x, y, nn.CrossEntropyLoss(), adam(m), 24, 400, 5, acc_argmax)
    return Program(m, x, col(y), CategoricalCEFromLogits(), adam(m), 24, 100)


# ------------------------------------------------------------------ ReLU / linear output into BCE/CE


@bug("51185079", title="binary classifier with ReLU output: loss 7.6, accuracy 50%",
     symptom="loss stuck at a large constant", cause="ReLU on the output unit fed to "
     "binary_crossentropy: not a probability (values above 1, exact zeros)",
     expected=("non-probability-into-prob-loss", "dead-relu"), fix=FIX_SIGMOID)
def so_51185079(fixed: bool) -> Program:
    x, y = classification(1000, 34)
    m = binary_head(34, (512, "relu"), (200, "relu"), (200, "relu"), (200, "relu"),
                    (128, "relu"), head="sigmoid" if fixed else "relu")
    return bce_program(m, x, y, opt="rmsprop", bs=200)


@bug("51901386", title="9-class CNN with ReLU output: loss nan / accuracy stuck",
     symptom="accuracy near chance", cause="ReLU output layer fed to categorical "
     "cross-entropy: not a distribution, dead outputs give log(0)",
     expected=("non-probability-into-prob-loss", "dead-relu", "log-of-zero"),
     notes="180x320x3 -> 3x32x32; 100 -> 300 samples; 1024 -> 256 units")
def so_51901386(fixed: bool) -> Program:
    x, y = classification(300, 3 * 32 * 32, classes=9, informative=5)

    def pair(cin: int, cout: int) -> list[nn.Module]:
        return [conv(2, cin, cout, 3, same=True), nn.ReLU(), conv(2, cout, cout, 3, same=True),
                nn.ReLU()]

    m = nn.Sequential(*pair(3, 64), nn.MaxPool2d(2), *pair(64, 64), nn.MaxPool2d(2),
                      *pair(64, 128), nn.MaxPool2d(2), *pair(128, 128), Flatten(),
                      nn.Dropout(0.5), dense(128 * 16, 256), nn.ReLU(), nn.Dropout(0.5),
                      dense(256, 9), act("softmax" if fixed else "relu"))
    return Program(m, x.reshape(-1, 3, 32, 32), onehot(y, 9), CategoricalCE(), adam(m, 1e-4),
                   24, 80, 9, acc_argmax)


@bug("53700537", title="Conv1D 3 classes with ReLU output: accuracy stuck",
     symptom="accuracy near chance", cause="ReLU (no bias) output into categorical "
     "cross-entropy", expected=("non-probability-into-prob-loss", "dead-relu", "log-of-zero"))
def so_53700537(fixed: bool) -> Program:
    x, y = classification(1000, 1000, classes=3, informative=3)
    m = nn.Sequential(Permute(0, 2, 1), conv(1, 1, 20, 20), nn.ReLU(), nn.MaxPool1d(3),
                      conv(1, 20, 20, 10), nn.ReLU(), nn.MaxPool1d(3), conv(1, 20, 20, 10),
                      nn.ReLU(), GlobalAvg(), dense(20, 3, bias=False),
                      act("softmax" if fixed else "relu"))
    return Program(m, x.reshape(-1, 1000, 1), onehot(y, 3), CategoricalCE(), adam(m), 32, 100,
                   3, acc_argmax)


@bug("64413907", title="masked LSTM, 3 classes with ReLU output",
     symptom="loss nan / accuracy stuck", cause="ReLU output into categorical cross-entropy",
     expected=("non-probability-into-prob-loss", "dead-relu", "log-of-zero"))
def so_64413907(fixed: bool) -> Program:
    r = rng(42)
    x = r.random((100, 6, 1)).astype("float32")
    for i in range(100):
        x[i, r.integers(2, 6):, 0] = 0.0  # padded (Masking dropped: no masked LSTM in torch)
    y = t(r.integers(0, 3, 100), torch.long)
    m = nn.Sequential(Last("lstm", 1, 1), dense(1, 3), nn.ReLU())
    return Program(m, t(x), onehot(y, 3), CategoricalCE(), adam(m), 1, 100)


@bug("54282951", title="CNN binary classifier with a linear output and BCE",
     symptom="loss around 7-8, accuracy 50%", cause="no sigmoid on the output unit: "
     "binary_crossentropy on unbounded linear outputs",
     expected=("non-probability-into-prob-loss",), fix="Dense(1, activation='sigmoid')",
     notes="230x230x3 -> 32x32x3")
def so_54282951(fixed: bool) -> Program:
    x, y = classification(100, 3 * 32 * 32)
    m = nn.Sequential(conv(2, 3, 32, 1), Flatten(), dense(32 * 32 * 32, 64), nn.Dropout(0.5),
                      dense(64, 1), act("sigmoid" if fixed else "linear"))
    return bce_program(m, x[:90].reshape(-1, 3, 32, 32), y[:90], opt="rmsprop")


@bug("57407973", title="deep sigmoid MLP with linear output and BCE: accuracy 50%",
     symptom="accuracy 0.5", cause="no sigmoid on the output: binary_crossentropy on a "
     "linear unit", expected=("non-probability-into-prob-loss",), fix=FIX_SIGMOID)
def so_57407973(fixed: bool) -> Program:
    x, y = classification(1000, 28)
    m = binary_head(28, (28, "sigmoid"), (200, "sigmoid"), ("dropout", 0.5), (300, "sigmoid"),
                    ("dropout", 0.5), (300, "sigmoid"), ("dropout", 0.5), (150, "sigmoid"),
                    ("dropout", 0.4), head="sigmoid" if fixed else "linear", init="normal")
    return bce_program(m, x[:800], y[:800], steps=300)


@bug("58572274", title="XNOR with ReLU output and BCE", symptom="predictions all 0",
     cause="ReLU output unit into binary_crossentropy",
     expected=("non-probability-into-prob-loss", "dead-relu"))
def so_58572274(fixed: bool) -> Program:
    x = t([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = t([[1], [0], [0], [1]])
    m = mlp(2, (2, "relu"), (2, "relu"), (1, "relu"))
    return Program(m, x, y, nn.BCELoss(), adam(m), 32, 100, 2, acc_binary)


@bug("64387251", title="wide frozen ReLU layer + linear output with BCE",
     symptom="loss does not reach 0", cause="linear output into binary_crossentropy "
     "(from_logits=False)", expected=("non-probability-into-prob-loss",),
     fix="sigmoid output", notes="MNIST 0/1 -> digits 0/1 (8x8), width 13000 -> 2000")
def so_64387251(fixed: bool) -> Program:
    x, y = bundled("digits")
    keep = y < 2
    x, y = x[keep] / 16.0, y[keep]
    hidden = dense(64, 2000)
    hidden.requires_grad_(False)
    m = nn.Sequential(hidden, nn.ReLU(), dense(2000, 1), act("sigmoid" if fixed else "linear"))
    return Program(m, x, col(y), nn.BCELoss(), adam(m), len(x), 150, 2, acc_binary)


@bug("64395424", title="AND gate: BinaryCrossentropy on a linear output",
     symptom="accuracy metric 0, loss erratic", cause="no sigmoid on the output: "
     "BinaryCrossentropy() expects probabilities", expected=("non-probability-into-prob-loss",),
     fix="Dense(1, activation='sigmoid')")
def so_64395424(fixed: bool) -> Program:
    x = t([[1, 1], [1, 0], [0, 1], [0, 0]])
    y = t([[1], [0], [0], [0]])
    m = mlp(2, (2, "relu"), (128, "relu"), (1, "sigmoid" if fixed else "linear"))
    return Program(m, x, y, nn.BCELoss(), adam(m), 32, 300, 2, acc_binary)


@bug("69787272", title="random search over activations: ReLU output with BCE",
     symptom="accuracy stuck at 50%", cause="ReLU output (after a 1-unit ReLU bottleneck) fed "
     "to binary_crossentropy", expected=("non-probability-into-prob-loss", "dead-relu"),
     fix="sigmoid output")
def so_69787272(fixed: bool) -> Program:
    x, y = classification(1000, 31)
    m = binary_head(31, (31, "relu"), (1, "relu"), head="sigmoid" if fixed else "relu")
    return bce_program(m, x, y, opt="sgd", bs=500, steps=300)


@bug("68101077", title="fashion-MNIST: sparse CE on logits, loss does not fall",
     symptom="loss high, accuracy low", cause="Dense(10) without softmax fed to "
     "sparse_categorical_crossentropy with from_logits=False (expects probabilities)",
     expected=("non-probability-into-prob-loss",),
     fix="SparseCategoricalCrossentropy(from_logits=True)",
     notes="fashion-MNIST -> sklearn digits / 16")
def so_68101077(fixed: bool) -> Program:
    x, y = bundled("digits")
    m = nn.Sequential(Flatten(), dense(64, 128), nn.ReLU(), dense(128, 10))
    loss = nn.CrossEntropyLoss() if fixed else SparseCE()
    return Program(m, (x / 16.0).reshape(-1, 8, 8), y, loss, adam(m), 32, 300, 10, acc_argmax)


# ------------------------------------------------------------------ labels vs head


@bug("41596619", title="multi-class labels with one sigmoid unit and BCE",
     symptom="accuracy stuck, predictions all one class", cause="labels 0..3 fed to a single "
     "sigmoid unit with binary_crossentropy",
     expected=("labels-out-of-range", "head-label-mismatch", "loss-task-mismatch"),
     fix="Dense(4, softmax) + sparse_categorical_crossentropy (and Adam at 0.05: the "
         "question's SGD at 0.001 is too slow to show learning in 300 steps)")
def so_41596619(fixed: bool) -> Program:
    x = t([[0.5, 1, 1], [0.9, 1, 2], [0.8, 0, 1], [0.3, 1, 1], [0.6, 1, 2], [0.4, 0, 1],
           [0.9, 1, 7], [0.5, 1, 4], [0.1, 0, 1], [0.6, 1, 0], [1, 0, 0]])
    y = t([1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 0], torch.long)
    if fixed:
        m = mlp(3, (3, "relu"), (4, "softmax"), init="uniform")
        return Program(m, x, y, SparseCE(), adam(m, 0.05), 32, 300, 4, acc_argmax)
    m = mlp(3, (3, "relu"), (1, "sigmoid"), init="uniform")
    return Program(m, x, col(y), nn.BCELoss(), sgd(m, 0.001), 32, 150)


@bug("60874661", title="CIFAR-10 with one sigmoid unit and BCE", symptom="accuracy 10%",
     cause="10-class labels fed to one sigmoid unit with binary_crossentropy; raw 0-255 pixels",
     expected=("labels-out-of-range", "head-label-mismatch", "loss-task-mismatch",
               "input-not-normalized"),
     notes="CIFAR-10 -> 10-class make_classification images 3x32x32 scaled to 0-255")
def so_60874661(fixed: bool) -> Program:
    x, y = classification(600, 3 * 32 * 32, classes=10, informative=10)
    x = minmax(x.reshape(600, -1).T).T.reshape(-1, 3, 32, 32) * 255
    if fixed:
        x = x / 255
    m = nn.Sequential(conv(2, 3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), conv(2, 32, 32, 3),
                      nn.ReLU(), nn.MaxPool2d(2), conv(2, 32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                      Flatten(), dense(64 * 2 * 2, 64), nn.ReLU(), nn.Dropout(0.5),
                      dense(64, 10 if fixed else 1), act("softmax" if fixed else "sigmoid"))
    if fixed:
        return Program(m, x, onehot(y, 10), CategoricalCE(), rmsprop(m), 32, 300, 10,
                       acc_argmax)
    return Program(m, x, col(y), nn.BCELoss(), rmsprop(m), 32, 100)


@bug("62068109", title="4-class CNN with one sigmoid unit", symptom="accuracy stuck",
     cause="labels 0..3 fed to one sigmoid unit with binary_crossentropy",
     expected=("labels-out-of-range", "head-label-mismatch", "loss-task-mismatch"),
     notes="64x64 -> 32x32")
def so_62068109(fixed: bool) -> Program:
    x, y = classification(500, 32 * 32, classes=4, informative=3)
    m = nn.Sequential(conv(2, 1, 64, 3), nn.ReLU(), nn.MaxPool2d(2), conv(2, 64, 64, 3),
                      nn.ReLU(), nn.MaxPool2d(2), conv(2, 64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                      Flatten(), dense(64 * 2 * 2, 64), nn.ReLU(), nn.Dropout(0.5), dense(64, 1),
                      nn.Sigmoid())
    return Program(m, x.reshape(-1, 1, 32, 32), col(y), nn.BCELoss(), adam(m), 32, 100)


@bug("66235657", title="HAM10000 7 classes with one sigmoid unit",
     symptom="accuracy stuck, loss negative", cause="labels 0..6 fed to one sigmoid unit with "
     "binary_crossentropy", expected=("labels-out-of-range", "head-label-mismatch",
                                      "loss-task-mismatch"),
     fix="Dense(7, softmax) + sparse_categorical_crossentropy",
     notes="hmnist 28x28x3 -> 7-class make_classification 3x16x16 in [0, 1]; 256 filters -> 32")
def so_66235657(fixed: bool) -> Program:
    x, y = classification(700, 3 * 16 * 16, classes=7, informative=6)
    x = minmax(x)
    m = nn.Sequential(conv(2, 3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), conv(2, 32, 32, 3),
                      nn.ReLU(), nn.MaxPool2d(2), Flatten(), dense(32 * 2 * 2, 64),
                      dense(64, 7 if fixed else 1), act("softmax" if fixed else "sigmoid"))
    x = x.reshape(-1, 3, 16, 16)
    if fixed:
        return Program(m, x, y, SparseCE(), adam(m), 32, 600, 7, acc_argmax)
    return Program(m, x, col(y), nn.BCELoss(), adam(m), 32, 100)


@bug("66840108", title="Keras producing a model with no accuracy",
     symptom="accuracy 0", cause="the target column holds large continuous numbers, fed to "
     "binary_crossentropy; unscaled inputs in the hundreds",
     expected=("labels-out-of-range", "loss-task-mismatch", "input-not-normalized"),
     notes="the question's dataset.csv (43 rows of multiples x, 2x, 3x, 4x) regenerated")
def so_66840108(fixed: bool) -> Program:
    base = t(rng(0).integers(100, 450, 43))
    data = torch.stack([base, 2 * base, 3 * base, 4 * base], 1)
    m = mlp(2, (196, "relu"), (128, "relu"), (1, "sigmoid"))
    return Program(m, data[:, :2], data[:, 2:3], nn.BCELoss(), adam(m), 10, 100)


@bug("57326611", title="binary labels with Dense(2, softmax) and BCE",
     symptom="accuracy stuck / shape error", cause="two softmax outputs for a (N,) binary "
     "label vector with binary_crossentropy: head and labels disagree",
     expected=("head-label-mismatch", "loss-task-mismatch"),
     fix="sparse_categorical_crossentropy (or Dense(1, sigmoid))")
def so_57326611(fixed: bool) -> Program:
    x, y = classification(10000, 5)
    m = mlp(5, (50, "relu"), (2, "softmax"))
    if fixed:
        return Program(m, x, y, SparseCE(), adam(m), 32, 300, 2, acc_argmax)
    return Program(m, x, col(y), nn.BCELoss(), adam(m), 32, 100)


@bug("61763616", title="Conv1D, 2 sigmoid outputs, logcosh loss on binary labels",
     symptom="accuracy stuck", cause="a regression loss (logcosh) on class labels, with two "
     "outputs against one label column",
     expected=("loss-task-mismatch", "head-label-mismatch"))
def so_61763616(fixed: bool) -> Program:
    x, y = classification(1000, 28 * 28)
    m = nn.Sequential(Permute(0, 2, 1), conv(1, 1, 16, 12), nn.MaxPool1d(4), conv(1, 16, 32, 12),
                      nn.MaxPool1d(4), conv(1, 32, 16, 12), nn.MaxPool1d(4), Flatten(),
                      dense(16 * 8, 16), nn.ReLU(), dense(16, 2), nn.Sigmoid())
    return Program(m, x.reshape(-1, 784, 1), col(y), LogCosh(), adam(m), 32, 100)


@bug("62055783", title="7 classes: sparse labels with CategoricalCrossentropy",
     symptom="shape error / accuracy stuck", cause="integer labels given to "
     "CategoricalCrossentropy(from_logits=True), which expects one-hot rows",
     expected=("head-label-mismatch", "loss-task-mismatch", "labels-out-of-range"),
     notes="48x48 -> 24x24")
def so_62055783(fixed: bool) -> Program:
    x, y = classification(1000, 24 * 24, classes=7, informative=5)
    l1 = conv(2, 1, 64, 3)
    m = nn.Sequential(l1, nn.ReLU(), conv(2, 64, 128, 3, same=True), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Dropout(0.5), conv(2, 128, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Dropout(0.5), conv(2, 64, 64, 3), nn.ReLU(), Flatten(),
                      dense(64 * 2 * 2, 64), nn.ReLU(), dense(64, 7))
    loss = nn.CrossEntropyLoss() if fixed else CategoricalCEFromLogits()
    return Program(m, x.reshape(-1, 1, 24, 24), y, loss, adam(m), 64, 150, 7, acc_argmax)


@bug("68701979", title="recall and precision not working", symptom="metrics wrong",
     cause="softmax over 2 units evaluated against a (N,) binary label vector with "
     "categorical_crossentropy (and the model is never fitted)",
     expected=("head-label-mismatch", "loss-task-mismatch"))
def so_68701979(fixed: bool) -> Program:
    x, y = classification(10000, 5)
    m = mlp(5, (32, "sigmoid"), (2, "softmax"))
    return Program(m, x, col(y), CategoricalCE(), sgd(m), 32, 100)


@bug("60508218", title="2-class CNN with 2 sigmoid outputs and BCE: accuracy flat",
     symptom="val accuracy does not improve", cause="one-hot two-class labels with two "
     "independent sigmoids and binary_crossentropy (multi-label set-up for a single-label "
     "task) at lr 3e-5", expected=("loss-task-mismatch",), notes="224x224x3 -> 32x32x3")
def so_60508218(fixed: bool) -> Program:
    x, y = classification(100, 3 * 32 * 32)
    m = nn.Sequential(conv(2, 3, 32, 3), nn.ReLU(), conv(2, 32, 64, 3), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Dropout(0.25), Flatten(), dense(64 * 14 * 14, 128),
                      nn.ReLU(), nn.Dropout(0.5), dense(128, 2), nn.Sigmoid())
    return Program(m, x[:90].reshape(-1, 3, 32, 32), onehot(y[:90], 2), nn.BCELoss(),
                   torch.optim.Adam(m.parameters(), 3e-5, eps=1e-8), 10, 100)


@bug("67529687", title="deep CNN 2 classes with sigmoid outputs: loss and accuracy flat",
     symptom="accuracy 0.5", cause="one-hot two-class labels with two sigmoids and "
     "binary_crossentropy", expected=("loss-task-mismatch",),
     notes="224x224x3 -> 32x32x3; dense 1024/2048/4096 -> 256/256/256")
def so_67529687(fixed: bool) -> Program:
    x, y = classification(100, 3 * 32 * 32)

    def c(cin: int, cout: int) -> list[nn.Module]:
        return [conv(2, cin, cout, 3, same=True), nn.ReLU()]

    m = nn.Sequential(*c(3, 32), *c(32, 32), *c(32, 32), nn.MaxPool2d(2), nn.Dropout(0.25),
                      *c(32, 64), *c(64, 64), nn.MaxPool2d(2), nn.Dropout(0.25), *c(64, 64),
                      *c(64, 64), nn.MaxPool2d(2), nn.Dropout(0.25), *c(64, 128), *c(128, 128),
                      nn.MaxPool2d(2), nn.Dropout(0.25), Flatten(), dense(128 * 4, 256),
                      nn.ReLU(), dense(256, 256), nn.ReLU(), dense(256, 256), nn.ReLU(),
                      dense(256, 2), nn.Sigmoid())
    return Program(m, x[:90].reshape(-1, 3, 32, 32), onehot(y[:90], 2), nn.BCELoss(), adam(m),
                   32, 50)


@bug("58333926", title="CIFAR-10 CNN: 10 sigmoids with binary_crossentropy",
     symptom="accuracy looks high (90%) but predictions are wrong",
     cause="binary_crossentropy on one-hot single-label targets (multi-label set-up); the "
     "accuracy metric becomes binary accuracy", expected=("loss-task-mismatch",),
     fix="softmax + categorical_crossentropy",
     notes="CIFAR-10 -> 10-class make_classification images 3x32x32 in [0, 1]")
def so_58333926(fixed: bool) -> Program:
    x, y = classification(600, 3 * 32 * 32, classes=10, informative=10)
    x = minmax(x).reshape(-1, 3, 32, 32)
    m = nn.Sequential(conv(2, 3, 32, 3), nn.ReLU(), nn.MaxPool2d(2), conv(2, 32, 32, 3),
                      nn.ReLU(), nn.MaxPool2d(2), Flatten(), dense(32 * 6 * 6, 400), nn.ReLU(),
                      dense(400, 10), act("softmax" if fixed else "sigmoid"))
    loss = CategoricalCE() if fixed else nn.BCELoss()
    return Program(m, x, onehot(y, 10), loss, adam(m), 32, 300, 10, acc_argmax)


@bug("56888491", title="sparse CE with one softmax unit", symptom="loss nan / error",
     cause="Dense(1, softmax) with sparse_categorical_crossentropy on labels 0/1: the head "
     "has one class, label 1 does not exist",
     expected=("head-label-mismatch", "labels-out-of-range", "loss-degenerate"),
     fix="Dense(2, softmax)")
def so_56888491(fixed: bool) -> Program:
    x, y = classification(10000, 5)
    m = mlp(5, (5, "linear"), (15, "linear"), (15, "linear"), (15, "linear"),
            (2 if fixed else 1, "softmax"))
    return Program(m, x, y, SparseCE(), adam(m), 20, 300, 2, acc_argmax)


# ------------------------------------------------------------------ output range (regression)


def reg_program(m: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: nn.Module,
                opt: torch.optim.Optimizer, bs: int = 32, steps: int = 300) -> Program:
    return Program(m, x, y, loss, opt, bs, steps)


@bug("46247619", title="CNN regression with ReLU output: loss does not fall",
     symptom="loss stuck", cause="ReLU on the regression output cannot produce the negative "
     "half of the targets; a dead output unit stops learning",
     expected=("output-range-mismatch", "dead-relu"), fix="linear output",
     notes="10000 -> 2000 samples, Dense 1024 -> 256")
def so_46247619(fixed: bool) -> Program:
    x, y = regression(2000, 50)
    m = nn.Sequential(Permute(0, 2, 1), conv(1, 1, 30, 3), nn.ReLU(), conv(1, 30, 40, 3),
                      nn.ReLU(), conv(1, 40, 120, 3), nn.ReLU(), Flatten(),
                      dense(120 * 44, 256), nn.ReLU(), dense(256, 256), nn.ReLU(),
                      dense(256, 32), nn.ReLU(), dense(32, 1),
                      act("linear" if fixed else "relu"))
    return reg_program(m, x.reshape(-1, 50, 1), y, nn.MSELoss(), adam(m), 32, 300)


@bug("59758722", title="regression MLP with ReLU output: loss plateaus",
     symptom="loss stops improving", cause="ReLU on the output unit: negative targets "
     "unreachable", expected=("output-range-mismatch", "dead-relu"), fix="linear output")
def so_59758722(fixed: bool) -> Program:
    x, y = regression(1000, 4)
    m = mlp(4, (30, "relu"), (30, "relu"), (1, "linear" if fixed else "relu"))
    return reg_program(m, x, y, nn.MSELoss(), rmsprop(m), 128, 300)


@bug("44758894", title="binary classification with ReLU output and MSE",
     symptom="accuracy stuck", cause="ReLU output unit (and MSE) for 0/1 labels: the unit "
     "dies and predicts 0", expected=("output-range-mismatch", "dead-relu",
                                      "loss-task-mismatch"),
     fix="Dense(1, sigmoid) + binary_crossentropy")
def so_44758894(fixed: bool) -> Program:
    x, y = classification(1000, 7)
    m = nn.Sequential(dense(7, 16), nn.ReLU(), nn.ReLU(), dense(16, 1),
                      act("sigmoid" if fixed else "relu"))
    return Program(m, x, col(y), nn.BCELoss() if fixed else nn.MSELoss(), sgd(m), 32, 300, 2,
                   acc_binary)


@bug("48251943", title="ReLU output regression: predictions all zero",
     symptom="all predictions 0", cause="ReLU on the output (DeepFD ground truth: act); "
     "targets include negatives", expected=("output-range-mismatch", "dead-relu"),
     fix="Dense(1, activation='tanh') (DeepFD patch)",
     notes="the question's 16-row dataset.csv (columns 2-3 features, column 1 target) "
           "regenerated with the same value range and a target that depends on the features")
def so_48251943(fixed: bool) -> Program:
    rows = t(rng(7).normal(0.5, 0.8, (16, 10)).round(3))
    x = rows[:, 2:4]
    y = torch.tanh(x[:, :1] - x[:, 1:2]) + 0.05 * rows[:, 1:2]
    m = mlp(2, (4, "relu"), (1, "tanh" if fixed else "relu"))
    return reg_program(m, x, y, nn.MSELoss(), sgd(m), 10, 500)


@bug("56452176", title="y = x/2 with ReLU everywhere: predictions constant",
     symptom="loss does not fall", cause="a one-unit ReLU first layer (and ReLU output): once "
     "the unit is dead the network outputs a constant",
     expected=("dead-relu",), scope="training")
def so_56452176(fixed: bool) -> Program:
    x = t([[0.5], [1.0], [0.4], [5], [25]])
    y = t([[0.25], [0.5], [0.2], [2.5], [12.5]])
    m = mlp(1, (1, "relu"), (9, "relu"), (1, "relu"))
    return reg_program(m, x, y, nn.MSELoss(), adam(m, 0.01), 32, 100)


@bug("62313327", title="learning y = x[1] with ReLU(1) -> sigmoid", symptom="loss plateaus",
     cause="sigmoid output cannot produce targets in [-1, 0); a 1-unit ReLU bottleneck",
     expected=("output-range-mismatch", "dead-relu"), fix="linear output",
     notes="100000 -> 5000 samples")
def so_62313327(fixed: bool) -> Program:
    x = t(rng(123).random((5000, 30)) * 2 - 1)
    y = x[:, 1:2].clone()
    m = mlp(30, (1, "relu"), (1, "linear" if fixed else "sigmoid"))
    return reg_program(m, x, y, nn.MSELoss(), adam(m, 0.01), 32, 300)


@bug("48221692", title="sigmoid output regression of y = x^2",
     symptom="predictions stuck between 0 and 1", cause="sigmoid output for targets up to "
     "103 (DeepFD ground truth: act)", expected=("output-range-mismatch",),
     fix="Dense(1, activation='linear') (DeepFD patch)",
     notes="the question's dataset.csv: x in [-10, 10], y = x^2 + 3")
def so_48221692(fixed: bool) -> Program:
    x = torch.linspace(-10, 10, 201).reshape(-1, 1)
    y = x ** 2 + 3
    perm = torch.randperm(201, generator=torch.Generator().manual_seed(0))[:150]
    m = mlp(1, (5, "sigmoid"), (1, "linear" if fixed else "sigmoid"))
    return Program(m, x[perm], y[perm], nn.MSELoss(), sgd(m), 150, 300)


@bug("48976413", title="car price regression with sigmoid output", symptom="loss huge, "
     "constant", cause="sigmoid output for prices in the thousands (targets unscaled)",
     expected=("output-range-mismatch",), notes="the question's cars.csv (962 rows) replaced "
     "by generated rows with the same column ranges")
def so_48976413(fixed: bool) -> Program:
    r = rng(0)
    x = t(np.c_[r.integers(18, 70, 962), r.integers(0, 2, 962), r.integers(10, 80, 962),
                r.integers(0, 50000, 962), r.integers(1000, 9000, 962)])
    y = (x[:, 3:4] * 0.3 + x[:, 4:5] * 2 + t(r.normal(0, 500, (962, 1))))
    m = nn.Sequential(init_normal(dense(5, 12)), nn.ReLU(), dense(12, 8), nn.ReLU(),
                      dense(8, 1), nn.Sigmoid())
    return reg_program(m, minmax(x), y, nn.MSELoss(), adam(m), 50, 200)


@bug("52566823", title="regression with sigmoid output and unscaled targets",
     symptom="loss stuck around var(y)", cause="sigmoid output cannot reach targets of "
     "magnitude ~100", expected=("output-range-mismatch",), fix="linear output")
def so_52566823(fixed: bool) -> Program:
    x, y = regression(1000, 5)
    m = mlp(5, (5, "sigmoid"), (4, "sigmoid"), (1, "linear" if fixed else "sigmoid"))
    return reg_program(m, x[:700], y[:700], nn.MSELoss(), sgd(m, 0.1), 32, 300)


@bug("53749895", title="regression with softmax over 3 targets", symptom="loss stuck",
     cause="softmax output (sums to 1) for three unbounded regression targets",
     expected=("output-range-mismatch",), fix="linear output, targets standardised (with raw "
     "targets the linear output diverges at this learning rate)",
     notes="424*424 inputs -> 1024")
def so_53749895(fixed: bool) -> Program:
    x, y = regression(1000, 1024, targets=3, informative=3)
    y = standardize(y) if fixed else y
    m = mlp(1024, (32, "relu"), (3, "linear" if fixed else "softmax"))
    return reg_program(m, x[:800], y[:800], nn.MSELoss(), sgd(m, 0.01, 0.9, True), 32, 300)


@bug("54811239", title="LSTM with tanh output for targets 7-12", symptom="loss stuck",
     cause="tanh output cannot exceed 1, targets are 7..12; raw inputs up to 31",
     expected=("output-range-mismatch",), fix="linear output")
def so_54811239(fixed: bool) -> Program:
    x = t([[[8, 0, 18, 10], [9, 0, 20, 7], [7, 0, 17, 12]],
           [[7, 0, 31, 8], [5, 0, 22, 9], [7, 0, 17, 12]]])
    y = t([[[10], [7], [12]], [[8], [9], [12]]])
    m = nn.Sequential(Last("lstm", 4, 10, True), dense(10, 50), nn.Tanh(), dense(50, 1),
                      act("linear" if fixed else "tanh"))
    return reg_program(m, x, y, nn.MSELoss(), adam(m), 32, 300)


@bug("56774954", title="multi-output regression with softmax and poisson loss",
     symptom="loss does not fall", cause="softmax output (sums to 1) with poisson loss for "
     "unbounded, signed regression targets",
     expected=("output-range-mismatch", "loss-task-mismatch"))
def so_56774954(fixed: bool) -> Program:
    x, y = regression(1000, 10, targets=3)
    m = mlp(10, (100, "sigmoid"), (80, "sigmoid"), (3, "softmax"))
    return reg_program(m, x, y, poisson(), adam(m), 32, 100)


@bug("59078187", title="fit y = x^2 with softmax output", symptom="loss huge",
     cause="a 10-way softmax output for a scalar regression target up to 100",
     expected=("output-range-mismatch", "loss-task-mismatch"))
def so_59078187(fixed: bool) -> Program:
    x = torch.linspace(0, 10, 1000).reshape(-1, 1)
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    x = x[perm]
    m = mlp(1, (128, "relu"), ("dropout", 0.2), (10, "softmax"))
    return reg_program(m, x, x ** 2, nn.MSELoss(), adam(m), 32, 150)


@bug("60574843", title="GRU regression with sigmoid output", symptom="loss stuck",
     cause="sigmoid output for unscaled regression targets",
     expected=("output-range-mismatch",), fix="linear output, targets standardised",
     notes="GRU 512/256/256 -> 32/32/32, 10000 -> 3000 samples")
def so_60574843(fixed: bool) -> Program:
    x, y = regression(3000, 12)
    y = standardize(y) if fixed else y
    m = nn.Sequential(Last("gru", 12, 32, True), Last("gru", 32, 32, True), Last("gru", 32, 32),
                      dense(32, 1), act("linear" if fixed else "sigmoid"))
    return reg_program(m, x.reshape(-1, 1, 12), y, nn.MSELoss(), adam(m), 256, 300)


@bug("60766775", title="4-target regression with softmax output", symptom="loss stuck",
     cause="softmax output for four unbounded regression targets",
     expected=("output-range-mismatch",), fix="linear output, targets standardised")
def so_60766775(fixed: bool) -> Program:
    x, y = regression(1000, 8, targets=4)
    y = standardize(y) if fixed else y
    m = mlp(8, (32, "sigmoid"), ("dropout", 0.1), (20, "sigmoid"), ("dropout", 0.1),
            (15, "sigmoid"), ("dropout", 0.1), (4, "linear" if fixed else "softmax"))
    return reg_program(m, standardize(x), y, nn.MSELoss(), sgd(m, 0.01, 0.87, True), 1, 1000)


@bug("50555434", title="row-normalised targets with a sigmoid output and MAE",
     symptom="loss plateaus", cause="sigmoid output cannot reach targets outside [0, 1] (rows "
     "divided by their sum take any sign and size)", expected=("output-range-mismatch",))
def so_50555434(fixed: bool) -> Program:
    x, y = regression(1000, 28, targets=6)
    y = y / y.sum(1, keepdim=True)
    m = mlp(28, (20, "relu"), (15, "relu"), (6, "relu"), (6, "sigmoid"), init="normal")
    return reg_program(m, x[:850], y[:850], nn.L1Loss(), adam(m), 32, 200)


@bug("68458462", title="integer targets 0-4 with sigmoid outputs and MSE",
     symptom="loss stuck", cause="sigmoid outputs cannot reach integer targets up to 4",
     expected=("output-range-mismatch",))
def so_68458462(fixed: bool) -> Program:
    i1 = t([[2], [1], [4], [3], [5]])
    i2 = t([[2, 1, 8, 4], [2, 6, 1, 9], [7, 3, 1, 4], [3, 1, 6, 10], [3, 2, 7, 5]])
    y = t([[3, 3, 1, 0], [3, 3, 3, 0], [3, 3, 4, 0], [3, 3, 1, 0], [3, 3, 4, 0]])
    m = mlp(5, (2, "relu"), (2, "relu"), (4, "sigmoid"))
    return reg_program(m, torch.cat([i1, i2], 1), y, nn.MSELoss(), adam(m), 16, 100)


@bug("45442843", title="1-D regression with sigmoid -> softmax(2) and MAE",
     symptom="loss constant", cause="a 2-way softmax output for one unbounded regression "
     "target (broadcast against both outputs) (DeepFD: loss, opt, act)",
     expected=("output-range-mismatch", "loss-task-mismatch"))
def so_45442843(fixed: bool) -> Program:
    x, y = regression(100, 1)
    m = nn.Sequential(dense(1, 1), nn.Sigmoid(), init_normal(dense(1, 2)), act("softmax"))
    return reg_program(m, x[:90], y[:90], nn.L1Loss(), rmsprop(m), 200, 100)


@bug("46869312", title="sigmoid output + BCE for targets scaled to [-1, 1]",
     symptom="loss negative / accuracy meaningless", cause="continuous targets in [-1, 1] "
     "with a sigmoid output and binary_crossentropy: wrong loss for regression, output range "
     "[0, 1]", expected=("labels-out-of-range", "loss-task-mismatch", "output-range-mismatch"),
     fix="linear output + MSE", notes="125000 -> 5000 samples")
def so_46869312(fixed: bool) -> Program:
    x, y = regression(5000, 64)
    y = 2 * (y - y.min()) / (y.max() - y.min()) - 1
    b1, b2, b3 = (np.sqrt(3.5 / (65 + 64)), np.sqrt(3.5 / (64 + 32)), np.sqrt(3.5 / 33))
    m = nn.Sequential(uniform(dense(64, 64), b1), nn.ReLU(), uniform(dense(64, 32), b2),
                      nn.ReLU(), uniform(dense(32, 1), b3), act("linear" if fixed else "sigmoid"))
    loss = nn.MSELoss() if fixed else nn.BCELoss()
    return Program(m, x[:4000], y[:4000], loss, adam(m), 200, 300)


@bug("56317174", title="rain prediction: sigmoid + MSE on labels scaled by MinMaxScaler",
     symptom="loss stuck, predictions constant", cause="MinMaxScaler fitted on the label "
     "vector as one row maps every label to -1: all targets equal and outside the sigmoid's "
     "range", expected=("labels-degenerate", "output-range-mismatch"),
     notes="weatherAUS.csv replaced by 4 generated weather-like features with a rain label")
def so_56317174(fixed: bool) -> Program:
    x, y = classification(3000, 4)
    x = minmax(x, -1, 1)
    y_scaled = torch.full_like(y, -1.0, dtype=torch.float32)  # MinMaxScaler on [y]: each
    # column has a single sample, so every value maps to the range's minimum
    m = nn.Sequential(nn.BatchNorm1d(4, eps=1e-3, momentum=0.01),
                      *mlp(4, (4, "relu"), ("dropout", 0.5), ("bn",), (4, "relu"),
                           ("dropout", 0.5), ("bn",), (4, "relu"), ("dropout", 0.5),
                           (1, "sigmoid")))
    return Program(m, x[:2400], col(y_scaled[:2400]), nn.MSELoss(), rmsprop(m), 1024, 100)


# ------------------------------------------------------------------ learning rate / dynamics


@bug("48385830", title="MNIST with SGD lr 3.0, N(0,1) init and MSE: loss inf",
     symptom="loss becomes inf, accuracy 10%", cause="learning rate 3.0 with linear layers, "
     "N(0, 1) weights and biases and squared error (Nielsen's sigmoid set-up without its "
     "activations) diverges (DeepFD: act, loss, lr)",
     expected=("lr-too-high", "nonfinite", "init-loss-high"),
     fix="sigmoid hidden layer, softmax output, categorical cross-entropy (DeepFD patch)",
     notes="MNIST -> sklearn digits / 16")
def so_48385830(fixed: bool) -> Program:
    x, y = bundled("digits")
    m = nn.Sequential(dense(64, 30), act("sigmoid" if fixed else "linear"), dense(30, 10),
                      act("softmax" if fixed else "linear"))
    for layer in (m[0], m[2]):
        nn.init.normal_(layer.weight, 0, 1)
        nn.init.normal_(layer.bias, 0, 1)
    loss = CategoricalCE() if fixed else nn.MSELoss()
    return Program(m, x / 16.0, onehot(y, 10), loss, sgd(m, 3.0 if not fixed else 0.5), 10, 300,
                   10, acc_argmax)


@bug("44164749", title="MLP with 5000 units: accuracy low after 5 epochs",
     symptom="accuracy barely above chance", cause="batch 2000 > dataset: one SGD step per "
     "epoch at lr 0.01, 5 epochs: too few, too small updates (DeepFD: epoch, lr)",
     expected=("lr-too-low", "loss-plateau"), scope="training",
     fix="lr 0.05 and 10 epochs (DeepFD patch); here: lr 0.05 and the steps of 10 epochs at "
         "batch 32")
def so_44164749(fixed: bool) -> Program:
    x, y = classification(100, 10, seed=42)
    m = mlp(10, (5000, "relu"), ("dropout", 0.1), (600, "relu"), ("dropout", 0.1),
            (2, "softmax"))
    return Program(m, x[:90], onehot(y[:90], 2), CategoricalCE(),
                   sgd(m, 0.05 if fixed else 0.01, 0.9, True), 32 if fixed else 2000,
                   30 if fixed else 5, 2, acc_argmax)


@bug("46359741", title="two-sample binary classification gives constant output",
     symptom="output ~0.5 for both inputs", cause="20 epochs of SGD at lr 0.009 on two "
     "samples: far too few, too small steps", expected=("lr-too-low", "loss-plateau"),
     scope="training")
def so_46359741(fixed: bool) -> Program:
    x, y = t([[1], [2]]), t([[1], [0]])
    m = mlp(1, (1, "sigmoid"), (1, "sigmoid"))
    return Program(m, x[:1], y[:1], nn.BCELoss(), sgd(m, 0.009, 0.9, True), 32, 20)


@bug("49583466", title="sin(x) with a 3x20 sigmoid MLP and SGD: flat prediction",
     symptom="predicts a constant", cause="sigmoid layers with U(-0.05, 0.05) init and plain "
     "SGD for 2 epochs: gradients vanish through the sigmoids and the steps are tiny",
     expected=("grad-vanishing", "lr-too-low", "loss-plateau", "signal-vanishing"),
     scope="training",
     notes="the accepted answer (tanh/ReLU, Adam, many more epochs) is not kept as a fixed "
           "program: with tanh and Adam 1e-2 it still only learns the mean in 1500 steps")
def so_49583466(fixed: bool) -> Program:
    r = rng(0)
    x = np.sort(r.uniform(-10, 10, 5000)).reshape(-1, 1)
    y = np.sin(x)
    x, y = minmax(t(x)), minmax(t(y))
    perm = torch.randperm(5000, generator=torch.Generator().manual_seed(0))
    m = mlp(1, (20, "sigmoid"), (20, "sigmoid"), (20, "sigmoid"), (1, "linear"), init="uniform")
    return Program(m, x[perm], y[perm], nn.MSELoss(), sgd(m), 32, 300)


@bug("50306988", title="two-class toy problem: accuracy stuck at 50%",
     symptom="accuracy 0.5 for hundreds of epochs", cause="Adam lr 1e-3 with a 2-unit sigmoid "
     "hidden layer learns too slowly (DeepFD: lr, epoch)",
     expected=("lr-too-low", "loss-plateau"), scope="training",
     fix="Adam lr 0.01 and more epochs (DeepFD patch)")
def so_50306988(fixed: bool) -> Program:
    r = rng(0)
    c1, c2 = r.uniform(0.2, 0.4, 200), r.uniform(0.5, 0.7, 200)
    rows = []
    for i in range(0, 200, 2):
        rows += [[c1[i], c1[i + 1], 0], [c2[i], c2[i + 1], 1]]
    d = t(rows)
    m = mlp(2, (2, "sigmoid"), (2, "softmax"))
    return Program(m, d[:, :2], onehot(d[:, 2].long(), 2), CategoricalCE(),
                   adam(m, 0.05 if fixed else 1e-3), 32, 300, 2, acc_argmax)


@bug("60831731", title="2-2 sigmoid network on scaled pairs: accuracy not improving",
     symptom="loss barely moves", cause="SGD at lr 0.01 with sigmoid layers and squared "
     "error: tiny updates, slow convergence", expected=("lr-too-low", "loss-plateau"),
     scope="training", fix="Adam, more epochs (accepted answer); here Adam lr 0.01")
def so_60831731(fixed: bool) -> Program:
    pairs = t([[i, j] for i in range(1, 11) for j in range(1, 11)])
    y = minmax(pairs.reshape(-1, 1)).reshape(-1, 2)
    m = mlp(2, (2, "sigmoid"), (2, "sigmoid"))
    return Program(m, y[:80], y[:80], nn.MSELoss(), adam(m, 0.01) if fixed else sgd(m), 10,
                   1500 if fixed else 300)


@bug("57516678", title="LSTM binary classifier predicts all zeros",
     symptom="loss falls, every prediction 0", cause="labels 5 positive / 27 negative "
     "(imbalanced) on random inputs: the network learns the prior",
     expected=("labels-degenerate",), notes="672 steps x 16 features -> 64 x 16, LSTM 512 -> "
     "32, relu activation and max-norm constraints dropped")
def so_57516678(fixed: bool) -> Program:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32 * 20, 64, 16, generator=g)
    y = torch.cat([torch.cat([torch.ones(5), torch.zeros(27)])[torch.randperm(32, generator=g)]
                   for _ in range(20)])
    m = nn.Sequential(Last("lstm", 16, 32), dense(32, 1), nn.Sigmoid())
    return Program(m, x, col(y), nn.BCELoss(), nadam(m, 4e-4), 32, 50)


@bug("69901379", title="MSE does not decrease: unscaled regression",
     symptom="loss stays in the millions", cause="inputs in [50, 2000] and targets in "
     "[600, 4000] unscaled, Adam at 1e-4", expected=("input-not-normalized",),
     fix="standardise inputs and targets")
def so_69901379(fixed: bool) -> Program:
    r = rng(0)
    x, y = t(r.integers(50, 2000, (50, 10))), t(r.integers(600, 4000, (50, 1)))
    y = y + x[:, :1]  # the question's targets are random; give them something to learn
    if fixed:
        x, y = standardize(x), standardize(y)
    m = mlp(10, (16, "relu"), (16, "relu"), (16, "relu"), (16, "relu"), (1, "linear"))
    return Program(m, x, y, nn.MSELoss(), adam(m, 1e-3 if fixed else 1e-4), 32, 400)


@bug("61498304", title="CNN with uniform-initialised dense stack: loss not improving",
     symptom="accuracy and loss flat", cause="four Dense layers initialised U(-0.05, 0.05) "
     "(plus L2 0.01 each): the signal and gradient shrink through the stack",
     expected=("signal-vanishing", "grad-vanishing", "regularization-dominates"))
def so_61498304(fixed: bool) -> Program:
    x, y = classification(1000, 3 * 32 * 32)
    m = nn.Sequential(conv(2, 3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), conv(2, 6, 16, 5), nn.ReLU(),
                      nn.MaxPool2d(2), Flatten(),
                      *mlp(400, (128, "relu", "uniform"), ("dropout", 0.2),
                           (64, "relu", "uniform"), ("dropout", 0.2), (64, "relu", "uniform"),
                           ("dropout", 0.2), (64, "relu", "uniform"), ("dropout", 0.2),
                           (2, "softmax")))
    dense_w = [mod.weight for mod in m.modules() if isinstance(mod, nn.Linear)][:4]

    def loss(p: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return CategoricalCE()(p, yy) + 0.01 * sum((w ** 2).sum() for w in dense_w)

    return Program(m, x[:800].reshape(-1, 3, 32, 32), onehot(y[:800], 2), loss, adam(m), 32,
                   100, 2, acc_argmax)


@bug("62957334", title="3-D CNN binary classifier trained with MAPE",
     symptom="loss in the millions, accuracy constant", cause="mean absolute percentage error "
     "on 0/1 labels: division by the zero labels", expected=("loss-task-mismatch",
                                                             "init-loss-high"),
     notes="100x100x3x6 volumes -> 6 channels of 16x16x3")
def so_62957334(fixed: bool) -> Program:
    x, y = classification(100, 6 * 16 * 16 * 3)
    m = nn.Sequential(conv(3, 6, 32, 3, same=True), nn.MaxPool3d(2, ceil_mode=True),
                      conv(3, 32, 32, 3, same=True), nn.MaxPool3d(2, ceil_mode=True),
                      conv(3, 32, 32, 3, same=True), Flatten(), dense(32 * 4 * 4 * 1, 10),
                      dense(10, 1), nn.Sigmoid())
    return Program(m, x.reshape(-1, 6, 16, 16, 3), col(y), MAPE(), nadam(m), 20, 50)


@bug("50338865", title="XOR with LSTM, linear outputs and MAE", symptom="predictions stuck "
     "around 0.5", cause="one-hot class targets regressed with mean absolute error on linear "
     "outputs instead of softmax + cross-entropy", expected=("loss-task-mismatch",
                                                            "output-range-mismatch"))
def so_50338865(fixed: bool) -> Program:
    x = t([[[0, 0]], [[0, 1]], [[1, 0]], [[1, 1]]])
    y = t([[1, 0], [0, 1], [0, 1], [1, 0]])
    m = nn.Sequential(Last("lstm", 2, 10, True), Last("lstm", 10, 10), dense(10, 2))
    return Program(m, x, y, nn.L1Loss(), adam(m), 32, 100)


@bug("47735201", title="network-in-network on CIFAR-10: stuck at 10%",
     symptom="loss stuck at ln 10, accuracy 10%", cause="the last 1x1 conv (the logits) has a "
     "ReLU: logits that die at 0 give a uniform softmax and no gradient",
     expected=("dead-relu", "loss-plateau"), scope="training",
     notes="CIFAR-10 -> 10-class make_classification images 3x32x32 in [0, 1]")
def so_47735201(fixed: bool) -> Program:
    x, y = classification(600, 3 * 32 * 32, classes=10, informative=10)
    x = minmax(x).reshape(-1, 3, 32, 32)
    c = [conv(2, 3, 32, 5), nn.ReLU(), conv(2, 32, 32, 1), nn.ReLU(), conv(2, 32, 32, 1),
         nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.5), conv(2, 32, 64, 3), nn.ReLU(),
         conv(2, 64, 64, 1), nn.ReLU(), conv(2, 64, 64, 1), nn.ReLU(), nn.MaxPool2d(2),
         nn.Dropout(0.5), conv(2, 64, 128, 3), nn.ReLU(), conv(2, 128, 32, 1), nn.ReLU(),
         conv(2, 32, 10, 1), nn.ReLU(), GlobalAvg(), act("softmax")]
    m = nn.Sequential(*c)
    return Program(m, x, onehot(y, 10), CategoricalCE(), adam(m), 32, 150, 10, acc_argmax)


@bug("34673164", title="softmax output with mean squared error", symptom="slow learning",
     cause="mean squared error on a softmax output (DeepFD: layers, act, loss)",
     expected=("mse-on-saturating-output",), fix="categorical_crossentropy")
def so_34673164(fixed: bool) -> Program:
    x, y = classification(1000, 14)
    m = mlp(14, (64, "tanh"), ("dropout", 0.5), (64, "tanh"), ("dropout", 0.5), (2, "softmax"),
            init="uniform")
    loss = CategoricalCE() if fixed else nn.MSELoss()
    return Program(m, x, onehot(y, 2), loss, sgd(m, 0.1, 0.9, True), 16, 200, 2, acc_argmax)


# ------------------------------------------------------------------ not scored: no code names it


@bug("43055289", title="keras's model.fit() is not consistent with model.evaluate()",
     symptom="training accuracy differs from evaluate()", cause="BatchNormalization and "
     "dropout behave differently in training and inference on 60 images: not a loss problem",
     notes="225x225x3 -> 32x32x3")
def so_43055289(fixed: bool) -> Program:
    x, y = classification(60, 3 * 32 * 32)
    m = nn.Sequential(conv(2, 3, 5, 4, stride=2, same=True), nn.LeakyReLU(0.2),
                      conv(2, 5, 10, 4, stride=2, same=True),
                      nn.BatchNorm2d(10, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.2),
                      Flatten(), dense(10 * 9 * 9, 1), nn.Sigmoid())
    return bce_program(m, x.reshape(-1, 3, 32, 32), y, bs=8)


@bug("44755431", title="VGG-like MNIST: disparity between training and validation accuracy",
     symptom="training accuracy far below validation accuracy", cause="Dropout(0.5) placed "
     "after the output logits: training predictions are noisy, inference ones are not",
     notes="MNIST -> sklearn digits 8x8 (two of the three pooling stages)")
def so_44755431(fixed: bool) -> Program:
    x, y = bundled("digits")
    m = nn.Sequential(conv(2, 1, 16, 3, same=True), nn.ReLU(), conv(2, 16, 16, 3, same=True),
                      nn.ReLU(), nn.MaxPool2d(2), conv(2, 16, 32, 3, same=True), nn.ReLU(),
                      conv(2, 32, 32, 3, same=True), nn.ReLU(), nn.MaxPool2d(2), Flatten(),
                      dense(128, 50), nn.ReLU(), nn.Dropout(0.5), dense(50, 10),
                      nn.Dropout(0.5), act("softmax"))
    return Program(m, (x / 16).reshape(-1, 1, 8, 8), onehot(y, 10), CategoricalCE(), adam(m),
                   20, 150, 10, acc_argmax)


@bug("48486598", title="How to predict a function/table using Keras?",
     symptom="the fit is a straight line", cause="no activation in any layer: the network is "
     "linear and cannot fit a quintic")
def so_48486598(fixed: bool) -> Program:
    x = torch.arange(0.0, 10.0, 0.05).reshape(-1, 1)
    y = 0.05 * (15.72807 * x - 7.273893 * x ** 2 + 1.4912 * x ** 3 - 0.1384615 * x ** 4
                + 0.00474359 * x ** 5)
    m = mlp(1, (1, "linear"), (5, "linear"), (1, "linear"))
    return Program(m, x, y, nn.L1Loss(), adam(m), 10, 300)


@bug("58043002", title="CNN followed by RNN for signature verification: accuracy flat",
     symptom="accuracy 50%", cause="model.fit is never called (only evaluate)")
def so_58043002(fixed: bool) -> Program:
    x, y = classification(670, 70)
    m = nn.Sequential(Permute(0, 2, 1), conv(1, 7, 64, 3), nn.Sigmoid(), nn.MaxPool1d(3),
                      conv(1, 64, 64, 2), nn.Sigmoid(), Permute(0, 2, 1), Last("lstm", 64, 8),
                      dense(8, 2), act("softmax"))
    return Program(m, x.reshape(-1, 10, 7), onehot(y, 2), CategoricalCE(), adam(m, 1e-4), 32, 100,
                   2, acc_argmax)


@bug("61274792", title="model forgets after 110 epochs: NaN loss",
     symptom="NaN loss after ~110 epochs", cause="row-normalised float features fed to an "
     "Embedding (cast to index 0), trained for 700 epochs: the input carries no information",
     notes="Embedding 1000x1000 -> 1000x16, LSTM 256 -> 16, sequence 1000 -> 100")
def so_61274792(fixed: bool) -> Program:
    x, y = classification(1000, 100)
    x = (x / x.norm(dim=1, keepdim=True)).long()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(1000, 16)
            self.body = nn.Sequential(nn.Dropout(0.5), Last("lstm", 16, 16), nn.Dropout(0.6),
                                      dense(16, 128), nn.Dropout(0.5), dense(128, 1),
                                      nn.Sigmoid())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(self.emb(x))

    m = Net()
    return Program(m, x[:750], col(y[:750]), nn.BCELoss(), rmsprop(m), 32, 50)


@bug("54064299", title="CNN Keras Object Localization - Bad predictions",
     symptom="predicted boxes are poor", cause="a Dense layer placed before Flatten (applied "
     "per pixel) and unscaled box targets: a modelling problem, not a loss one",
     notes="150x150 -> 32x32, 1000 -> 300 samples")
def so_54064299(fixed: bool) -> Program:
    x, y = regression(300, 32 * 32, targets=4)
    m = nn.Sequential(conv(2, 1, 64, 3), nn.ReLU(), nn.MaxPool2d(2), conv(2, 64, 32, 3),
                      nn.ReLU(), nn.MaxPool2d(2), Permute(0, 2, 3, 1), dense(32, 64), nn.ReLU(),
                      Flatten(), dense(6 * 6 * 64, 4))
    return Program(m, x.reshape(-1, 1, 32, 32), y, nn.MSELoss(), adam(m), 1, 100)


@bug("58051767", title="Keras - how to predict two values instead of one value?",
     symptom="a question about the output layer, the reduced program trains",
     cause="none in the reduced program (a feature question)",
     fix="none needed: the question's program, kept as a healthy control")
def so_58051767(fixed: bool) -> Program:
    x, y = classification(1000, 4)
    m = binary_head(4, (12, "relu"), (8, "relu"), head="sigmoid")
    return bce_program(m, x, y, bs=10, steps=300)


@bug("58064701", title="How to optimize accuracy of ANN", symptom="accuracy 75-78% on Pima "
     "diabetes", cause="none in the program: the data's ceiling (a tuning question)",
     fix="none needed: the question's program, kept as a healthy control",
     notes="Pima diabetes -> make_classification(768, 8)")
def so_58064701(fixed: bool) -> Program:
    x, y = classification(768, 8)
    x = standardize(x)
    m = binary_head(8, (10, "relu"), (10, "relu"), head="sigmoid", init="random_normal")
    return bce_program(m, x[:537], y[:537], bs=2, steps=400)


@bug("61234347", title="Why I'm getting bad result with Keras vs random forest or knn?",
     symptom="accuracy ~0.6 after one epoch", cause="one epoch of training of a very deep "
     "tanh network on 105 samples: too little training, not a loss fault")
def so_61234347(fixed: bool) -> Program:
    x, y = bundled("iris")
    m = mlp(4, (1000, "tanh"), (500, "tanh"), (250, "tanh"), (125, "tanh"), (64, "tanh"),
            (32, "tanh"), (9, "tanh"), (3, "softmax"))
    return Program(m, x[:105], onehot(y[:105], 3), CategoricalCE(), adam(m), 32, 4, 3,
                   acc_argmax)


@bug("64237179", title="Why is my accuracy in a keras 3d CNN always 0?",
     symptom="accuracy 0", cause="a metric/label-format problem in the original (the reduced "
     "program trains)", notes="50^3 volumes -> 12^3, filters 64..512 -> 8..32")
def so_64237179(fixed: bool) -> Program:
    x, y = classification(50, 12 ** 3)
    m = nn.Sequential(conv(3, 1, 8, 3), nn.BatchNorm3d(8, eps=1e-3, momentum=0.01),
                      nn.LeakyReLU(0.1), nn.Dropout(0.25), conv(3, 8, 16, 3),
                      nn.BatchNorm3d(16, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.1),
                      nn.MaxPool3d(2), Flatten(), dense(16 * 4 ** 3, 256),
                      nn.BatchNorm1d(256, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.1),
                      nn.Dropout(0.5), dense(256, 1), nn.Sigmoid())
    return bce_program(m, x.reshape(-1, 1, 12, 12, 12), y, bs=50)


@bug("65777704", title="Getting a very low accuracy on implementing Neural Network in Keras",
     symptom="accuracy low", cause="MNIST normalised along the wrong axis and a sigmoid "
     "funnel starting with 8 units: capacity and preprocessing, no loss fault",
     notes="MNIST -> sklearn digits")
def so_65777704(fixed: bool) -> Program:
    x, y = bundled("digits")
    x = x / x.norm(dim=0, keepdim=True).clamp(min=1e-8)
    m = mlp(64, (8, "sigmoid"), (16, "sigmoid"), (32, "sigmoid"), (64, "sigmoid"),
            (128, "sigmoid"), (10, "softmax"))
    return Program(m, x, onehot(y, 10), CategoricalCE(), adam(m), 500, 100, 10, acc_argmax)


# helpers used above (kept at the end so the ports read top-down)


def init_normal(layer: nn.Module, std: float = 0.05) -> nn.Module:
    """``kernel_initializer='normal'`` on one layer."""
    nn.init.normal_(layer.weight, 0.0, std)  # type: ignore[arg-type]
    return layer


def uniform(layer: nn.Module, bound: float) -> nn.Module:
    """``RandomUniform(-bound, bound)`` on one layer."""
    nn.init.uniform_(layer.weight, -bound, bound)  # type: ignore[arg-type]
    return layer

