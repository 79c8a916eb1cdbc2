"""Story 3: how a loss is put together, each number computed by the code line shown beside it.

Every row is a Python expression evaluated with PyTorch's own functions, so the code on screen is
exactly the code that produced the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SETUP = """\
logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
labels = torch.tensor([0, 1])
onehot = F.one_hot(labels, 3).float()
multihot = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
w = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
ones = torch.ones(2, 3)
l2_loss = lambda t: (t ** 2).sum() / 2"""

ROWS: tuple[tuple[str, str], ...] = (
    ("softmax cross-entropy, sparse labels", "F.cross_entropy(logits, labels)"),
    ("softmax cross-entropy, one-hot labels", "F.cross_entropy(logits, onehot)"),
    ("  same, by hand", "-(onehot * F.log_softmax(logits, dim=1)).sum(1).mean()"),
    ("sigmoid cross-entropy (multi-label)",
     "F.binary_cross_entropy_with_logits(logits, multihot)"),
    ("  same, by hand",
     "-(multihot * F.logsigmoid(logits) + (1 - multihot) * F.logsigmoid(-logits)).mean()"),
    ("l2_loss(w) = sum(w**2) / 2", "l2_loss(w)"),
    ("sum over axis 0", "ones.sum(0)"),
    ("sum over axis 1", "ones.sum(1)"),
    ("sum over all", "ones.sum()"),
    ("mean over axis 0", "ones.mean(0)"),
    ("mean over axis 1", "ones.mean(1)"),
    ("mean over all", "ones.mean()"),
    ("cross-entropy, reduction='sum'", "F.cross_entropy(logits, labels, reduction='sum')"),
    ("cross-entropy, reduction='none'", "F.cross_entropy(logits, labels, reduction='none')"),
)


@dataclass(frozen=True)
class Row:
    """One line of the table.

    Attributes:
        label: what it shows.
        code: the expression evaluated.
        value: its value as plain numbers.
    """

    label: str
    code: str
    value: float | list[float]


def _plain(x: Any) -> float | list[float]:
    if isinstance(x, torch.Tensor):
        return x.item() if x.dim() == 0 else [round(float(v), 6) for v in x.reshape(-1)]
    return float(x)


def namespace() -> dict[str, Any]:
    """The names the rows are evaluated in (after running :data:`SETUP`)."""
    ns: dict[str, Any] = {"torch": torch, "F": F}
    exec(SETUP, ns)  # noqa: S102 - our own constant code, shown to the user verbatim
    return ns


def table() -> list[Row]:
    """Evaluate every row."""
    ns = namespace()
    return [Row(label, code, _plain(eval(code, ns))) for label, code in ROWS]  # noqa: S307


def l2_both_ways(model: nn.Module, beta: float = 1.0) -> dict[str, float]:
    """L2 added over every trainable variable versus over weight matrices only.

    Returns:
        ``all`` (biases included), ``weights`` (per-layer weights only), ``bias_share`` (the part
        of ``all`` that comes from biases) and ``beta``.
    """
    with torch.no_grad():
        every = beta * sum(float((p**2).sum()) / 2 for p in model.parameters() if p.requires_grad)
        weights = beta * sum(float((p**2).sum()) / 2 for p in model.parameters()
                             if p.requires_grad and p.dim() >= 2)
    return {"beta": beta, "all": every, "weights": weights,
            "bias_share": (every - weights) / every if every else 0.0}
