"""StackOverflow bugs of TheDeepChecker (Ben Braiek & Khomh, TOSEM 2022; github
thedeepchecker/thedeepchecker, ``SO_buggy_examples/IPS_<n>.py``): TensorFlow 1 programs from
StackOverflow questions, each reproduced with MNIST or generated data.

TensorFlow defaults translated: ``tf.random_normal`` is N(0, 1), ``tf.truncated_normal(stddev)``
is ``nn.init.trunc_normal_(std, a=-2 std, b=2 std)``, ``tf.constant(0.1)`` biases are 0.1,
``GradientDescentOptimizer(lr)`` is plain SGD. MNIST is replaced by scikit-learn's digits (8x8,
scaled to [0, 1] as TheDeepChecker's loader does with ``normalization=True``).
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F
from bug import Program, Registry
from common import Flatten, acc_argmax, bundled, onehot, t
from torch import nn

bug = Registry("TheDeepChecker")
BUGS = bug.bugs


def trunc(layer: nn.Module, std: float, bias: float = 0.1) -> nn.Module:
    """``tf.truncated_normal(stddev=std)`` weights, ``tf.constant(bias)`` biases."""
    nn.init.trunc_normal_(layer.weight, 0.0, std, -2 * std, 2 * std)  # type: ignore[arg-type]
    if getattr(layer, "bias", None) is not None:
        nn.init.constant_(layer.bias, bias)  # type: ignore[arg-type]
    return layer


def normal(layer: nn.Module, bias_std: float | None = 1.0) -> nn.Module:
    """``tf.random_normal`` (N(0, 1)) weights and biases (zero biases when ``bias_std`` is None)."""
    nn.init.normal_(layer.weight, 0.0, 1.0)  # type: ignore[arg-type]
    if getattr(layer, "bias", None) is not None:
        if bias_std is None:
            nn.init.zeros_(layer.bias)  # type: ignore[arg-type]
        else:
            nn.init.normal_(layer.bias, 0.0, bias_std)  # type: ignore[arg-type]
    return layer


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = bundled("digits")
    return x / 16.0, y


def sum_xent(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``-tf.reduce_sum(y_ * tf.log(y_conv))``: a hand-written, sum-reduced cross-entropy."""
    return -(y * torch.log(p)).sum()


def logits_xent(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits, labels))``."""
    return F.cross_entropy(z, y.argmax(-1))


class WithSoftmax(nn.Module):
    """A logits network whose forward returns the softmax (``y_conv = tf.nn.softmax(logits)``)."""

    def __init__(self, body: nn.Module, softmax: bool = True) -> None:
        super().__init__()
        self.body, self.softmax = body, softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.body(x)
        return torch.softmax(z, -1) if self.softmax else z


@bug("IPS_1", title="TensorFlow MNIST CNN: NaN loss after a while",
     symptom="accuracy collapses, the loss becomes NaN", cause="cross-entropy written as "
     "-reduce_sum(y * log(softmax)): once a probability underflows to 0, log gives -inf and "
     "NaN; the sum makes the step grow with the batch",
     expected=("log-of-zero", "nonfinite", "sum-reduction"),
     fix="softmax_cross_entropy_with_logits on the logits, mean-reduced",
     notes="MNIST 28x28 -> digits 8x8 (so the flatten is 2x2x64)")
def ips_1(fixed: bool) -> Program:
    x, y = digits()
    body = nn.Sequential(trunc(nn.Conv2d(1, 32, 5, padding=2), 0.1), nn.ReLU(),
                         nn.MaxPool2d(2), trunc(nn.Conv2d(32, 64, 5, padding=2), 0.1),
                         nn.ReLU(), nn.MaxPool2d(2), Flatten(), trunc(nn.Linear(256, 1024), 0.1),
                         nn.ReLU(), nn.Dropout(0.5), trunc(nn.Linear(1024, 10), 0.1))
    m = WithSoftmax(body, softmax=not fixed)
    loss = logits_xent if fixed else sum_xent
    return Program(m, x.reshape(-1, 1, 8, 8), onehot(y, 10), loss,
                   torch.optim.Adam(m.parameters(), 1e-4), 50, 300, 10, acc_argmax)


@bug("IPS_4", title="MLP on MNIST: huge loss, accuracy stuck",
     symptom="loss in the thousands, accuracy low", cause="weights and biases drawn from "
     "tf.random_normal (std 1) in a 784-500-500-500-10 ReLU network: the logits are thousands "
     "wide and softmax is saturated from the start",
     expected=("init-loss-high", "signal-exploding"),
     fix="weights with std sqrt(2/fan_in) (He), zero biases",
     notes="784 inputs -> 64 (digits)")
def ips_4(fixed: bool) -> Program:
    x, y = digits()
    layers = [nn.Linear(64, 500), nn.ReLU(), nn.Linear(500, 500), nn.ReLU(), nn.Linear(500, 500),
              nn.ReLU(), nn.Linear(500, 10)]
    for layer in layers:
        if isinstance(layer, nn.Linear):
            if fixed:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
            else:
                normal(layer)
    m = nn.Sequential(*layers)
    return Program(m, x, onehot(y, 10), logits_xent, torch.optim.Adam(m.parameters(), 0.003),
                   100, 300, 10, acc_argmax)


class Line(nn.Module):
    """``y = x * W + B`` with zero-initialised scalars."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w + self.b


