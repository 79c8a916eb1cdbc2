"""``output-range-mismatch``: a regression output activation that cannot reach the targets.

A sigmoid or softmax output lives in (0, 1), tanh in (-1, 1), ReLU in [0, inf): targets outside
that range can never be fitted, and the squared error has a floor however long training runs; the
gradient pushes the output onto the activation's flat tail (sigmoid, tanh) or into the dead zone
(ReLU). The line is ``range_excess``: the targets reach beyond the output's range by more than
that share of their own spread (10%: a tenth of the targets' span is unreachable); when even their
mean is out of reach it is an error.
"""

from __future__ import annotations

import math

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

RANGES: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "hardsigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0), "hardtanh": (-1.0, 1.0), "softsign": (-1.0, 1.0),
    "relu": (0.0, math.inf), "softplus": (0.0, math.inf), "relu6": (0.0, 6.0),
    "elu": (-1.0, math.inf),
}
_REGRESSION = ("mse", "l1", "huber", "smooth_l1")


@check("output-range-mismatch")
def output_range_mismatch(trace: Trace, th: Thresholds) -> list[Finding]:
    """Regression targets beyond the range of the output activation."""
    out, tg, loss = trace.output, trace.targets, trace.loss
    if out is None or tg is None or out.producer not in RANGES:
        return []
    if loss.kind not in _REGRESSION and not (loss.kind == "custom" and trace.task == "regression"):
        return []
    if tg.dtype != "float" or tg.binary or tg.onehot_rows or tg.stats.nonfinite:
        return []
    lo, hi = RANGES[out.producer]
    t_min, t_max = tg.stats.min, tg.stats.max
    spread = t_max - t_min
    # the part of [t_min, t_max] outside [lo, hi], as a share of the span
    overlap = max(0.0, min(t_max, hi) - max(t_min, lo))
    share = (spread - overlap) / spread if spread > 0 else float(not lo <= t_min <= hi)
    if share <= th.range_excess:
        return []
    mean_out = not lo <= tg.stats.mean <= hi
    reach = f"[{g(lo)}, {g(hi)}]" if math.isfinite(hi) else f"[{g(lo)}, inf)"
    return [Finding(
        "output-range-mismatch", "error" if mean_out else "warning", "loss",
        {"loss": loss.kind, "output_op": out.producer, "output_range": [lo, hi],
         "target_min": t_min, "target_max": t_max, "target_mean": tg.stats.mean,
         "excess_share": share, "lines": {"range_excess": th.range_excess}},
        f"{loss.kind} regression with a {out.producer} output, which can only reach {reach}, "
        f"against targets in [{g(t_min)}, {g(t_max)}] (mean {g(tg.stats.mean)}): "
        f"{g(100 * share)}% of their span is out of reach (line {g(100 * th.range_excess)}%)"
        + ("; even their mean is." if mean_out else "."),
        f"The model's prediction is {out.producer}(z), so the loss cannot fall below the distance "
        "from the targets to that range. Training pushes z towards the activation's edge, where "
        "its slope vanishes (sigmoid, tanh) or the unit dies (ReLU), and stalls there. Use a "
        "linear output for unbounded targets, or rescale the targets into the range.",
        (Fix("linear output layer for regression (or scale the targets into the range)",
             "# drop the final activation: model returns nn.Linear(hidden, n_out)(h)\n"
             "y = (y - y_mean) / y_std   # and invert for predictions"),),
    )]
