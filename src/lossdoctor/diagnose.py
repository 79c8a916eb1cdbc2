"""``diagnose``: probe one batch, run the checks, return a report."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from lossdoctor.budget import Budget
from lossdoctor.case import Case, copy_case
from lossdoctor.checks import run_checks
from lossdoctor.checks.catalog import EXPLAINS_LOSS_ERROR
from lossdoctor.checks.init_loss import init_loss_high
from lossdoctor.errors import LossDoctorError, LossFnError, ModelError
from lossdoctor.frameworks import is_keras, is_tf_module
from lossdoctor.probe import probe
from lossdoctor.probe.guard import untouched
from lossdoctor.probe.hooks import all_tensors
from lossdoctor.probe.run import call_model, with_dropout_off
from lossdoctor.probe.steps import float32_replay, step_stats
from lossdoctor.probe.wrappers import is_wrapper, unwrap, wrapper_kind
from lossdoctor.repairs.verify import verify
from lossdoctor.report import Report
from lossdoctor.task import TASKS
from lossdoctor.theory.gain import with_prediction
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Task, Trace


def preflight(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any) -> None:
    """Refuse what cannot be measured, before anything runs: no data, or no batch.

    Raises:
        LossDoctorError: meta-device tensors, uninitialised lazy parameters, an empty batch.
    """
    for root, what in ((model, "model"), (loss_fn, "loss_fn")):
        if not isinstance(root, nn.Module):
            continue
        lazy = _lazy(root)
        if lazy:
            raise LossDoctorError(
                f"the {what} has {len(lazy)} uninitialised lazy parameter(s) ({lazy[0]}, ...): "
                f"run one forward pass, e.g. model(inputs), before diagnosing")
        meta = [n for n, t in (*root.named_parameters(), *root.named_buffers()) if t.is_meta]
        if meta:
            raise LossDoctorError(
                f"the {what} has {len(meta)} tensor(s) on the meta device ({meta[0]}, ...), which "
                "hold shapes but no values: materialise them first, e.g. "
                "model.to_empty(device='cpu') and initialise")
    for t, what in ((t, "inputs") for t in all_tensors(inputs)):
        if t.is_meta:
            raise LossDoctorError(f"the {what} are on the meta device (no values)")
    x = next(iter(all_tensors(inputs)), None)
    if x is not None and x.dim() >= 1 and x.shape[0] == 0:
        raise LossDoctorError(f"the input batch is empty (shape {tuple(x.shape)}): diagnosis "
                              "needs at least one example")
    y = next(iter(all_tensors(targets)), None)
    if y is not None and y.dim() >= 1 and y.numel() == 0:
        raise LossDoctorError(f"the targets are empty (shape {tuple(y.shape)})")


def _lazy(module: nn.Module) -> list[str]:
    return [n for n, t in (*module.named_parameters(), *module.named_buffers()) if is_lazy(t)]


def _materialised(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any,
                  optimizer: torch.optim.Optimizer | None) -> Case:
    """A copy of a model with uninitialised lazy parameters, materialised by one forward pass.

    The global RNG is forked, so the copy's parameters are the ones the user's own first
    forward will draw from the current RNG state; the user's model is not touched.
    """
    case, _ = copy_case(Case(model, inputs, targets, loss_fn, optimizer))
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.no_grad():
        try:
            call_model(case.model, inputs)
        except Exception as e:
            raise ModelError(f"the model raised {type(e).__name__}: {e} (initialising its lazy "
                             "parameters)") from e
    return case


def _normal_tensors(x: Any) -> Any:
    """Inference-mode tensors (created under ``torch.inference_mode``) as normal tensors."""
    if isinstance(x, torch.Tensor):
        return x.clone() if x.is_inference() else x
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return tuple(_normal_tensors(v) for v in x)
    if isinstance(x, list):
        return [_normal_tensors(v) for v in x]
    if isinstance(x, dict):
        return {k: _normal_tensors(v) for k, v in x.items()}
    return x


@contextmanager
def autograd_on(notes: list[str]) -> Iterator[None]:
    """Gradients on, inference mode and anomaly detection off for the block, and say so.

    A caller inside ``torch.no_grad()`` or ``torch.inference_mode()`` still wants the training
    step diagnosed; anomaly detection would turn the NaN being diagnosed into an exception.
    """
    with ExitStack() as stack:
        if torch.is_inference_mode_enabled():
            notes.append("called inside torch.inference_mode(): lossdoctor turned it off (and "
                         "grad on) for the diagnosis; training needs autograd")
            stack.enter_context(torch.inference_mode(False))
        elif not torch.is_grad_enabled():
            notes.append("called with grad disabled (torch.no_grad()): lossdoctor enabled grad "
                         "for the diagnosis; training needs autograd")
        stack.enter_context(torch.enable_grad())
        if torch.is_anomaly_enabled():
            notes.append("anomaly detection was on: lossdoctor turned it off for the diagnosis "
                         "and locates NaN/Inf itself")
            stack.enter_context(torch.autograd.set_detect_anomaly(False))
        yield


def diagnose(
    model: nn.Module,
    inputs: Any,
    targets: Any,
    loss_fn: Callable[[Any, Any], Any] | None = None,
    optimizer: Any = None,
    *,
    task: Task | None = None,
    verify_steps: int = 20,
    thresholds: Thresholds | None = None,
    budget: float | None = None,
) -> Report:
    """Diagnose one batch: why does this loss look the way it does?

    A Keras 3 model (torch or TensorFlow backend) is measured by :mod:`lossdoctor.keras` and
    judged by the same checks; ``loss_fn`` and ``optimizer`` then default to the compiled ones.
    A plain ``tf.Module`` with a hand-written ``loss_fn(output, targets)`` is probed op by op by
    :mod:`lossdoctor.tf` (no probe steps or verification there yet).

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
        budget: seconds the whole call may take, or None (no limit). The probe itself always
            runs; the probe steps stop when the next one would not fit, and a fix whose
            verification would not fit (its copy, re-diagnosis and steps, at the measured cost of
            one step) is left "not verified"; the report's notes say what was skipped. A multiple
            of one training step, ``budget=30 * step_seconds``, keeps the cost predictable.

    Under ``torch.distributed`` (DDP): every rank calls ``diagnose`` with its own batch; the
    module inside the wrapper is diagnosed on each rank without any DDP collective (nothing
    passes through DDP's forward, so its reducer and buffers are not touched), then the ranks
    exchange their findings once and every rank returns the same report, each finding with the
    ranks it holds on (``evidence["ranks"]``); print it on rank 0. Every rank must call it (the
    exchange is a collective); a rank whose diagnosis raises tells the others, which raise
    ``RankFailed`` at once. FSDP-sharded models are refused (each rank holds a shard, not a
    model to run alone).

    Returns:
        A :class:`Report` with the findings and the measured trace.

    Raises:
        LossDoctorError: the arguments are not usable (wrong types, the model or loss raises).
    """
    if budget is not None and (not isinstance(budget, (int, float)) or not budget > 0):
        raise LossDoctorError(f"budget must be a positive number of seconds, got {budget!r}")
    if not isinstance(verify_steps, int) or verify_steps < 0:
        raise LossDoctorError(f"verify_steps must be a non-negative integer, got {verify_steps!r}")
    if thresholds is not None and not isinstance(thresholds, Thresholds):
        raise LossDoctorError(
            f"thresholds must be a lossdoctor.Thresholds, got {type(thresholds).__name__}")
    if task is not None and task not in TASKS:
        raise LossDoctorError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if is_keras(model):  # the Keras probe fills the same Trace (imports Keras only now)
        from lossdoctor.keras.diagnose import diagnose_keras

        return diagnose_keras(model, inputs, targets, loss_fn, optimizer, task=task,
                              verify_steps=verify_steps, thresholds=thresholds, budget=budget)
    if is_tf_module(model):  # plain TensorFlow: probed op by op (imports TensorFlow only now)
        from lossdoctor.tf.diagnose import diagnose_tf

        return diagnose_tf(model, inputs, targets, loss_fn, task=task, thresholds=thresholds)
    if not isinstance(model, nn.Module):
        raise LossDoctorError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if wrapper_kind(model) == "fsdp":
        raise LossDoctorError(
            "diagnose cannot run an FSDP-sharded model: each rank holds a shard of every "
            "parameter, not a model it can run alone; diagnose the model before fully_shard (or "
            "use lossdoctor.Monitor during training, which works on sharded models)")
    from lossdoctor.monitor import distributed as dd

    if is_wrapper(model) or dd.active():
        try:
            report = _diagnose_checked(unwrap(model), inputs, targets, loss_fn, optimizer, task,
                                       verify_steps, thresholds, budget)
        except Exception as e:
            if dd.active():
                dd.merge_findings(e)  # the other ranks raise RankFailed instead of waiting
            raise
        if dd.active():
            report = replace(report, findings=dd.merge_findings(report.findings))
        return report
    return _diagnose_checked(model, inputs, targets, loss_fn, optimizer, task, verify_steps,
                             thresholds, budget)


def _diagnose_checked(model: nn.Module, inputs: Any, targets: Any,
                      loss_fn: Callable[[Any, Any], Any] | None,
                      optimizer: torch.optim.Optimizer | None, task: Task | None,
                      verify_steps: int, thresholds: Thresholds | None,
                      budget: float | None) -> Report:
    if not callable(loss_fn):
        raise LossDoctorError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise LossDoctorError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    lazy = _lazy(model)
    if lazy:
        case = _materialised(model, inputs, targets, loss_fn, optimizer)
        report = _diagnose_checked(case.model, inputs, targets, case.loss_fn, case.optimizer,
                                   task, verify_steps, thresholds, budget)
        note = (f"the model has {len(lazy)} uninitialised lazy parameter(s) ({lazy[0]}, ...): "
                "diagnosed a copy initialised by one forward pass on the batch from the current "
                "RNG state; your model is untouched")
        return replace(report, trace=replace(report.trace, notes=(note, *report.trace.notes)))
    preflight(model, inputs, targets, loss_fn)
    inference = [n for n, t in (*model.named_parameters(), *model.named_buffers())
                 if t.is_inference()]
    if inference:
        raise LossDoctorError(
            f"the model's tensors ({inference[0]}, ...) were created under "
            "torch.inference_mode(): inference tensors can never be trained; build the model "
            "outside inference mode (torch.no_grad() is enough to skip autograd)")
    notes: list[str] = []
    clock = Budget(budget)
    with autograd_on(notes), untouched(model, loss_fn):
        inputs, targets = _normal_tensors(inputs), _normal_tensors(targets)
        report = _diagnose(model, inputs, targets, loss_fn, optimizer, task, verify_steps, notes,
                           thresholds, clock)
    skipped = clock.note()
    if skipped is None:
        return report
    return replace(report, trace=replace(report.trace, notes=(*report.trace.notes, skipped)))


def _went_nonfinite(trace: Trace) -> bool:
    steps = trace.steps.losses if trace.steps is not None else ()
    return (trace.nonfinite_origin is not None or not math.isfinite(trace.loss.value)
            or not all(math.isfinite(v) for v in steps))


def _diagnose(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any,
              optimizer: torch.optim.Optimizer | None, task: Task | None, verify_steps: int,
              notes: list[str], thresholds: Thresholds | None, budget: Budget) -> Report:
    trace = probe(model, inputs, targets, loss_fn, optimizer, task)
    budget.step_seconds = time.perf_counter() - budget.start  # until the steps measure one
    if any(f.severity != "info" for f in init_loss_high(trace, thresholds or Thresholds())):
        trace = with_dropout_off(trace, model, inputs, targets, loss_fn)  # dropout's or the init's?
    if notes:
        trace = replace(trace, notes=(*notes, *trace.notes))
    trace = with_prediction(trace, model, inputs)
    step_error: LossDoctorError | None = None
    if verify_steps and trace.loss.error is None and trace.loss.requires_grad:
        case = Case(model, inputs, targets, loss_fn, optimizer)
        with untouched(model, loss_fn):
            try:
                # without a warning or error the steps only have the learning rate to judge
                loud = any(f.severity != "info" for f in run_checks(trace, thresholds))
                trace = replace(trace, steps=step_stats(case, verify_steps, thresholds, budget,
                                                        need_progress=loud))
            except (ModelError, LossFnError) as e:
                step_error = e  # raised below unless a finding explains it (e.g. BCE on ReLU)
                trace = replace(trace, notes=(*trace.notes, f"probe steps stopped: {e}"))
            except Exception as e:  # noqa: BLE001 - e.g. an uncopyable model, the optimizer raised
                trace = replace(trace, notes=(*trace.notes, f"probe steps skipped: {e}"))
    if trace.loss.error is None and _went_nonfinite(trace):
        with untouched(model, loss_fn):
            precision = float32_replay(Case(model, inputs, targets, loss_fn, optimizer),
                                       verify_steps)
        trace = replace(trace, precision=precision)
    findings = run_checks(trace, thresholds)
    explaining = [f for f in findings if f.code in EXPLAINS_LOSS_ERROR]
    if step_error is not None and not any(f.severity == "error" for f in explaining):
        raise step_error
    if trace.loss.error is not None and not explaining:
        shapes = ""
        if trace.output is not None and trace.targets is not None:
            shapes = (f" (output shape {tuple(trace.output.stats.shape)}, targets shape "
                      f"{tuple(trace.targets.stats.shape)})")
        raise LossFnError(f"loss_fn raised {trace.loss.error}{shapes}")
    if verify_steps and findings and trace.loss.error is None:  # a loss that raises cannot train
        with untouched(model, loss_fn):
            findings = verify(Case(model, inputs, targets, loss_fn, optimizer), trace, findings,
                              verify_steps, task, thresholds, budget)
    return Report(trace=trace, findings=findings)
