"""Small shared helpers for the ports: Keras defaults written out in PyTorch, losses with Keras
semantics, optimizers with Keras defaults, and generated / bundled data (nothing is downloaded).

Keras defaults translated explicitly:
- ``Dense``/``Conv``: ``glorot_uniform`` kernel (``nn.init.xavier_uniform_``), zero bias;
  ``kernel_initializer='uniform'`` is ``U(-0.05, 0.05)``, ``'normal'``/``'random_normal'`` is
  ``N(0, 0.05)`` (Keras 2).
- ``Adam``: lr 1e-3, eps 1e-7; ``SGD``: lr 0.01; ``RMSprop``: lr 1e-3, rho 0.9, eps 1e-7;
  ``Nadam``: lr 1e-3, eps 1e-7; ``'adamax'``: lr 1e-3.
- ``binary_crossentropy`` on a sigmoid/softmax output: ``nn.BCELoss`` (a PyTorch user's
  translation; Keras clips to [1e-7, 1 - 1e-7] where torch refuses inputs outside [0, 1]).
- ``categorical_crossentropy`` / ``sparse_categorical_crossentropy`` on probabilities: clip to
  [1e-7, 1 - 1e-7], renormalise so the row sums to 1, take ``-log`` of the true class, exactly
  as ``tf.keras.backend.categorical_crossentropy`` does (there is no PyTorch built-in for it).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-7

# ----------------------------------------------------------------------------- layers


def init_(layer: nn.Module, init: str = "glorot_uniform", std: float = 0.05) -> nn.Module:
    """Apply a Keras kernel initializer (bias zero) to a Linear/Conv layer."""
    w = layer.weight  # type: ignore[union-attr]
    if init == "glorot_uniform":
        nn.init.xavier_uniform_(w)
    elif init == "glorot_normal":
        nn.init.xavier_normal_(w)
    elif init == "uniform":
        nn.init.uniform_(w, -0.05, 0.05)
    elif init in ("normal", "random_normal"):
        nn.init.normal_(w, 0.0, std)
    elif init == "he_normal":
        nn.init.kaiming_normal_(w, nonlinearity="relu")
    else:
        raise ValueError(init)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)  # type: ignore[arg-type]
    return layer


def dense(i: int, o: int, init: str = "glorot_uniform", bias: bool = True) -> nn.Linear:
    """Keras ``Dense(o)`` on ``i`` inputs, without its activation."""
    return init_(nn.Linear(i, o, bias=bias), init)  # type: ignore[return-value]


def conv(dim: int, cin: int, cout: int, k: int, stride: int = 1, same: bool = False,
         init: str = "glorot_uniform") -> nn.Module:
    """Keras ``ConvND`` (``padding='same'`` as ``k // 2``), channels first."""
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]
    pad: int | str = ("same" if stride == 1 else k // 2) if same else 0
    return init_(cls(cin, cout, k, stride=stride, padding=pad), init)


class Softmax(nn.Softmax):
    """Keras ``activation='softmax'``: over the last axis."""

    def __init__(self) -> None:
        super().__init__(dim=-1)


ACTS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softmax": Softmax,
        "linear": nn.Identity, "selu": nn.SELU, "elu": nn.ELU, "leaky": nn.LeakyReLU}


def act(name: str) -> nn.Module:
    """A Keras activation by name."""
    return ACTS[name]()


def mlp(d_in: int, *layers: tuple, init: str = "glorot_uniform") -> nn.Sequential:
    """A Keras ``Sequential`` of ``Dense`` layers.

    Each entry is ``(units, activation)``, ``(units, activation, init)`` or ``("dropout", p)``
    / ``("bn",)``.
    """
    mods: list[nn.Module] = []
    d = d_in
    for spec in layers:
        if spec[0] == "dropout":
            mods.append(nn.Dropout(spec[1]))
        elif spec[0] == "bn":
            mods.append(nn.BatchNorm1d(d, eps=1e-3, momentum=0.01))
        else:
            units, a = spec[0], spec[1]
            mods += [dense(d, units, spec[2] if len(spec) > 2 else init), act(a)]
            d = units
    return nn.Sequential(*mods)


class Last(nn.Module):
    """A Keras recurrent layer: ``return_sequences`` or the last step's output.

    Keras init: glorot_uniform input kernel, orthogonal recurrent kernel, zero biases (LSTM: unit
    forget bias 1).
    """

    def __init__(self, cell: str, i: int, h: int, sequences: bool = False) -> None:
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](i, h, batch_first=True)
        self.sequences = sequences
        for name, p in self.rnn.named_parameters():
            if name.startswith("weight_ih"):
                for chunk in p.data.chunk(4 if cell == "lstm" else 3):
                    nn.init.xavier_uniform_(chunk)
            elif name.startswith("weight_hh"):
                for chunk in p.data.chunk(4 if cell == "lstm" else 3):
                    nn.init.orthogonal_(chunk)
            else:
                nn.init.zeros_(p)
                if cell == "lstm" and name.startswith("bias_ih"):
                    p.data[h:2 * h] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out if self.sequences else out[:, -1]


class Flatten(nn.Flatten):
    """Keras ``Flatten``."""


class GlobalAvg(nn.Module):
    """Keras ``GlobalAveragePooling``: mean over every axis after the channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(-1)


class GlobalMax(nn.Module):
    """Keras ``GlobalMaxPooling``: max over every axis after the channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).amax(-1)


class Permute(nn.Module):
    """Move the channel axis (Keras is channels-last; Conv1d wants channels first)."""

    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


# ----------------------------------------------------------------------------- losses


