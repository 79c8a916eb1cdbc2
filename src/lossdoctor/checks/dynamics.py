"""Training-run checks over the loss history: diverging, plateau, oscillating.

All three work on a moving average over ``window`` steps, so single noisy mini-batches do not
trigger them. Lines (fields of :class:`~lossdoctor.Thresholds`):

- diverging: the smoothed loss is ``diverge`` (2) x its best so far, rose over the last window,
  and gave back enough progress to stand above ``settled`` (a quarter) of its first value: a
  loss that rose from 0.003 to 0.06 is mini-batch noise near convergence, not a divergence;
- plateau: the smoothed loss improved by less than ``plateau`` (1%) over the last two windows
  while still above half its first value (a finished run also stops improving, near its minimum);
- oscillating: over the last window the loss swings by more than ``oscillation_swing`` (half) of
  its level (peak to trough of the raw loss over the smoothed mean), its steps change direction
  more than ``oscillation_turns`` (60%) of the time (random noise: about 67%, a steady descent:
  far less), it is not trending down, and it is above ``settled`` of its first value.
"""

from __future__ import annotations

import math
import statistics

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


def _smooth(losses: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(losses):
        acc += v
        if i >= window:
            acc -= losses[i - window]
        out.append(acc / min(i + 1, window))
    return out


@check("loss-diverging", "loss-plateau", "loss-oscillating", scope="run")
def dynamics(trace: Trace, th: Thresholds) -> list[Finding]:
    """Findings from the loss history (finite values only; ``run_nonfinite`` reports the rest)."""
    if trace.run is None:
        return []
    losses, window = list(trace.run.losses), trace.run.window
    if len(losses) < 2 * window or any(not math.isfinite(v) for v in losses):
        return []
    sm = _smooth(losses, window)
    step = len(losses)
    found: list[Finding] = []
    best = min(sm[window - 1:])
    now, before = sm[-1], sm[-window]
    first = sm[window - 1]
    if best > 0 and now > th.diverge * best and now > before and now > th.settled * first:
        found.append(Finding(
            "loss-diverging", "error", f"step {step}",
            {"step": step, "smoothed_loss": now, "best_smoothed_loss": best, "first": first,
             "lines": {"diverge": th.diverge, "settled": th.settled}},
            f"step {step}: the loss (moving average over {window}) is {g(now)}, {g(now / best)}x "
            f"its best {g(best)}, and still rising.",
            "A loss that climbs back above twice its best is moving away from the minimum: the "
            "steps are too large for the curvature it has reached (learning rate, a warm-up that "
            "ended, or an exploding layer).",
            (Fix("lower the learning rate and clip the gradient norm",
                 "for group in optimizer.param_groups:\n    group[\"lr\"] *= 0.1\n"
                 "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"),),
        ))
    if len(losses) >= 3 * window:
        old = sm[-2 * window]
        if old > 0 and (old - now) / old < th.plateau and now > 0.5 * first:
            found.append(Finding(
                "loss-plateau", "warning", f"step {step}",
                {"step": step, "smoothed_loss": now, "two_windows_ago": old, "first": first,
                 "lines": {"plateau": th.plateau}},
                f"step {step}: the loss moved {g(old)} -> {g(now)} over the last {2 * window} "
                f"steps (< {g(100 * th.plateau)}%) and is still {g(100 * now / first)}% of where it "
                "started.",
                "A loss stuck near its starting value means the gradient carries no usable "
                "signal: vanishing gradients, dead or saturated units, a learning rate far too "
                "small, or a loss/target mismatch.",
                (Fix("run a one-batch diagnosis of the current model",
                     "print(lossdoctor.diagnose(model, x, y, loss_fn, optimizer))"),),
            ))
    recent = losses[-window:]
    level = statistics.fmean(recent)
    diffs = [b - a for a, b in zip(recent[:-1], recent[1:], strict=True)]
    turns = sum(1 for a, b in zip(diffs[:-1], diffs[1:], strict=True) if a * b < 0)
    turn_share = turns / max(len(diffs) - 1, 1)
    swing = (max(recent) - min(recent)) / level if level > 0 else 0.0
    trending = now < 0.9 * before
    unsettled = level > th.settled * sm[window - 1]
    if swing > th.oscillation_swing and turn_share > th.oscillation_turns and not trending and unsettled:
        found.append(Finding(
            "loss-oscillating", "warning", f"step {step}",
            {"step": step, "swing": swing, "turn_share": turn_share, "level": level,
             "lines": {"oscillation_swing": th.oscillation_swing,
                       "oscillation_turns": th.oscillation_turns,
                       "settled": th.settled}},
            f"step {step}: over the last {window} steps the loss swings by {g(100 * swing)}% of "
            f"its level {g(level)} and changes direction at {g(100 * turn_share)}% of the steps, "
            "without trending down.",
            "Steps that overshoot the minimum along a steep direction bounce between its walls: "
            "the loss goes up and down around a level instead of descending. A smaller learning "
            "rate (or momentum) damps it.",
            (Fix("halve the learning rate", "for group in optimizer.param_groups:\n"
                 "    group[\"lr\"] *= 0.5"),),
        ))
    return found
