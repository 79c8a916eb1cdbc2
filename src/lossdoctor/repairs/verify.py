"""Verification: apply each mechanical fix to a deep copy, re-measure, train a few steps.

A fix is ``verified`` only when the findings it answers are gone from the re-diagnosis (its target
measurements are back inside their lines), no new error-level finding appeared, and a few optimizer
steps on the batch (same RNG state with and without the fix) stay finite; a changed loss head must
also make its loss decrease faster, and a set-up change must not make training slower. The loss
after the steps is reported for every fix but does not decide a re-initialisation: on one batch a
bad init can still memorise faster.

Cost: the unfixed steps are the probe steps, shared by every candidate (same count, same RNG
state); fixes are verified one copy at a time; a fix whose re-diagnosis already shows its
finding (or a new error) is judged without training; a ``config`` fix (the optimizer's
configuration or the loss reduction, which the findings it answers read from the configuration
alone) is judged by the re-diagnosis without training steps.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from lossdoctor.budget import Budget
from lossdoctor.case import Case, copy_case
from lossdoctor.causes.cause import find_causes
from lossdoctor.checks import run_checks
from lossdoctor.checks.depth import extreme, grad_points, signal_points
from lossdoctor.errors import LossDoctorError
from lossdoctor.findings import Finding, Verification
from lossdoctor.fmt import g
from lossdoctor.probe import probe
from lossdoctor.probe.guard import untouched
from lossdoctor.probe.steps import needs_closure, train_steps
from lossdoctor.repairs.registry import (
    REINITS,
    Repair,
    fallback_for,
    repair_for,
    repair_named,
)
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


# Codes that read the probe steps: only training the copy can clear them.
STEP_CODES = frozenset({"lr-too-high", "lr-too-low", "loss-degenerate", "half-precision-overflow"})


def _rediagnose(case: Case, task: Task | None,
                thresholds: Thresholds | None) -> tuple[Trace, list[Finding]]:
    """Probe the repaired copy (left as it was for the steps) and run the checks."""
    with untouched(case.model, params=False):  # a copy: only its own training writes them
        trace = probe(case.model, case.inputs, case.targets, case.loss_fn, case.optimizer, task)
    return trace, run_checks(trace, thresholds)


def _train(case: Case, trace: Trace, steps: int,
           thresholds: Thresholds | None) -> tuple[Trace, list[Finding], list[float]]:
    """Train the repaired copy ``steps`` steps and run the checks with them."""
    ratios: list[float] = []
    losses = train_steps(case, steps, ratios)
    opt = case.optimizer
    trace = replace(trace, steps=StepStats(
        tuple(losses), tuple(ratios), type(opt).__name__ if opt else "SGD",
        max(float(gr["lr"]) for gr in opt.param_groups) if opt else 0.01, opt is not None,
        needs_closure(opt)))
    return trace, run_checks(trace, thresholds), losses


def _clear_without_steps(codes: set[str], after: list[Finding], before_errors: set[str]) -> bool:
    """Whether the re-diagnosis alone already says "not verified" (training cannot change it:
    the probe steps only lower severities, never clear a code or an error)."""
    left = codes & {f.code for f in after} - STEP_CODES
    new = {f.code for f in after if f.severity == "error"} - before_errors - STEP_CODES
    return bool(left or new)


def _lowest(m: dict[str, Any]) -> float:
    finite = [v for v in m.get("losses", ()) if math.isfinite(v)]
    return min(finite) if finite else math.inf


def _judge(repair: Repair, codes: set[str], before: dict[str, Any],
           after: dict[str, Any], before_errors: set[str], after_errors: set[str]) -> str | None:
    """None when verified, else why not."""
    left = sorted(codes & set(after["all_codes"]))
    if left:
        return f"{', '.join(left)} still found"
    new = sorted(after_errors - before_errors)
    if new:
        return f"new error-level finding(s): {', '.join(new)}"
    if repair.kind == "config":
        return None
    if not math.isfinite(after["loss_after_steps"]):
        return "the loss became non-finite during the steps"
    base, final = before["loss_after_steps"], after["loss_after_steps"]
    if repair.kind == "init" and after["steps_run"] and _lowest(after) >= _lowest(before):
        # same loss, same steps: a better start must reach lower; a later blow-up is the
        # learning rate's (the re-diagnosis after the steps says so), not the init's
        return f"the loss reached {g(_lowest(after))}, the unfixed run {g(_lowest(before))}"
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
    if "config" in codes:
        parts.append("judged by re-diagnosis without training steps (a configuration change)")
    elif steps == 0:
        parts.append("not trained: the re-diagnosis already decides")
    elif "head" in codes:
        parts.append(f"loss decrease over {steps} steps {g(100 * before['relative_decrease'])}% "
                     f"-> {g(100 * after['relative_decrease'])}% (each of its own loss)")
    else:
        parts.append(f"loss after {steps} steps {g(before['loss_after_steps'])} -> "
                     f"{g(after['loss_after_steps'])}")
        if "init" in codes and _lowest(after) < 0.9 * after["loss_after_steps"]:
            parts.append(f"lowest {g(_lowest(before))} -> {g(_lowest(after))}")
    return f"{title}: " + ", ".join(parts)


def verify(case: Case, trace: Trace, findings: list[Finding], steps: int,
           task: Task | None = None, thresholds: Thresholds | None = None,
           budget: Budget | None = None) -> list[Finding]:
    """Attach a :class:`Verification` to every finding that has a mechanical fix.

    Every run works on a deep copy (one alive at a time); the user's objects are only read.
    The unfixed run is the probe steps in ``trace`` when there are any (the fixed copies train
    as many steps); a fix that does not fit the ``budget`` is left unverified and listed in it.
    """
    budget = budget or Budget(None)
    todo: dict[str, tuple[Repair, list[int]]] = {}
    judged_by_cause = _symptoms_of_repairable_causes(findings, trace)
    for i, f in enumerate(findings):
        repair = repair_for(f)
        if f.code == "lr-too-high" and f.severity == "info":
            continue  # large steps that still descend: a lower rate is advice, training slower
        if repair is not None and f.severity in LOUD + ("info",) and i not in judged_by_cause:
            todo.setdefault(repair.name, (repair, []))[1].append(i)
    if not todo:
        return findings
    out = list(findings)
    base_losses = list(trace.steps.losses) if trace.steps is not None else []
    try:
        if len(base_losses) < 2 and any(r.kind != "config" for r, _ in todo.values()):
            base_case, _ = copy_case(case)
            base_losses = train_steps(base_case, steps)
            del base_case
    except Exception as e:  # noqa: BLE001 - uncopyable model, or the user's loss raises mid-steps
        reason = f"not verified on a copy: {e}" if isinstance(e, LossDoctorError) else (
            f"training the unchanged copy raised {type(e).__name__}: {e}")
        for repair, idx in todo.values():
            for i in idx:
                out[i] = replace(out[i], verification=Verification(
                    repair.name, repair.title(trace), "failed", {}, {}, reason))
        return out
    if base_losses and all(math.isfinite(v) for v in base_losses):
        steps = max(len(base_losses) - 1, 0) or steps  # as many as settled the probe steps
    # (an unfixed run that went non-finite stopped there: a fix trains the full count)
    before = _metrics(trace, findings, base_losses)
    before_errors = {f.code for f in findings if f.severity == "error"}
    for repair, idx in todo.values():
        title = repair.title(trace)
        codes = {findings[i].code for i in idx}
        cost = 3 + (0 if repair.kind == "config" else steps)  # copy + probe (+ steps)
        if not budget.allows(cost):
            budget.skipped.append(f"{repair.name} not verified (about {cost} steps' time)")
            result = Verification(repair.name, title, "not verified", before, {},
                                  f"{title}: not verified, skipped by the time budget")
            for i in idx:
                out[i] = replace(out[i], verification=result)
            continue
        result = _verify_one(case, trace, findings, repair, idx, codes, before, before_errors,
                             steps, task, thresholds)
        alt = fallback_for(repair, trace)
        if result.status != "verified" and alt is not None and budget.allows(cost):
            other = _verify_one(case, trace, findings, alt, idx, codes, before, before_errors,
                                steps, task, thresholds)
            if other.status == "verified":
                result = other
        for i in idx:
            out[i] = replace(out[i], verification=result)
    return out


def _symptoms_of_repairable_causes(findings: list[Finding], trace: Trace) -> set[int]:
    """Findings another finding explains (the causes graph) whose root has a repair of its own.

    Their own repair is not trained: the root's fix answers them, and its verification lists
    each of them as gone or left. ``fix`` judges a symptom again after the root's fix, if it is
    still there. One verification per cause instead of one per symptom."""
    out: set[int] = set()
    for cause in find_causes(findings, trace):
        root = repair_for(cause.root)
        if root is None:
            continue
        for s in cause.symptoms:
            own = repair_for(s.finding)
            if own is not None and own.name != root.name:
                out.add(s.index)
    return out


def _verify_one(case: Case, trace: Trace, findings: list[Finding], repair: Repair,
                idx: list[int], codes: set[str], before: dict[str, Any],
                before_errors: set[str], steps: int, task: Task | None,
                thresholds: Thresholds | None) -> Verification:
    title = repair.title(trace)
    try:
        fixed, _ = copy_case(case)
        fixed = repair.apply(fixed, trace, findings[idx[0]])
        fixed_trace, fixed_findings = _rediagnose(fixed, task, thresholds)
        trained = 0
        losses = [fixed_trace.loss.value]
        if repair.kind != "config" and not _clear_without_steps(codes, fixed_findings,
                                                                 before_errors):
            fixed_trace, fixed_findings, losses = _train(fixed, fixed_trace, steps, thresholds)
            trained = steps
        del fixed
    except LossDoctorError as e:
        return Verification(repair.name, title, "failed", before, {}, f"{title}: {e}")
    except Exception as e:  # noqa: BLE001 - a repair that breaks the model is reported
        return Verification(repair.name, title, "failed", before, {},
                            f"{title}: applying it raised {type(e).__name__}: {e}")
    after = _metrics(fixed_trace, fixed_findings, losses)
    after["all_codes"] = sorted({f.code for f in fixed_findings})
    after_errors = {f.code for f in fixed_findings if f.severity == "error"}
    why = _judge(repair, codes, before, after, before_errors, after_errors)
    message = _message(title, codes | {repair.kind}, before, after, trained)
    return Verification(repair.name, title, "verified" if why is None else "not verified",
                        before, after, message if why is None else f"{message} ({why})")


def script_lines(trace: Trace, findings: list[Finding]) -> list[str]:
    """The lines that apply every verified fix, in order, once each."""
    lines: list[str] = []
    seen: set[str] = set()
    reinit = any(f.verification is not None and f.verification.status == "verified"
                 and f.verification.repair in REINITS for f in findings)
    for f in findings:
        v = f.verification
        repair = repair_named(v.repair) if v is not None else None
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
