"""A few optimizer steps on a copy: the loss trajectory and the update-to-weight ratio.

Used for ``lr-too-high`` / ``lr-too-low`` and as the baseline of fix verification. Every step
runs on a deep copy; gradients come from ``torch.autograd.grad`` over the copy's parameters and
are written to their ``.grad`` only.
"""

from __future__ import annotations

import math

import torch

from lossdoctor.case import Case, copy_case
from lossdoctor.probe.run import call_model
from lossdoctor.trace import StepStats

DEFAULT_LR, DEFAULT_MOMENTUM = 0.01, 0.9


def train_steps(case: Case, steps: int, ratios: list[float] | None = None) -> list[float]:
    """Loss before each of ``steps`` optimizer steps on the batch, and after the last.

    Args:
        case: a :class:`~lossdoctor.case.Case` (already a copy: it is trained).
        steps: optimizer steps.
        ratios: when given, receives ||w_1 - w_0|| / ||w_0|| of every weight matrix after the
            first step.
    """
    model = case.model
    params = [p for p in model.parameters() if p.requires_grad]
    opt = case.optimizer or torch.optim.SGD(params, lr=DEFAULT_LR, momentum=DEFAULT_MOMENTUM)
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(0)
        for step in range(steps + 1):
            loss = case.loss_fn(call_model(model, case.inputs), case.targets)
            value = float(loss.detach())
            losses.append(value)
            if step == steps or not math.isfinite(value) or not loss.requires_grad:
                break
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for p, grad in zip(params, grads, strict=True):
                p.grad = torch.zeros_like(p) if grad is None else grad
            before = ([p.detach().clone() for p in params if p.dim() >= 2]
                      if step == 0 and ratios is not None else None)
            opt.step()
            if before is not None and ratios is not None:
                weights = [p for p in params if p.dim() >= 2]
                for w0, w1 in zip(before, weights, strict=True):
                    norm = float(w0.double().norm())
                    if norm > 0:
                        ratios.append(float((w1.detach() - w0).double().norm()) / norm)
    return losses


def step_stats(case: Case, steps: int) -> StepStats:
    """Train a copy of ``case`` for ``steps`` steps and summarise what happened."""
    copy, _ = copy_case(case)
    ratios: list[float] = []
    losses = train_steps(copy, steps, ratios)
    opt = case.optimizer
    lrs = [float(g["lr"]) for g in opt.param_groups] if opt is not None else [DEFAULT_LR]
    return StepStats(
        losses=tuple(losses), update_ratios=tuple(ratios),
        optimizer=type(opt).__name__ if opt is not None else "SGD (default: lr 0.01, momentum 0.9)",
        lr=max(lrs), given=opt is not None,
    )
