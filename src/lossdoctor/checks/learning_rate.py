"""``lr-too-high`` / ``lr-too-low``: what a few optimizer steps on a copy show.

The update-to-weight ratio ||w_1 - w_0|| / ||w_0|| of a healthy step is about 1e-3 (Karpathy,
CS231n "Babysitting the learning process"); TheDeepChecker (Ben Braiek & Khomh, TOSEM 2022) flags
log10 of it outside [-4, -1]. Too high also shows directly: the loss ends the probe steps 50%
above where it started, or non-finite, or spikes on the way (above 1.5x the first loss and 2x
the lowest before it: the monitor's divergence line) and ends above where it started. Too
low needs a ratio below 1e-4, a loss that moved less than 1% over the steps (a slowly but
surely learning model is left alone) and no overshoot on the way (small steps after a blow-up
are not a low rate); it is info only, because a few steps cannot tell a slow start (momentum
still building up) from a stall.
An optimizer that re-evaluates the loss in its step (LBFGS's line search) chooses its own step
length: a large update is only too high when the loss rises. A float16/bfloat16 model that went
non-finite is judged on its float32 replay, so a precision problem is not blamed on the rate.
"""

from __future__ import annotations

import math
import statistics

from lossdoctor.checks.base import check
from lossdoctor.checks.progress import progress
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


def _fix(factor: float) -> Fix:
    return Fix(f"scale the learning rate by {g(factor)}",
               f"for group in optimizer.param_groups:\n    group[\"lr\"] *= {g(factor)}")


def _spike(losses: tuple[float, ...], th: Thresholds) -> tuple[float, int] | None:
    """(peak, step) when a finite loss rose above ``loss_rise`` x the first loss and above
    ``diverge`` x the lowest loss before it, and the steps end above where they started: a
    blow-up that undid the progress (a step beyond 2 / curvature). A transient overshoot the
    steps recover from (story 1 re-initialised at lr 0.5: 2.30 -> 6.68 -> 2.297, and it trains
    better over 100 steps than at a tenth of the rate) is not judged."""
    finite = [(v, i) for i, v in enumerate(losses) if math.isfinite(v)]
    if len(finite) < 3 or losses[0] <= 0 or not losses[-1] > losses[0]:
        return None
    peak, at = max(finite)
    low = min((v for v, i in finite if i < at), default=math.inf)
    if at > 0 and peak > th.loss_rise * losses[0] and low > 0 and peak > th.diverge * low:
        return peak, at
    return None


@check("lr-too-high", "lr-too-low")
def learning_rate(trace: Trace, th: Thresholds) -> list[Finding]:
    """Learning rate far from a healthy update size, or a loss that rises under it."""
    st = trace.steps
    replay = trace.precision.fp32_steps if trace.precision is not None else None
    if replay is not None and len(replay.losses) > 1:
        st = replay
    if st is None or len(st.losses) < 2 or not math.isfinite(st.losses[0]):
        return []
    if trace.optimizer is not None and trace.optimizer.maximize:
        return []  # the steps climb the loss by design: loss-maximized says so, not the lr
    first, last = st.losses[0], st.losses[-1]
    ratio = statistics.median(st.update_ratios) if st.update_ratios else None
    evidence = {"optimizer": st.optimizer, "lr": st.lr, "loss_first": first, "loss_last": last,
                "steps": len(st.losses) - 1, "update_ratio_median": ratio,
                "lines": {"update_ratio_high": th.update_ratio_high,
                          "update_ratio_low": th.update_ratio_low, "loss_rise": th.loss_rise,
                          "loss_still": th.loss_still, "learning_progress": th.learning_progress}}
    diverged = not math.isfinite(last)
    # measured against |first| so that a falling negative loss (Gaussian NLL) reads as falling
    rising = diverged or last - first > (th.loss_rise - 1) * abs(first)
    spike = _spike(st.losses, th)
    if spike is not None and not rising:
        rising = True
        evidence["loss_peak"], evidence["peak_step"] = spike
    learns = progress(st.losses, th) is not None
    if st.closure and ratio is not None and not rising:
        ratio = None
    if ratio == 0 and st.lr > 0:
        ratio = None  # no weight moved at all: the step had nothing to move (nothing-trainable)
    if rising or (ratio is not None and ratio > th.update_ratio_high):
        why = (f"the loss went {g(first)} -> {g(last)} in {len(st.losses) - 1} steps"
               if rising else "")
        if spike is not None:
            why += f", through {g(spike[0])} at step {spike[1]}"
        if ratio is not None and ratio > th.update_ratio_high:
            why += ("; " if why else "") + (f"one step changes the weights by {g(100 * ratio)}% "
                                            f"(line {g(100 * th.update_ratio_high)}%)")
        if not rising and learns:
            why += f", yet the loss fell {g(first)} -> {g(last)}: large steps that still descend"
        return [Finding(
            code="lr-too-high",
            severity="error" if diverged else ("info" if not rising and learns else "warning"),
            where="optimizer", evidence=evidence,
            summary=f"at lr {g(st.lr)} ({st.optimizer}) {why}.",
            explanation=(
                "A step of size lr * grad must stay inside the region where the loss is roughly "
                "quadratic: beyond about 2 / (largest curvature) gradient descent overshoots and "
                "the loss grows. Healthy steps change the weights by about 0.1% "
                "(update/weight ratio 1e-3)."
            ),
            fixes=(_fix(0.1),),
        )]
    overshot = max((v for v in st.losses if math.isfinite(v)), default=first) \
        > th.loss_rise * abs(first)  # small steps after an overshoot are not a low rate
    if (ratio is not None and ratio < th.update_ratio_low and not overshot
            and (first - last) < th.loss_still * abs(first)):
        return [Finding(
            code="lr-too-low", severity="info", where="optimizer", evidence=evidence,
            summary=(f"at lr {g(st.lr)} ({st.optimizer}) one step changes the weights by "
                     f"{g(ratio)} of their size (line {g(th.update_ratio_low)}) and the loss moved "
                     f"{g(first)} -> {g(last)} in {len(st.losses) - 1} steps."),
            explanation=(
                "With updates 10,000x smaller than the weights, training needs that many steps "
                "to change anything; healthy runs sit near 1e-3. Either the learning rate is too "
                "small for this optimizer or the gradients are vanishing (see grad-vanishing)."
            ),
            fixes=(_fix(10.0),),
        )]
    return []


