"""What a check reports: a named problem, its evidence, the math and a fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Fix:
    """A concrete change the user can paste.

    Attributes:
        title: one line saying what the fix does.
        code: Python code to paste.
    """

    title: str
    code: str


@dataclass(frozen=True)
class Verification:
    """A fix applied to a deep copy and measured on the same batch.

    Attributes:
        repair: name of the mechanical repair (``reinit``, ``adamw``...).
        title: what it changes, in one line.
        status: ``verified`` (its target measurement improved and no new error appeared),
            ``not verified`` (it was applied and measured, but did not help), or ``failed``
            (it could not be applied to this model).
        before: measurements without the fix.
        after: the same measurements with the fix.
        message: what happened, with the numbers.
    """

    repair: str
    title: str
    status: Literal["verified", "not verified", "failed"]
    before: dict[str, Any]
    after: dict[str, Any]
    message: str


@dataclass(frozen=True)
class Finding:
    """One diagnosed problem.

    Attributes:
        code: stable identifier from DESIGN.md (``init-loss-high``...).
        severity: ``error`` (training fails or is meaningless), ``warning`` (training is
            hurt) or ``info`` (worth knowing).
        where: the layer, op, parameter group or ``loss`` it concerns.
        evidence: the measured numbers, including the threshold that was crossed.
        summary: one sentence with the key numbers.
        explanation: two to four sentences with the math.
        fixes: at least one fix as code.
        verification: the measured result of the mechanical fix, when there is one.
    """

    code: str
    severity: Severity
    where: str
    evidence: dict[str, Any]
    summary: str
    explanation: str
    fixes: tuple[Fix, ...] = field(default_factory=tuple)
    verification: Verification | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON."""
        return asdict(self)
