"""``diagnose``: probe one batch, run the checks, return a report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from lossdoctor.case import Case
from lossdoctor.checks import run_checks
from lossdoctor.checks.catalog import EXPLAINS_LOSS_ERROR
from lossdoctor.errors import LossDoctorError, LossFnError
from lossdoctor.probe import probe
from lossdoctor.probe.guard import untouched
from lossdoctor.probe.steps import step_stats
from lossdoctor.repairs.verify import verify
from lossdoctor.report import Report
from lossdoctor.task import TASKS
from lossdoctor.theory.gain import with_prediction
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Task


def diagnose(
    model: nn.Module,
    inputs: Any,
    targets: Any,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    optimizer: torch.optim.Optimizer | None = None,
    *,
    task: Task | None = None,
    verify_steps: int = 20,
    thresholds: Thresholds | None = None,
) -> Report:
    """Diagnose one batch: why does this loss look the way it does?

    The model, its gradients, modes and buffers, the optimizer and every global RNG are left
    bit-identical, also when the model or the loss raises.

    Args:
        model: any ``nn.Module``, in the mode (train/eval) it will be trained in.
        inputs: a tensor, a tuple/list of positional inputs, or a dict of keyword inputs.
        targets: what ``loss_fn`` takes as its second argument.
        loss_fn: ``(output, targets) -> scalar``: an ``nn.Module`` loss, ``F.cross_entropy``,
            or any hand-written expression.
        optimizer: the optimizer to check (its configuration only; it is never stepped).
        task: ``multiclass``, ``binary``, ``multilabel`` or ``regression`` to override inference.
        verify_steps: optimizer steps on the batch, on a deep copy, used to judge the learning
            rate and to verify each mechanical fix (with and without it, same RNG state); 0 turns
            both off.
        thresholds: the lines the checks draw (:class:`~lossdoctor.Thresholds`).

    Returns:
        A :class:`Report` with the findings and the measured trace.

    Raises:
        LossDoctorError: the arguments are not usable (wrong types, the model or loss raises).
    """
    if not isinstance(model, nn.Module):
        raise LossDoctorError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise LossDoctorError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise LossDoctorError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not isinstance(verify_steps, int) or verify_steps < 0:
        raise LossDoctorError(f"verify_steps must be a non-negative integer, got {verify_steps!r}")
    if thresholds is not None and not isinstance(thresholds, Thresholds):
        raise LossDoctorError(
            f"thresholds must be a lossdoctor.Thresholds, got {type(thresholds).__name__}")
    if task is not None and task not in TASKS:
        raise LossDoctorError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    with untouched(model):
        trace = probe(model, inputs, targets, loss_fn, optimizer, task)
    trace = with_prediction(trace, model, inputs)
    if verify_steps and trace.loss.error is None and trace.loss.requires_grad:
        case = Case(model, inputs, targets, loss_fn, optimizer)
        with untouched(model):
            try:
                trace = replace(trace, steps=step_stats(case, verify_steps))
            except Exception as e:  # noqa: BLE001 - e.g. an uncopyable model, LBFGS's closure
                trace = replace(trace, notes=(*trace.notes, f"probe steps skipped: {e}"))
    findings = run_checks(trace, thresholds)
    if trace.loss.error is not None and not any(f.code in EXPLAINS_LOSS_ERROR for f in findings):
        shapes = ""
        if trace.output is not None and trace.targets is not None:
            shapes = (f" (output shape {tuple(trace.output.stats.shape)}, targets shape "
                      f"{tuple(trace.targets.stats.shape)})")
        raise LossFnError(f"loss_fn raised {trace.loss.error}{shapes}")
    if verify_steps and findings and trace.loss.error is None:  # a loss that raises cannot train
        with untouched(model):
            findings = verify(Case(model, inputs, targets, loss_fn, optimizer), trace, findings,
                              verify_steps, task, thresholds)
    return Report(trace=trace, findings=findings)