def _line_data(seed: int = 20180130, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    r = random.Random(seed)
    w, b = r.uniform(-8, 8), r.uniform(-8, 8)
    xs = [r.uniform(-8, 8) for _ in range(size)]
    xs = [r.uniform(-8, 8) for _ in range(size)]
    ys = [w * v + b + r.uniform(-1, 1) for v in xs]
    return t(xs).reshape(-1, 1), t(ys).reshape(-1, 1)


@bug("IPS_5", title="linear regression with gradient descent diverges",
     symptom="loss grows to inf / NaN", cause="the question blames gradient descent at lr 0.1 "
     "on inputs in [-8, 8]; on the example's own data (8 points from its seed) the curvature "
     "is low enough and lr 0.1 converges to the noise floor in 3 steps, so the port shows no "
     "fault: not scored", fix="learning rate 0.01 (kept as a healthy control)")
def ips_5(fixed: bool) -> Program:
    x, y = _line_data()
    m = Line()
    return Program(m, x, y, nn.MSELoss(), torch.optim.SGD(m.parameters(), 0.01 if fixed else 0.1),
                   8, 300)


class SigmoidMLP(nn.Module):
    """784-512 sigmoid hidden layer without biases, linear output (``y_ = tf.matmul(h1, W)``)."""

    def __init__(self, d: int, sigmoid_out: bool) -> None:
        super().__init__()
        self.h = normal(nn.Linear(d, 512, bias=False))
        self.out = normal(nn.Linear(512, 10, bias=False))
        self.sigmoid_out = sigmoid_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.sigmoid(self.h(x)))


