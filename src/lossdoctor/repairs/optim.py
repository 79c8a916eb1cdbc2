"""Optimizer and reduction repairs, applied to the copied case."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossdoctor.case import Case, rebuild_optimizer
from lossdoctor.errors import LossDoctorError
from lossdoctor.probe.kinds import is_norm


def _identity(case: Case) -> dict[int, torch.Tensor]:
    return {id(p): p for p in case.model.parameters()}


def adamw(case: Case) -> Case:
    """Adam with coupled L2 -> AdamW with the same learning rate and decay."""
    if case.optimizer is None:
        raise LossDoctorError("no optimizer to change")
    return case.with_(optimizer=rebuild_optimizer(case.optimizer, _identity(case),
                                                  cls=torch.optim.AdamW))


def no_decay_groups(case: Case) -> Case:
    """Split every group into weights (decayed) and biases/norm parameters (not decayed)."""
    opt = case.optimizer
    if opt is None:
        raise LossDoctorError("no optimizer to change")
    exempt = {id(p) for m in case.model.modules() for p in m.parameters(recurse=False)
              if is_norm(m) or p.dim() < 2}
    groups = []
    for g in opt.param_groups:
        settings = {k: v for k, v in g.items() if k != "params"}
        keep = [p for p in g["params"] if id(p) not in exempt]
        free = [p for p in g["params"] if id(p) in exempt]
        if keep:
            groups.append({**settings, "params": keep})
        if free:
            groups.append({**settings, "params": free, "weight_decay": 0.0})
    return case.with_(optimizer=type(opt)(groups))  # type: ignore[call-arg]


class MeanOf(nn.Module):
    """Wrap a sum-reduced loss and divide it by the batch size."""

    def __init__(self, loss_fn: Any, batch: int) -> None:
        super().__init__()
        self.loss_fn = loss_fn
        self.batch = batch

    def forward(self, output: Any, targets: Any) -> torch.Tensor:
        return self.loss_fn(output, targets) / self.batch  # type: ignore[no-any-return]


def mean_reduction(case: Case, batch: int, adam_family: bool) -> Case:
    """``sum`` -> ``mean``; for SGD-like optimizers the learning rate x B keeps the step."""
    loss = case.loss_fn
    if isinstance(loss, nn.Module) and getattr(loss, "reduction", None) == "sum":
        loss.reduction = "mean"  # type: ignore[assignment]
    else:
        loss = MeanOf(loss, batch)
    case = case.with_(loss_fn=loss)
    if case.optimizer is not None and not adam_family:
        for g in case.optimizer.param_groups:
            g["lr"] = g["lr"] * batch
    return case


def lower_weight_decay(case: Case, factor: float) -> Case:
    """Divide every group's weight decay by ``factor``."""
    if case.optimizer is None:
        raise LossDoctorError("no optimizer to change")
    for g in case.optimizer.param_groups:
        g["weight_decay"] = g.get("weight_decay", 0.0) / factor
    return case


def scale_lr(case: Case, factor: float) -> Case:
    """Multiply every group's learning rate by ``factor``."""
    if case.optimizer is None:
        raise LossDoctorError("no optimizer given: pass yours to change its learning rate")
    for g in case.optimizer.param_groups:
        g["lr"] = g["lr"] * factor
    return case
