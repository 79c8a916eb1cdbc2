"""Story 1 as a configurable pipeline: build, measure the first batch, train, diagnose.

Mirrors the original TensorFlow pipeline: truncated-normal init in TensorFlow's sense (redrawn
beyond 2 standard deviations), dropout, softmax cross-entropy, and L2 added either over every
trainable variable (biases included) or per layer on weights only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lossdoctor.errors import LossDoctorError
from lossdoctor.examples import trunc_normal_tf
from lossdoctor.lab.datasets import Split

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "silu": nn.SiLU,
    "leaky-relu": nn.LeakyReLU, "elu": nn.ELU,
}
LOSSES = ("softmax-ce", "mse", "sigmoid-ce")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")


@dataclass(frozen=True)
class Config:
    """Everything ``lossdoctor lab mlp`` takes.

    Attributes:
        layers: hidden widths.
        act: activation name.
        init: weight init (``trunc-normal:STD``, ``normal:STD``, ``he``, ``xavier``, ``lecun``,
            ``torch-default``).
        bias_init: bias init (same forms, plus ``zeros``).
        dropout: drop probability after every hidden layer (0: none).
        loss: ``softmax-ce``, ``mse`` (on softmax probabilities vs one-hot) or ``sigmoid-ce``.
        l2: L2 coefficient beta; the penalty is beta * sum(l2_loss(p)), l2_loss = sum(p^2) / 2.
        l2_on: ``all`` trainable variables or ``weights`` only.
        optimizer: ``sgd``, ``momentum`` (0.9), ``adam`` or ``adamw``.
        lr: learning rate.
        steps: training steps.
        batch_size: examples per step.
        seed: seed for init, batches and dropout.
    """

    layers: tuple[int, ...] = (750,) * 6
    act: str = "relu"
    init: str = "trunc-normal:0.5"
    bias_init: str = "trunc-normal:0.5"
    dropout: float = 0.5
    loss: str = "softmax-ce"
    l2: float = 0.0
    l2_on: str = "all"
    optimizer: str = "sgd"
    lr: float = 0.01
    steps: int = 300
    batch_size: int = 128
    seed: int = 0


def parse_init(spec: str, allow_zeros: bool) -> Callable[[torch.Tensor, int, torch.Generator], None]:
    """Turn an init spec into a function ``(tensor, fan_in, generator) -> None``."""
    kind, sep, arg = spec.partition(":")
    std: float | None = None
    if kind in ("trunc-normal", "normal"):
        try:
            std = float(arg)
        except ValueError:
            raise LossDoctorError(f"init {spec!r}: give a standard deviation, e.g. {kind}:0.5") from None
        if not std >= 0 or math.isinf(std):
            raise LossDoctorError(f"init {spec!r}: the standard deviation must be finite and >= 0")
    elif (arg or sep) and kind in ("he", "lecun", "xavier", "torch-default", "zeros"):
        raise LossDoctorError(f"init {spec!r}: {kind} takes no argument (only trunc-normal and "
                              "normal take :STD)")

    def draw(t: torch.Tensor, fan_in: int, g: torch.Generator) -> None:
        with torch.no_grad():
            if kind == "trunc-normal":
                trunc_normal_tf(t, float(std), g)  # type: ignore[arg-type]
            elif kind == "normal":
                t.copy_(torch.randn(t.shape, generator=g) * float(std))  # type: ignore[arg-type]
            elif kind == "he":
                t.copy_(torch.randn(t.shape, generator=g) * math.sqrt(2 / fan_in))
            elif kind == "lecun":
                t.copy_(torch.randn(t.shape, generator=g) * math.sqrt(1 / fan_in))
            elif kind == "xavier":
                fan_out = t.shape[0] if t.dim() == 2 else fan_in
                t.copy_(torch.randn(t.shape, generator=g) * math.sqrt(2 / (fan_in + fan_out)))
            elif kind == "zeros":
                t.zero_()
            elif kind == "torch-default":
                bound = 1 / math.sqrt(fan_in)
                t.copy_((torch.rand(t.shape, generator=g) * 2 - 1) * bound)

    known = {"trunc-normal", "normal", "he", "lecun", "xavier", "torch-default"}
    if allow_zeros:
        known.add("zeros")
    if kind not in known:
        raise LossDoctorError(f"unknown init {spec!r}: one of {', '.join(sorted(known))} "
                              "(trunc-normal and normal take :STD)")
    return draw


def build(cfg: Config, n_in: int, n_out: int) -> nn.Sequential:
    """The MLP of the config, initialised from ``cfg.seed``."""
    if cfg.act not in ACTIVATIONS:
        raise LossDoctorError(f"unknown activation {cfg.act!r}: {', '.join(ACTIVATIONS)}")
    if not 0 <= cfg.dropout < 1:
        raise LossDoctorError(f"dropout must be in [0, 1), got {cfg.dropout}")
    if any(w <= 0 for w in cfg.layers):
        raise LossDoctorError("layer widths must be positive")
    w_init, b_init = parse_init(cfg.init, False), parse_init(cfg.bias_init, True)
    g = torch.Generator().manual_seed(cfg.seed)
    mods: list[nn.Module] = []
    widths = [n_in, *cfg.layers, n_out]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        lin = nn.Linear(a, b)
        w_init(lin.weight, a, g)
        b_init(lin.bias, a, g)
        mods.append(lin)
        if i < len(widths) - 2:
            mods.append(ACTIVATIONS[cfg.act]())
            if cfg.dropout:
                mods.append(nn.Dropout(cfg.dropout))
    return nn.Sequential(*mods)


def data_loss(cfg: Config, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The data term of the configured loss."""
    if cfg.loss == "softmax-ce":
        return F.cross_entropy(logits, y)
    onehot = F.one_hot(y, logits.shape[1]).float()
    if cfg.loss == "mse":
        return F.mse_loss(torch.softmax(logits, dim=1), onehot)
    if cfg.loss == "sigmoid-ce":
        return F.binary_cross_entropy_with_logits(logits, onehot)
    raise LossDoctorError(f"unknown loss {cfg.loss!r}: {', '.join(LOSSES)}")