def handwritten_bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``reduce_mean(reduce_sum(-y log(y_) - (1 - y) log(1 - y_), 1))`` on the raw outputs."""
    return (-y * torch.log(p) - (1 - y) * torch.log(1 - p)).sum(1).mean()


@bug("IPS_7", title="hand-written sigmoid cross-entropy gives NaN",
     symptom="loss NaN from the first step", cause="the cross-entropy formula for sigmoid "
     "outputs is applied to the linear outputs (no sigmoid): log of negative numbers and of "
     "values above 1",
     expected=("non-probability-into-prob-loss", "nonfinite", "log-of-zero"),
     fix="tf.nn.sigmoid_cross_entropy_with_logits on the linear outputs (the line the author "
         "commented out)", notes="784 inputs -> 64 (digits)")
def ips_7(fixed: bool) -> Program:
    x, y = digits()
    m = SigmoidMLP(64, False)
    loss = (lambda z, yy: F.binary_cross_entropy_with_logits(z, yy, reduction="sum") / len(z)) \
        if fixed else handwritten_bce
    return Program(m, x, onehot(y, 10), loss, torch.optim.SGD(m.parameters(), 0.05), 100, 300,
                   10, acc_argmax)


@bug("IPS_11", title="MNIST CNN in TensorBoard tutorial: accuracy stuck at 10%",
     symptom="loss stuck at ln 10", cause="the logits layer goes through the same fc_layer "
     "helper, so it has a ReLU: dead logits give a constant softmax and no gradient",
     expected=("dead-relu", "loss-plateau"), scope="training",
     fix="no ReLU on the logits layer", notes="MNIST -> digits 8x8")
def ips_11(fixed: bool) -> Program:
    x, y = digits()

    def conv(cin: int, cout: int) -> list[nn.Module]:
        return [trunc(nn.Conv2d(cin, cout, 5, padding=2), 0.1), nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True)]

    head = [trunc(nn.Linear(1024, 10), 0.1)] + ([] if fixed else [nn.ReLU()])
    m = nn.Sequential(*conv(1, 32), *conv(32, 64), Flatten(), trunc(nn.Linear(256, 1024), 0.1),
                      nn.ReLU(), *head)
    return Program(m, x.reshape(-1, 1, 8, 8), onehot(y, 10), logits_xent,
                   torch.optim.Adam(m.parameters(), 1e-3), 100, 300, 10, acc_argmax)


@bug("IPS_14", title="softmax regression on MNIST: NaN loss",
     symptom="loss NaN, accuracy 10%", cause="-reduce_sum(y * log(softmax)) on a batch with "
     "truncated_normal(std 1) weights on raw pixels: probabilities underflow to 0, log(0) = "
     "-inf; the sum over the batch makes the gradient steps huge",
     expected=("log-of-zero", "nonfinite", "sum-reduction", "lr-too-high", "init-loss-high"),
     fix="mean-reduced softmax_cross_entropy_with_logits with the TensorFlow tutorial's lr 0.5 "
         "(the sum over a batch of 100 had made 0.01 act like 1.0)", notes="MNIST -> digits")
def ips_14(fixed: bool) -> Program:
    x, y = digits()
    lin = nn.Linear(64, 10)
    nn.init.trunc_normal_(lin.weight, 0, 1, -2, 2)
    nn.init.zeros_(lin.bias)
    m = WithSoftmax(lin, softmax=not fixed)
    loss = logits_xent if fixed else sum_xent
    return Program(m, x, onehot(y, 10), loss, torch.optim.SGD(m.parameters(), 0.5 if fixed else 0.01),
                   100, 300, 10, acc_argmax)


class NoBiasLinear(nn.Module):
    """``Yhat = X @ W`` with zero-initialised W."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(d, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


@bug("IPS_15", title="linear regression in TensorFlow: weights go to NaN",
     symptom="loss inf / NaN", cause="gradient descent at lr 0.5 on a feature running to 99 "
     "(unscaled): the step overshoots by orders of magnitude",
     expected=("lr-too-high", "input-not-normalized", "loss-diverging", "nonfinite"),
     fix="feature scaled to [0, 1] (accepted answer: normalise or lower the rate)")
