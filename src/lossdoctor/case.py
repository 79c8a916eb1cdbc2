"""A diagnosis input (model, batch, loss, optimizer) and how to copy it without touching it."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from lossdoctor.errors import LossDoctorError


@dataclass(frozen=True)
class Case:
    """Everything one diagnosis runs on.

    Attributes:
        model: the model.
        inputs: the input batch (tensor, tuple or dict).
        targets: the targets.
        loss_fn: ``(output, targets) -> scalar``.
        optimizer: the optimizer, or None.
    """

    model: nn.Module
    inputs: Any
    targets: Any
    loss_fn: Callable[[Any, Any], torch.Tensor]
    optimizer: torch.optim.Optimizer | None = None

    def with_(self, **changes: Any) -> Case:
        """A copy with some fields replaced."""
        return replace(self, **changes)


def rebuild_optimizer(
    opt: torch.optim.Optimizer, mapping: Mapping[int, torch.Tensor], cls: type | None = None,
    **overrides: Any,
) -> torch.optim.Optimizer:
    """A fresh optimizer of the same kind over mapped parameters (state is not carried over).

    Args:
        opt: the optimizer to imitate.
        mapping: ``id(original parameter) -> replacement parameter``.
        cls: another optimizer class to build instead (e.g. AdamW for Adam).
        **overrides: group settings to change in every group.
    """
    groups = []
    for g in opt.param_groups:
        params = [mapping[id(p)] for p in g["params"] if id(p) in mapping]
        if params:
            settings = {k: v for k, v in g.items() if k != "params"}
            settings.update(overrides)
            groups.append({**settings, "params": params})
    target = cls or type(opt)
    if target is not type(opt):
        keep = {"lr", "weight_decay", "betas", "eps", "amsgrad", "maximize"}
        groups = [{k: v for k, v in g.items() if k in keep or k == "params"} for g in groups]
    return target(groups)  # type: ignore[no-any-return]


def copy_case(case: Case) -> tuple[Case, dict[int, nn.Parameter]]:
    """Deep-copy the model (and an ``nn.Module`` loss), rebuild the optimizer on the copy.

    Returns:
        The copy and the ``id(original parameter) -> copied parameter`` mapping.

    Raises:
        LossDoctorError: the model cannot be deep-copied.
    """
    try:
        model = copy.deepcopy(case.model)
    except Exception as e:  # noqa: BLE001 - any copy failure means: cannot verify
        raise LossDoctorError(f"the model cannot be deep-copied ({type(e).__name__}: {e})") from e
    mapping = {id(p): q for p, q in zip(case.model.parameters(), model.parameters(), strict=True)}
    loss_fn = copy.deepcopy(case.loss_fn) if isinstance(case.loss_fn, nn.Module) else case.loss_fn
    opt = _copy_optimizer(case, model, mapping) if case.optimizer is not None else None
    return Case(model, case.inputs, case.targets, loss_fn, opt), mapping


def _copy_optimizer(case: Case, model: nn.Module,
                    mapping: dict[int, nn.Parameter]) -> torch.optim.Optimizer:
    """Rebuild the optimizer on the copy; one whose constructor takes more than the parameter
    groups (a custom optimizer holding the model, say) is deep-copied onto the copy instead."""
    assert case.optimizer is not None
    try:
        return rebuild_optimizer(case.optimizer, mapping)
    except Exception as first:  # noqa: BLE001 - try the other way before giving up
        memo: dict[int, Any] = {id(case.model): model, **mapping}
        try:
            opt = copy.deepcopy(case.optimizer, memo)
        except Exception as e:  # noqa: BLE001 - any copy failure means: cannot verify
            raise LossDoctorError(
                f"the optimizer cannot be copied onto a copy of the model ({type(first).__name__}: "
                f"{first}; deep copy: {type(e).__name__}: {e})") from e
        opt.state.clear()  # a fresh optimizer, like rebuild_optimizer
        return opt
