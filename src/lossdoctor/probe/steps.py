"""A few optimizer steps on a copy: the loss trajectory and the update-to-weight ratio.

Used for ``lr-too-high`` / ``lr-too-low`` and as the baseline of fix verification. Every step
runs on a deep copy; gradients come from ``torch.autograd.grad`` over the copy's parameters and
are written to their ``.grad`` only.
"""

from __future__ import annotations

import inspect
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from lossdoctor.budget import Budget
from lossdoctor.case import Case, copy_case
from lossdoctor.checks.progress import progress
from lossdoctor.errors import LossFnError, ModelError, OptimizerError
from lossdoctor.probe.run import call_model
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import PrecisionStats, StepStats

LOW_PRECISION = (torch.float16, torch.bfloat16)

DEFAULT_LR, DEFAULT_MOMENTUM = 0.01, 0.9


def needs_closure(opt: torch.optim.Optimizer | None) -> bool:
    """Whether ``opt.step`` requires a closure that re-evaluates the loss (LBFGS and kin)."""
    try:
        closure = inspect.signature(opt.step).parameters.get("closure") if opt else None
    except (TypeError, ValueError):
        return False
    return closure is not None and closure.default is inspect.Parameter.empty


def _loss(case: Case, step: int) -> torch.Tensor:
    """One forward and loss on the batch; the user's code raising is reported as such."""
    try:
        output = call_model(case.model, case.inputs)
    except Exception as e:
        raise ModelError(f"the model raised {type(e).__name__}: {e} (in optimizer step {step} "
                         "on a copy)") from e
    try:
        loss = case.loss_fn(output, case.targets)
    except Exception as e:
        raise LossFnError(f"loss_fn raised {type(e).__name__}: {e} (in optimizer step {step} on "
                          "a copy)") from e
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise LossFnError(f"loss_fn returned {type(loss).__name__} in optimizer step {step}, not "
                          "a scalar tensor")
    return loss


def _set_grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> None:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    for p, grad in zip(params, grads, strict=True):
        p.grad = grad  # None for an unused parameter, as after zero_grad(set_to_none=True)


def train_steps(case: Case, steps: int, ratios: list[float] | None = None,
                stop: Callable[[list[float]], bool] | None = None) -> list[float]:
    """Loss before each of ``steps`` optimizer steps on the batch, and after the last.

    Args:
        case: a :class:`~lossdoctor.case.Case` (already a copy: it is trained).
        steps: optimizer steps.
        ratios: when given, receives ||w_1 - w_0|| / ||w_0|| of every weight matrix after the
            first step.
        stop: called with the losses so far before each further step; True ends the steps.

    Raises:
        ModelError, LossFnError: the user's model or loss raised in a step.
        OptimizerError: the optimizer raised in its step.
    """
    model = case.model
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        steps = 0  # nothing to step: the loss as it is
    opt = case.optimizer
    if opt is None and params:
        opt = torch.optim.SGD(params, lr=DEFAULT_LR, momentum=DEFAULT_MOMENTUM)
    closure_step = needs_closure(opt)
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(0)
        for step in range(steps + 1):
            loss = _loss(case, step)
            value = float(loss.detach())
            losses.append(value)
            if step == steps or not math.isfinite(value) or not loss.requires_grad \
                    or (stop is not None and stop(losses)):
                break
            _set_grads(loss, params)
            before = ([p.detach().clone() for p in params if p.dim() >= 2]
                      if step == 0 and ratios is not None else None)

            def closure(_step: int = step) -> torch.Tensor:
                with torch.enable_grad():
                    again = _loss(case, _step)
                    if again.requires_grad:
                        _set_grads(again, params)
                return again.detach()

            try:
                opt.step(closure) if closure_step else opt.step()  # type: ignore[union-attr,arg-type]
            except (ModelError, LossFnError):
                raise
            except Exception as e:
                raise OptimizerError(f"{type(opt).__name__}.step raised {type(e).__name__}: "
                                     f"{e}") from e
            if before is not None and ratios is not None:
                weights = [p for p in params if p.dim() >= 2]
                for w0, w1 in zip(before, weights, strict=True):
                    norm = float(w0.double().norm())
                    if norm > 0:
                        ratios.append(float((w1.detach() - w0).double().norm()) / norm)
    return losses


