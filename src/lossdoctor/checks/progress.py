"""Whether the probe steps show the set-up learning: the consequence a finding is graded on.

A statistic that looks off (a shrinking signal, a large step) only hurts when training suffers.
The probe steps train a copy on the batch; when its loss falls by ``learning_progress`` of its
start, a finding that claims training is hurt is stated as ``info`` with the numbers.
"""

from __future__ import annotations

import math

from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


def learns(trace: Trace, th: Thresholds) -> tuple[float, float] | None:
    """(first, last) probe loss when the steps show real progress, else None."""
    st = trace.steps
    if st is None or len(st.losses) < 2:
        return None
    first, last = st.losses[0], st.losses[-1]
    if not (math.isfinite(first) and math.isfinite(last)):
        return None
    return (first, last) if first - last >= th.learning_progress * abs(first) else None
