"""Verification: apply each mechanical fix to a deep copy, re-measure, train a few steps.

A fix is ``verified`` only when the findings it answers are gone from the re-diagnosis (its target
measurements are back inside their lines), no new error-level finding appeared, and a few optimizer
steps on the batch (same RNG state with and without the fix) stay finite; a changed loss head must
also make its loss decrease faster, and a set-up change must not make training slower. The loss
after the steps is reported for every fix but does not decide a re-initialisation: on one batch a
bad init can still memorise faster.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from lossdoctor.case import Case, copy_case
from lossdoctor.checks import run_checks
from lossdoctor.checks.depth import extreme, grad_points, signal_points
from lossdoctor.errors import LossDoctorError
from lossdoctor.findings import Finding, Verification
from lossdoctor.fmt import g
from lossdoctor.probe import probe
from lossdoctor.probe.guard import untouched
from lossdoctor.probe.steps import needs_closure, train_steps
from lossdoctor.repairs.registry import Repair, repair_for
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import StepStats, Task, Trace

LOUD = ("warning", "error")


def _metrics(trace: Trace, findings: list[Finding], losses: list[float]) -> dict[str, Any]:
    m: dict[str, Any] = {"codes": sorted({f.code for f in findings if f.severity in LOUD})}
    m["loss_at_init"] = losses[0] if losses else math.nan
    m["loss_after_steps"] = losses[-1] if losses else math.nan
    m["steps_run"] = max(len(losses) - 1, 0)
    m["losses"] = [float(v) for v in losses]  # the curve the HTML report draws
    first = losses[0] if losses else math.nan
    m["relative_decrease"] = (
        (first - losses[-1]) / abs(first) if losses and math.isfinite(first) and first
        and math.isfinite(losses[-1]) else -math.inf
    )
    sig = extreme(signal_points(trace), grow=True)
    if sig is not None:
        m["signal_gain_per_layer"] = sig.per_layer
    grad = extreme(grad_points(trace), grow=False)
    if grad is not None:
        m["grad_ratio_inner_to_outer"] = 1 / grad.ratio
    sats = [layer.saturated for layer in trace.layers if layer.saturated is not None]
    if sats:
        m["max_saturated"] = max(sats)
    dead = [layer.dead_units for layer in trace.layers if layer.dead_units is not None]
    if dead:
        m["max_dead"] = max(dead)
    return m


def _measure(case: Case, task: Task | None, steps: int,
             thresholds: Thresholds | None) -> tuple[Trace, list[Finding], list[float]]:
    """Probe the repaired copy, train it ``steps`` steps, and run the checks on both."""
    with untouched(case.model):
        trace = probe(case.model, case.inputs, case.targets, case.loss_fn, case.optimizer, task)
    ratios: list[float] = []
    losses = train_steps(case, steps, ratios)
    opt = case.optimizer
    trace = replace(trace, steps=StepStats(
        tuple(losses), tuple(ratios), type(opt).__name__ if opt else "SGD",
        max(float(gr["lr"]) for gr in opt.param_groups) if opt else 0.01, opt is not None,
        needs_closure(opt)))
    return trace, run_checks(trace, thresholds), losses


def _judge(repair: Repair, codes: set[str], before: dict[str, Any],
           after: dict[str, Any], before_errors: set[str], after_errors: set[str]) -> str | None:
    """None when verified, else why not."""
    left = sorted(codes & set(after["all_codes"]))
    if left:
        return f"{', '.join(left)} still found"
    new = sorted(after_errors - before_errors)
    if new:
        return f"new error-level finding(s): {', '.join(new)}"
    if not math.isfinite(after["loss_after_steps"]):
        return "the loss became non-finite during the steps"
    base, final = before["loss_after_steps"], after["loss_after_steps"]
    if repair.kind == "head" and not after["relative_decrease"] > before["relative_decrease"]:
        return "the loss did not decrease faster"
    if (repair.kind == "setup" and math.isfinite(base) and final > 1.05 * base
            and after["relative_decrease"] < before["relative_decrease"] - 0.05):
        return "training got slower"
    return None


_SHOWN = (
    ("signal_gain_per_layer", "signal gain per layer",
     {"init-loss-high", "signal-exploding", "signal-vanishing"}),
    ("grad_ratio_inner_to_outer", "gradient ratio first/last layer",
     {"grad-exploding", "grad-vanishing"}),
    ("max_saturated", "saturated share", {"saturation"}),
    ("max_dead", "dead share", {"dead-relu"}),
)


def _message(title: str, codes: set[str], before: dict[str, Any], after: dict[str, Any],
             steps: int) -> str:
    parts = [f"loss at init {g(before['loss_at_init'])} -> {g(after['loss_at_init'])}"]
    for key, label, relevant in _SHOWN:
        if key in before and key in after and codes & relevant:
            parts.append(f"{label} {g(before[key])} -> {g(after[key])}")
    if "head" in codes:
        parts.append(f"loss decrease over {steps} steps {g(100 * before['relative_decrease'])}% "
                     f"-> {g(100 * after['relative_decrease'])}% (each of its own loss)")
    else:
        parts.append(f"loss after {steps} steps {g(before['loss_after_steps'])} -> "
                     f"{g(after['loss_after_steps'])}")
    return f"{title}: " + ", ".join(parts)


def verify(case: Case, trace: Trace, findings: list[Finding], steps: int,
           task: Task | None = None, thresholds: Thresholds | None = None) -> list[Finding]:
    """Attach a :class:`Verification` to every finding that has a mechanical fix.

    Every run works on a deep copy; the user's objects are only read.
    """
    todo: dict[str, tuple[Repair, list[int]]] = {}
    for i, f in enumerate(findings):
        repair = repair_for(f)
        if repair is not None and f.severity in LOUD + ("info",):
            todo.setdefault(repair.name, (repair, []))[1].append(i)
    if not todo:
        return findings
    out = list(findings)
    try:
        base_case, _ = copy_case(case)
        base_losses = list(trace.steps.losses) if trace.steps is not None \
            and len(trace.steps.losses) > 1 else train_steps(base_case, steps)
    except Exception as e:  # noqa: BLE001 - uncopyable model, or the user's loss raises mid-steps
        reason = f"not verified on a copy: {e}" if isinstance(e, LossDoctorError) else (
            f"training the unchanged copy raised {type(e).__name__}: {e}")
        for repair, idx in todo.values():
            for i in idx:
                out[i] = replace(out[i], verification=Verification(
                    repair.name, repair.title(trace), "failed", {}, {}, reason))
        return out
    before = _metrics(trace, findings, base_losses)
    before_errors = {f.code for f in findings if f.severity == "error"}
    for repair, idx in todo.values():
        title = repair.title(trace)
        codes = {findings[i].code for i in idx}
        try:
            fixed, _ = copy_case(case)
            fixed = repair.apply(fixed, trace, findings[idx[0]])
            fixed_trace, fixed_findings, losses = _measure(fixed, task, steps, thresholds)
        except LossDoctorError as e:
            result = Verification(repair.name, title, "failed", before, {}, f"{title}: {e}")
        except Exception as e:  # noqa: BLE001 - a repair that breaks the model is reported
            result = Verification(repair.name, title, "failed", before, {},
                                  f"{title}: applying it raised {type(e).__name__}: {e}")
        else:
            after = _metrics(fixed_trace, fixed_findings, losses)
            after["all_codes"] = sorted({f.code for f in fixed_findings})
            after_errors = {f.code for f in fixed_findings if f.severity == "error"}
            why = _judge(repair, codes, before, after, before_errors, after_errors)
            message = _message(title, codes | {repair.kind}, before, after, steps)
            result = Verification(repair.name, title, "verified" if why is None else "not verified",
                                  before, after, message if why is None else f"{message} ({why})")
        for i in idx:
            out[i] = replace(out[i], verification=result)
    return out


def script_lines(trace: Trace, findings: list[Finding]) -> list[str]:
    """The lines that apply every verified fix, in order, once each."""
    lines: list[str] = []
    seen: set[str] = set()
    reinit = any(f.verification is not None and f.verification.status == "verified"
                 and f.verification.repair == "reinit" for f in findings)
    for f in findings:
        v = f.verification
        repair = repair_for(f)
        if v is None or v.status != "verified" or repair is None or repair.name in seen:
            continue
        seen.add(repair.name)
        if reinit and repair.name in ("lower-lr", "raise-lr"):
            # the learning rate was judged on the broken init; judge it again after reinit
            lines.append(f"# skipped ({v.message}): re-run lossdoctor after the re-initialisation")
            continue
        lines.append(f"# {v.message}")
        lines.append(repair.script(trace, f))
    return lines
