"""A time budget for the optional parts of a diagnosis (probe steps and fix verification)."""

from __future__ import annotations

import time


class Budget:
    """Seconds allowed from the start of a diagnosis; ``None`` means no limit.

    The parts that spend it learn what one optimizer step on a copy costs from the probe steps
    and ask :meth:`allows` before each unit of work; what did not fit is listed in
    :attr:`skipped` and reported as a note.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()
        self.step_seconds: float | None = None
        self.skipped: list[str] = []

    def left(self) -> float:
        """Seconds left (infinite without a limit)."""
        if self.seconds is None:
            return float("inf")
        return self.seconds - (time.perf_counter() - self.start)

    def allows(self, steps: float) -> bool:
        """Whether ``steps`` more optimizer steps (at the measured cost of one) fit."""
        if self.seconds is None:
            return True
        return (self.step_seconds or 0.0) * steps <= self.left()

    def note(self) -> str | None:
        """What the budget cut, for the report's notes."""
        if not self.skipped:
            return None
        return (f"budget {self.seconds:g} s (one step on a copy: "
                f"{1e3 * (self.step_seconds or 0.0):.0f} ms): " + "; ".join(self.skipped))
