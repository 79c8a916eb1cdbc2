"""Number formatting shared by findings, reports and the CLI."""

from __future__ import annotations

import math


def g(x: float | None, digits: int = 3) -> str:
    """Compact number: ``2.9e7``, ``0.0516``, ``2.30``."""
    if x is None:
        return "n/a"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e4 or a < 1e-3:
        mant, exp = f"{x:.{digits - 1}e}".split("e")
        mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{int(exp)}"
    return f"{x:.{digits}g}" if a < 1 else f"{x:.{max(digits - len(str(int(a))), 0) + 0}f}".rstrip(
        "."
    ) if a < 1000 else f"{x:.0f}"
