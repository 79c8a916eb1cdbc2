"""The HTML report's three plots, built from the report alone.

- per-layer scale: measured activation rms and gradient rms across depth, and the activation rms
  the mean-field theory predicts (``trace.predicted_gain``) from the first linear layer on;
- verification: the loss over the verification steps without and with each mechanical fix;
- a monitored run: the loss per step with the findings marked at their steps.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from lossdoctor.fmt import g
from lossdoctor.report.svg import Chart, Marker, Series, render

if TYPE_CHECKING:
    from lossdoctor.report.report import Report

LINEAR = ("Linear", "Conv1d", "Conv2d", "Conv3d")
BLUE, ORANGE, GREY, RED, GREEN = "#1d4ed8", "#c2410c", "#6b7280", "#b91c1c", "#15803d"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption class=\"note\">{caption}</figcaption></figure>"


def predicted_rms(report: Report) -> list[tuple[float, float]]:
    """(position, rms) the theory predicts at each hidden linear layer: the first one's measured
    rms times ``predicted_gain`` per linear layer (the head excluded, as in the prediction)."""
    t = report.trace
    if t.predicted_gain is None:
        return []
    linear = [(i, x) for i, x in enumerate(t.layers) if x.op in LINEAR and not x.is_output]
    if len(linear) < 2 or not math.isfinite(linear[0][1].output.rms):
        return []
    base = linear[0][1].output.rms
    return [(float(i), base * t.predicted_gain ** k) for k, (i, _) in enumerate(linear)]


def layer_chart(report: Report) -> str:
    """Activation and gradient scale per layer, measured and predicted."""
    layers = report.trace.layers
    act = [(float(i), x.output.rms) for i, x in enumerate(layers)]
    grad = [(float(i), x.grad_rms) for i, x in enumerate(layers) if x.grad_rms is not None]
    series = [Series("activation rms (measured)", act, BLUE),
              Series("gradient rms (measured)", grad, ORANGE)]
    pred = predicted_rms(report)
    caption = "Output rms of every recorded layer and the rms of the loss gradient at it."
    if pred:
        series.append(Series("activation rms (predicted)", pred, GREY, dashed=True, dots=False))
        caption += (f" Dashed: the mean-field prediction from the weights, "
                    f"{g(report.trace.predicted_gain)}x per linear layer, started at the "
                    "first linear layer's measured rms.")
    step = max(1, math.ceil(len(layers) / 16))
    ticks = [(float(i), x.name) for i, x in enumerate(layers) if i % step == 0]
    chart = Chart("Per-layer scale (log)", "layer (execution order)", "rms", series,
                  x_ticks=ticks)
    return _figure(render(chart), escape(caption))


def verification_charts(report: Report) -> list[str]:
    """One chart per mechanical fix whose verification recorded both loss curves."""
    out, seen = [], set()
    for f in report.findings:
        v = f.verification
        if v is None or v.repair in seen or v.status == "failed":
            continue
        before, after = v.before.get("losses"), v.after.get("losses")
        if not before or not after:
            continue
        seen.add(v.repair)
        chart = Chart(f"Loss without and with the fix ({v.repair})", "step", "loss (log)", [
            Series("without the fix", [(float(i), float(y)) for i, y in enumerate(before)], RED),
            Series(f"with the fix ({v.status})",
                   [(float(i), float(y)) for i, y in enumerate(after)], GREEN)],
            log_y=all(y > 0 for y in (*before, *after) if math.isfinite(y)))
        out.append(_figure(render(chart), escape(
            f"{v.title}. Same batch, same RNG state, {len(after) - 1} optimizer steps on a copy; "
            "a cross on the top edge is a non-finite loss.")))
    return out


def run_chart(report: Report) -> str:
    """The monitored run's loss per step, findings marked at their steps."""
    run = report.trace.run
    assert run is not None
    losses = [(float(i), y) for i, y in enumerate(run.losses, 1)]
    markers = []
    for f in report.findings:
        step = f.evidence.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            markers.append(Marker(float(step), f.code, RED if f.severity == "error" else ORANGE))
    finite = [y for _, y in losses if math.isfinite(y)]
    chart = Chart("Training loss (monitored run)", "step", "loss", [
        Series("loss", losses, BLUE, dots=len(losses) <= 60)], markers=markers,
        log_y=bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 20)
    return _figure(render(chart), escape(
        f"{len(losses)} observed steps; dashed verticals: findings at the step they were made."))