class CategoricalCE(nn.Module):
    """Keras ``categorical_crossentropy`` on probabilities (one-hot targets)."""

    def forward(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = p.clamp(EPS, 1 - EPS)
        p = p / p.sum(-1, keepdim=True)
        return -(y * torch.log(p)).sum(-1).mean()


class SparseCE(nn.Module):
    """Keras ``sparse_categorical_crossentropy`` on probabilities (index targets)."""

    def forward(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = p.clamp(EPS, 1 - EPS)
        p = p / p.sum(-1, keepdim=True)
        return F.nll_loss(torch.log(p), y.reshape(-1).long())


class CategoricalCEFromLogits(nn.Module):
    """Keras ``CategoricalCrossentropy(from_logits=True)`` (one-hot targets)."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -(y * F.log_softmax(z, dim=-1)).sum(-1).mean()


class MAPE(nn.Module):
    """Keras ``mean_absolute_percentage_error``."""

    def forward(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 100 * ((y - p).abs() / y.abs().clamp(min=EPS)).mean()


class LogCosh(nn.Module):
    """Keras ``logcosh``."""

    def forward(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d = p - y
        return (d + F.softplus(-2 * d) - np.log(2.0)).mean()


def poisson() -> nn.Module:
    """Keras ``poisson``: ``mean(y_pred - y_true * log(y_pred + eps))``."""
    return nn.PoissonNLLLoss(log_input=False, eps=EPS)


# ----------------------------------------------------------------------------- optimizers


def adam(m: nn.Module, lr: float = 1e-3) -> torch.optim.Adam:
    return torch.optim.Adam(m.parameters(), lr=lr, eps=EPS)


def sgd(m: nn.Module, lr: float = 0.01, momentum: float = 0.0,
        nesterov: bool = False) -> torch.optim.SGD:
    return torch.optim.SGD(m.parameters(), lr=lr, momentum=momentum, nesterov=nesterov)


def rmsprop(m: nn.Module, lr: float = 1e-3) -> torch.optim.RMSprop:
    return torch.optim.RMSprop(m.parameters(), lr=lr, alpha=0.9, eps=EPS)


def nadam(m: nn.Module, lr: float = 1e-3) -> torch.optim.NAdam:
    return torch.optim.NAdam(m.parameters(), lr=lr, eps=EPS)


def adamax(m: nn.Module, lr: float = 1e-3) -> torch.optim.Adamax:
    return torch.optim.Adamax(m.parameters(), lr=lr, eps=EPS)


# ----------------------------------------------------------------------------- data


def t(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=dtype)


@cache
def _classification(n: int, d: int, classes: int, informative: int, seed: int,
                    redundant: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification
    return make_classification(n, d, n_classes=classes, n_informative=informative,
                               n_redundant=redundant, random_state=seed)


def classification(n: int, d: int, classes: int = 2, informative: int = 2, seed: int = 42,
                   redundant: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn ``make_classification`` (the generator the deepmufl reductions use)."""
    x, y = _classification(n, d, classes, informative, seed, min(redundant, d - informative))
    return t(x), t(y, torch.long)


def regression(n: int, d: int, targets: int = 1, informative: int = 10,
               seed: int = 42) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn ``make_regression`` targets, shape (n, targets)."""
    from sklearn.datasets import make_regression
    x, y = make_regression(n, d, n_targets=targets, n_informative=min(informative, d),
                           random_state=seed)
    return t(x), t(y).reshape(n, targets)


def onehot(y: torch.Tensor, k: int | None = None) -> torch.Tensor:
    """Keras ``to_categorical``."""
    return F.one_hot(y.long(), k or int(y.max()) + 1).float()


def col(y: torch.Tensor) -> torch.Tensor:
    """Targets as a column, shape (n, 1), float (what Keras feeds a one-unit output)."""
    return y.float().reshape(-1, 1)


@cache
def _bundled(name: str) -> tuple[np.ndarray, np.ndarray]:
    import sklearn.datasets as ds
    return getattr(ds, f"load_{name}")(return_X_y=True)


def bundled(name: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled ``digits``, ``iris``, ``breast_cancer``, ``wine``, ``diabetes``,
    raw (unscaled), shuffled with a fixed seed."""
    x, y = _bundled(name)
    perm = np.random.default_rng(seed).permutation(len(y))
    return t(x[perm]), t(y[perm], torch.long if name != "diabetes" else torch.float32)


def standardize(x: torch.Tensor) -> torch.Tensor:
    """scikit-learn ``StandardScaler`` over the first axis."""
    return (x - x.mean(0)) / x.std(0, unbiased=False).clamp(min=1e-8)


def minmax(x: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """scikit-learn ``MinMaxScaler`` over the first axis."""
    mn, mx = x.min(0).values, x.max(0).values
    return lo + (hi - lo) * (x - mn) / (mx - mn).clamp(min=1e-12)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- accuracy


def acc_argmax(out: torch.Tensor, y: torch.Tensor) -> float:
    """Multi-class accuracy; targets one-hot or indices."""
    yi = y.argmax(-1) if y.dim() == out.dim() and y.shape[-1] > 1 else y.reshape(-1)
    return (out.argmax(-1).reshape(-1) == yi.reshape(-1)).float().mean().item()


def acc_binary(out: torch.Tensor, y: torch.Tensor, threshold: float = 0.5) -> float:
    """Binary accuracy of a one-unit probability (or logit with ``threshold=0``)."""
    return ((out.reshape(-1) > threshold).float() == y.reshape(-1)).float().mean().item()


def acc_logit(out: torch.Tensor, y: torch.Tensor) -> float:
    return acc_binary(out, y, 0.0)
