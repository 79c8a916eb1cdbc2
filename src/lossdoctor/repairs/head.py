"""Loss-head repairs: return logits and let the loss apply softmax/sigmoid in the log domain."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossdoctor.case import Case
from lossdoctor.errors import LossDoctorError

_HEADS = (nn.Softmax, nn.Sigmoid, nn.LogSoftmax)


def _last_leaf(model: nn.Module) -> tuple[nn.Module, str, nn.Module]:
    """(parent, attribute name, module) of the last leaf module registered in the model."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    if not leaves:
        raise LossDoctorError("the model has no submodules to edit")
    name, module = leaves[-1]
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    return parent, attr, module


def drop_final_activation(case: Case) -> Case:
    """Replace a final ``nn.Softmax``/``nn.Sigmoid`` module with ``nn.Identity`` (in the copy).

    Raises:
        LossDoctorError: the output activation is not the model's last module.
    """
    parent, attr, module = _last_leaf(case.model)
    if not isinstance(module, _HEADS) or not attr:
        raise LossDoctorError("the output activation is not a module at the end of the model "
                              "(a functional softmax/sigmoid must be removed by hand)")
    setattr(parent, attr, nn.Identity())
    return case


class BCEFromLogits(nn.Module):
    """Binary cross-entropy on logits, with float targets of the output's shape."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets.float().reshape(logits.shape))


class CEFromOneHot(nn.Module):
    """Cross-entropy on logits with one-hot (or index) targets."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        y = targets.argmax(1) if targets.dim() == logits.dim() else targets.long()
        return F.cross_entropy(logits, y)


def logits_loss(case: Case, producer: str | None) -> Case:
    """Squared error on a sigmoid/softmax output -> the matching cross-entropy on logits."""
    case = drop_final_activation(case)
    loss: Any = CEFromOneHot() if producer == "softmax" else BCEFromLogits()
    return case.with_(loss_fn=loss)