def ips_15(fixed: bool) -> Program:
    n = 100
    noise = t(10 * np.random.default_rng(0).random((n, 1)))
    x = torch.stack([torch.arange(n, dtype=torch.float32), torch.ones(n)], 1)
    y = x @ t([[2.0], [4.0]]) + noise
    if fixed:
        x = torch.stack([x[:, 0] / (n - 1), x[:, 1]], 1)
    m = NoBiasLinear(2)

    def loss(p: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return (1.0 / (2 * n)) * ((yy - p) ** 2).sum()

    return Program(m, x, y, loss, torch.optim.SGD(m.parameters(), 0.5), n, 300)


class Quadratic(nn.Module):
    """``A x^2 + B x + C`` with zero-initialised scalars."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = (nn.Parameter(torch.zeros(1)) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * x ** 2 + self.b * x + self.c


@bug("IPS_17", title="fitting a quadratic with gradient descent does not converge",
     symptom="loss oscillates / grows", cause="a sum-of-squares loss with plain gradient "
     "descent at lr 0.01 on x^2 features up to 9: the step is too large for the curvature the "
     "sum creates", expected=("lr-too-high", "sum-reduction", "loss-oscillating",
                              "loss-diverging"),
     fix="mean-reduced loss")
def ips_17(fixed: bool) -> Program:
    x, y = t([0, 1, 2, 3]), t([0, 1, 4, 9])
    m = Quadratic()
    loss = nn.MSELoss(reduction="mean" if fixed else "sum")
    return Program(m, x, y, loss, torch.optim.SGD(m.parameters(), 0.01), 4, 300)


# ------------------------------------------------------------------ GitHub examples (GH_buggy_examples)
# aymericdamien/TensorFlow-Examples at the buggy commits; "_under_test" files of TheDeepChecker.


class Affine(nn.Module):
    """``x @ W + b`` with ``np.random.randn`` (N(0, 1)) or zero parameters, then a softmax."""

    def __init__(self, d: int, k: int, randn: bool, softmax: bool = True) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(d, k, generator=g) if randn else torch.zeros(d, k))
        self.b = nn.Parameter(torch.randn(1, k, generator=g) if randn else torch.zeros(1, k))
        self.softmax = softmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x @ self.w + self.b
        return torch.softmax(z, -1) if self.softmax else z


def mean_xent(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``reduce_mean(-reduce_sum(y * log(pred), 1))``."""
    return (-(y * torch.log(p)).sum(1)).mean()


@bug("TFE_333", title="TensorFlow-Examples logistic regression: loss NaN",
     symptom="cost NaN", cause="weights and biases from np.random.randn (std 1) on [0, 1] "
     "pixels: the softmax saturates, some probabilities underflow to 0 and the hand-written "
     "-sum(y log(pred)) takes log(0)", expected=("log-of-zero", "init-loss-high", "nonfinite"),
     fix="zero-initialised W and b (the example's original)", notes="MNIST -> digits")
def tfe_333(fixed: bool) -> Program:
    x, y = digits()
    m = Affine(64, 10, randn=not fixed)
    return Program(m, x, onehot(y, 10), mean_xent, torch.optim.SGD(m.parameters(), 0.001),
                   100, 300 if not fixed else 600, 10, acc_argmax)


@bug("TFE_742675d", title="TensorFlow-Examples logistic regression: cost NaN / accuracy drops",
     symptom="cost NaN after some epochs", cause="cross-entropy summed over the batch "
     "(-reduce_sum(y * log(softmax))) with gradient descent at 0.01: the step is 100x the "
     "intended one and log(0) appears once the softmax saturates",
     expected=("sum-reduction", "log-of-zero", "lr-too-high", "nonfinite"),
     fix="reduce_mean over the batch", notes="MNIST -> digits")
def tfe_742675d(fixed: bool) -> Program:
    x, y = digits()
    m = Affine(64, 10, randn=False)
    loss = mean_xent if fixed else sum_xent
    return Program(m, x, onehot(y, 10), loss, torch.optim.SGD(m.parameters(), 0.01), 100,
                   300 if not fixed else 600, 10, acc_argmax)


def relu_mlp_randn(d: int) -> nn.Sequential:
    """784-256-256-10 ReLU MLP, every weight and bias from tf.random_normal (std 1)."""
    layers = [normal(nn.Linear(d, 256)), nn.ReLU(), normal(nn.Linear(256, 256)), nn.ReLU(),
              normal(nn.Linear(256, 10))]
    return nn.Sequential(*layers)


@bug("TFE_bc09f95", title="TensorFlow-Examples TensorBoard MLP: loss explodes",
     symptom="loss in the millions, then NaN", cause="softmax cross-entropy summed over the "
     "batch (reduce_sum instead of the commented-out reduce_mean) on an MLP whose weights and "
     "biases are N(0, 1): huge logits, and a step 100x too large",
     expected=("sum-reduction", "init-loss-high", "lr-too-high", "nonfinite", "signal-exploding"),
     fix="reduce_mean (the line the example had commented out)", notes="MNIST -> digits")
def tfe_bc09f95(fixed: bool) -> Program:
    x, y = digits()
    m = relu_mlp_randn(64)

    def loss(z: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(z, yy.argmax(-1), reduction="mean" if fixed else "sum")

    return Program(m, x, onehot(y, 10), loss, torch.optim.SGD(m.parameters(), 0.01), 100, 300,
                   10, acc_argmax)