def penalty(cfg: Config, model: nn.Module) -> torch.Tensor:
    """beta * sum of l2_loss over all trainable variables or over weight matrices only."""
    params = [p for p in model.parameters() if p.requires_grad and (cfg.l2_on == "all" or p.dim() >= 2)]
    return cfg.l2 * sum(((p**2).sum() / 2 for p in params), torch.zeros(()))


@dataclass
class LossFn:
    """``data_loss + penalty`` as one callable, so ``diagnose`` sees the split."""

    cfg: Config
    model: nn.Module

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = data_loss(self.cfg, logits, y)
        if self.cfg.l2:
            loss = loss + penalty(self.cfg, self.model)
        return loss


def make_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    """The configured optimizer."""
    if cfg.lr <= 0:
        raise LossDoctorError(f"the learning rate must be positive, got {cfg.lr}")
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    if cfg.optimizer == "momentum":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr)
    raise LossDoctorError(f"unknown optimizer {cfg.optimizer!r}: {', '.join(OPTIMIZERS)}")


@dataclass
class Result:
    """What a lab run measured.

    Attributes:
        first_data_loss: data term of the first batch's loss.
        first_penalty: L2 term of the first batch's loss.
        losses: total loss at every step.
        train_accuracy: accuracy on the training set after training (eval mode).
        test_accuracy: accuracy on the test set after training (eval mode).
        chance: ln K.
    """

    first_data_loss: float
    first_penalty: float
    losses: list[float] = field(default_factory=list)
    train_accuracy: float = math.nan
    test_accuracy: float = math.nan
    chance: float = math.nan


def batches(split: Split, cfg: Config) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A seeded sampler of training batches."""
    g = torch.Generator().manual_seed(cfg.seed + 1)
    n = len(split.y_train)

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, n, (min(cfg.batch_size, n),), generator=g)
        return split.x_train[idx], split.y_train[idx]

    return next_batch


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correct argmax predictions, in eval mode (restored afterwards)."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return float((model(x).argmax(1) == y).float().mean())
    finally:
        model.train(was)


def train(cfg: Config, split: Split, model: nn.Module, first: tuple[torch.Tensor, torch.Tensor],
          on_step: Callable[[int, float], None] | None = None) -> Result:
    """Measure the first batch, then train ``cfg.steps`` steps (the first on that batch)."""
    if cfg.steps < 0 or cfg.batch_size <= 0:
        raise LossDoctorError("steps must be >= 0 and batch size > 0")
    loss_fn = LossFn(cfg, model)
    opt = make_optimizer(cfg, model)
    next_batch = batches(split, cfg)
    torch.manual_seed(cfg.seed)  # dropout masks of the first batch and of training
    with torch.no_grad():
        logits = model(first[0])
        result = Result(float(data_loss(cfg, logits, first[1])), float(penalty(cfg, model)),
                        chance=math.log(split.classes))
    x, y = first
    for step in range(cfg.steps):
        loss = loss_fn(model(x), y)
        result.losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step, result.losses[-1])
        x, y = next_batch()
    result.train_accuracy = accuracy(model, split.x_train, split.y_train)
    result.test_accuracy = accuracy(model, split.x_test, split.y_test)
    return result
