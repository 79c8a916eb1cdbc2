"""Group findings into causes: a root finding, the symptoms it explains, one fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lossdoctor.causes.graph import Context, links_to
from lossdoctor.findings import SEVERITY_RANK, Finding, Fix, Severity, Verification
from lossdoctor.trace import Trace


@dataclass(frozen=True)
class Symptom:
    """A finding explained by a cause.

    Attributes:
        finding: the explained finding.
        index: its position in the report's findings.
        because: the measured evidence that links it to the cause (or to the symptom between).
        via: the code of the finding that explains it directly (the root's code, or a symptom
            in between).
    """

    finding: Finding
    index: int
    because: str
    via: str


@dataclass(frozen=True)
class Cause:
    """A root finding no other finding explains, with everything it explains.

    Attributes:
        root: the root finding.
        index: its position in the report's findings.
        symptoms: the findings it explains, directly or through each other.
    """

    root: Finding
    index: int
    symptoms: tuple[Symptom, ...]

    @property
    def severity(self) -> Severity:
        """The most severe severity among the root and its symptoms."""
        worst: Severity = self.root.severity
        for s in self.symptoms:
            if SEVERITY_RANK[s.finding.severity] > SEVERITY_RANK[worst]:
                worst = s.finding.severity
        return worst

    @property
    def codes(self) -> list[str]:
        """The root's code, then the symptoms' codes (each once)."""
        out = [self.root.code]
        for s in self.symptoms:
            if s.finding.code not in out:
                out.append(s.finding.code)
        return out

    @property
    def fix(self) -> Fix | None:
        """The one fix shown for the cause: the root's first."""
        return self.root.fixes[0] if self.root.fixes else None

    @property
    def verification(self) -> Verification | None:
        """The root's fix measured on a copy, when it could be applied mechanically."""
        return self.root.verification

    def gone(self) -> tuple[list[str], list[str]]:
        """Codes of the cause (root and symptoms) gone after the verified repair, and left."""
        v = self.verification
        if v is None or "all_codes" not in v.after:
            return [], []
        after = set(v.after["all_codes"])
        return [c for c in self.codes if c not in after], [c for c in self.codes if c in after]

    def to_dict(self) -> dict[str, Any]:
        """Plain data: findings are referenced by their index in the report's ``findings``."""
        gone, left = self.gone()
        v = self.verification
        return {
            "code": self.root.code, "severity": self.severity, "where": self.root.where,
            "finding": self.index, "summary": self.root.summary,
            "symptoms": [{"code": s.finding.code, "severity": s.finding.severity,
                          "where": s.finding.where, "finding": s.index, "via": s.via,
                          "because": s.because} for s in self.symptoms],
            "fix": None if self.fix is None else {"title": self.fix.title, "code": self.fix.code},
            "verification": None if v is None else {
                "repair": v.repair, "status": v.status, "message": v.message,
                "gone": gone, "left": left},
        }


def _parents(findings: Sequence[Finding], ctx: Context) -> dict[int, tuple[int, str]]:
    """For each explained finding: the finding that explains it and the linking evidence."""
    out: dict[int, tuple[int, str]] = {}
    for j, s in enumerate(findings):
        for link in links_to(s.code):
            hit = next(((i, why) for i, c in enumerate(findings)
                        if i != j and c.code == link.cause
                        for why in [link.holds(c, s, ctx)] if why is not None), None)
            if hit is not None:
                out[j] = hit
                break
    # the same code twice: later ones are the same problem elsewhere, under the first
    first: dict[str, int] = {}
    for j, f in enumerate(findings):
        if j in out:
            continue
        if f.code in first:
            out[j] = (first[f.code], f"the same problem at {f.where}")
        else:
            first[f.code] = j
    return out


def _root(j: int, parents: dict[int, tuple[int, str]]) -> int:
    seen = {j}
    while j in parents:
        j = parents[j][0]
        if j in seen:  # the graph is a DAG over codes; a cycle would be a bug: stop at it
            break
        seen.add(j)
    return j


def find_causes(findings: Sequence[Finding], trace: Trace | None = None) -> list[Cause]:
    """Group findings into causes, most severe cause first (then the report's order).

    Every finding appears exactly once: as a root or as a symptom of one.
    """
    ctx = Context(findings, trace)
    parents = _parents(findings, ctx)
    members: dict[int, list[Symptom]] = {}
    for j, f in enumerate(findings):
        if j in parents:
            i, why = parents[j]
            members.setdefault(_root(j, parents), []).append(
                Symptom(f, j, why, findings[i].code))
        else:
            members.setdefault(j, [])
    causes = [Cause(findings[i], i, tuple(sorted(s, key=lambda s: s.index)))
              for i, s in members.items()]
    return sorted(causes, key=lambda c: (-SEVERITY_RANK[c.severity], c.index))