@check("lr-too-high", "lr-too-low", scope="run")
def run_learning_rate(trace: Trace, th: Thresholds) -> list[Finding]:
    """A monitored run's learning rate, read from its loss history and its update ratios.

    A loss that rose above ``diverge`` x its first value is a step too large for the curvature
    (the blow-up may be over by the time it is measured: ReLUs killed by a huge step bring the
    loss back to a constant). Small steps after a blow-up are not a low learning rate (huge
    weights or dead units make any step look small), so ``lr-too-low`` needs a history that
    stayed finite and never rose like that.
    """
    run = trace.run
    if run is None or not run.losses:
        return []
    lines = {"update_ratio_high": th.update_ratio_high, "update_ratio_low": th.update_ratio_low,
             "diverge": th.diverge}
    finite = [v for v in run.losses if math.isfinite(v)]
    first = run.losses[0]
    peak = max(finite) if finite else math.nan
    rose = math.isfinite(first) and first > 0 and bool(finite) and peak > th.diverge * first
    blew_up = rose or len(finite) < len(run.losses)
    ratio = statistics.median(run.update_ratios) if run.update_ratios else None
    evidence: dict[str, object] = {"step": run.step, "update_ratio_median": ratio,
                                   "loss_first": first, "loss_peak": peak, "lines": lines}
    why = (f"one optimizer step changes the weights by {g(ratio)} of their size (healthy: about "
           f"1e-3; lines {g(th.update_ratio_low)} and {g(th.update_ratio_high)})"
           if ratio is not None else "")
    explanation = ("The update-to-weight ratio measures the step against the weights it moves "
                   "(Karpathy, CS231n); far above 1e-3 the run jumps around, far below it barely "
                   "moves. A loss that climbs far above where it started took steps beyond "
                   "2 / (largest curvature).")
    if rose:
        at = run.losses.index(peak) + 1
        return [Finding(
            "lr-too-high", "warning", "optimizer", {**evidence, "peak_step": at},
            f"step {run.step}: the loss rose from {g(first)} at step 1 to {g(peak)} at step {at} "
            f"(line {g(th.diverge)}x)" + (f"; {why}." if why else "."),
            explanation, (_fix(0.1),))]
    if ratio is None or (ratio <= th.update_ratio_high and (ratio >= th.update_ratio_low
                                                          or blew_up)):
        return []
    high = ratio > th.update_ratio_high
    return [Finding(
        "lr-too-high" if high else "lr-too-low", "warning" if high else "info", "optimizer",
        evidence, f"step {run.step}: {why}.", explanation,
        (_fix(min(1e-3 / ratio, 0.1) if high else max(1e-3 / ratio, 10.0) if ratio else 10.0),),
    )]
