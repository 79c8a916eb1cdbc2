"""Whether the probe steps show the set-up learning: the consequence a finding is graded on.

A statistic that looks off (a shrinking signal, a large step) only hurts when training suffers.
The probe steps train a copy on the batch; when its loss falls by ``learning_progress`` of its
start, a finding that claims training is hurt is stated as ``info`` with the numbers.
"""

from __future__ import annotations

import math

from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


def progress(losses: tuple[float, ...], th: Thresholds) -> tuple[float, float] | None:
    """(first, last) of a loss series that fell by ``learning_progress`` of |first|, else None."""
    if len(losses) < 2:
        return None
    first, last = losses[0], losses[-1]
    if not (math.isfinite(first) and math.isfinite(last)):
        return None
    return (first, last) if first - last >= th.learning_progress * abs(first) else None


def learns(trace: Trace, th: Thresholds) -> tuple[float, float] | None:
    """(first, last) probe loss when the probe steps show real progress, else None."""
    return progress(trace.steps.losses, th) if trace.steps is not None else None


def record_progress(evidence: dict[str, object], steps: tuple[float, float],
                    th: Thresholds) -> str:
    """Put the probe losses and the ``learning_progress`` line into a finding's evidence.

    Returns:
        ``"loss A -> B"`` for its summary.
    """
    evidence["probe_loss"] = list(steps)
    lines = evidence.get("lines")
    evidence["lines"] = {**(lines if isinstance(lines, dict) else {}),
                         "learning_progress": th.learning_progress}
    return f"loss {g(steps[0])} -> {g(steps[1])}"