def settled(losses: Sequence[float], ratios: Sequence[float], steps: int, th: Thresholds,
            need_progress: bool = True) -> bool:
    """Whether the probe steps can stop early: every loss finite, the first step's update/weight
    ratio inside its lines, the loss lower than at the start, and past half of ``steps`` with
    the loss already down by ``learning_progress`` when a finding waits on that progress
    (``need_progress``), past a quarter of them when none does.

    No learning-rate finding can then come from the remaining steps unless the loss later climbs
    back by half of its start, and the findings the steps downgrade when the set-up learns are
    decided. Measured on the fault benchmark: these lines give the same findings and verdicts as
    20 full steps on all 72 scenarios; a third or a quarter with a finding waiting loses the late
    divergence of ``story3-sum-reduction`` (SGD on a summed loss: falls, then blows up).
    """
    if len(losses) - 1 < max(steps // (2 if need_progress else 4), 1) \
            or not all(math.isfinite(v) for v in losses):
        return False
    if ratios and not th.update_ratio_low <= statistics.median(ratios) <= th.update_ratio_high:
        return False
    if not losses[-1] < losses[0]:
        return False
    return not need_progress or progress(tuple(losses), th) is not None


def step_stats(case: Case, steps: int, th: Thresholds | None = None,
               budget: Budget | None = None, need_progress: bool = True) -> StepStats:
    """Train a copy of ``case`` for up to ``steps`` steps and summarise what happened.

    The steps stop early once they have :func:`settled` (the set-up learns at a sane step size)
    or when the next one would not fit the ``budget``; the budget learns the cost of one step
    from them. ``need_progress``: a finding waits on whether the loss falls by
    ``learning_progress``.
    """
    th = th or Thresholds()
    budget = budget or Budget(None)
    start = time.perf_counter()
    copy, _ = copy_case(case)
    ratios: list[float] = []

    def stop(losses: list[float]) -> bool:
        done = len(losses) - 1
        budget.step_seconds = (time.perf_counter() - start) / max(done, 1)
        if not budget.allows(1):
            budget.skipped.append(f"probe steps stopped after {done} of {steps}")
            return True
        return settled(losses, ratios, steps, th, need_progress)

    losses = train_steps(copy, steps, ratios, stop)
    budget.step_seconds = (time.perf_counter() - start) / max(len(losses) - 1, 1)
    del copy
    opt = case.optimizer
    lrs = [float(g["lr"]) for g in opt.param_groups] if opt is not None else [DEFAULT_LR]
    return StepStats(
        losses=tuple(losses), update_ratios=tuple(ratios),
        optimizer=type(opt).__name__ if opt is not None else "SGD (default: lr 0.01, momentum 0.9)",
        lr=max(lrs), given=opt is not None, closure=needs_closure(opt),
    )


def _to_float32(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.float() if x.dtype in LOW_PRECISION else x
    if isinstance(x, (tuple, list)) and not hasattr(x, "_fields"):
        return type(x)(_to_float32(v) for v in x)
    if isinstance(x, dict):
        return {k: _to_float32(v) for k, v in x.items()}
    return x


def float32_replay(case: Case, steps: int) -> PrecisionStats | None:
    """For a float16/bfloat16 model: the first loss and the probe steps on a float32 copy.

    Returns None when the model is not in low precision or the copy cannot run.
    """
    low = [p for p in case.model.parameters() if p.dtype in LOW_PRECISION]
    if not low:
        return None
    try:
        copy, _ = copy_case(case)
        copy.model.float()  # in place: the copied optimizer keeps pointing at the parameters
        if isinstance(copy.loss_fn, torch.nn.Module):
            copy.loss_fn.float()
        copy = copy.with_(inputs=_to_float32(copy.inputs), targets=_to_float32(copy.targets))
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(0)
            first = float(_loss(copy, 0).detach())
        fp32_steps = step_stats(copy, steps) if steps else None
    except Exception:  # noqa: BLE001 - the replay is extra evidence, never a failure
        return None
    return PrecisionStats(dtype=str(low[0].dtype).removeprefix("torch."), params=len(low),
                          loss=first, fp32_steps=fp32_steps)
