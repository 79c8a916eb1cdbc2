"""The check protocol and registry.

A check is a pure function ``(Trace, Thresholds) -> list[Finding]`` that declares the codes it
may emit and the scope of trace it needs:

- ``batch``: the full one-batch probe (loss, targets, output, parameters, optimizer);
- ``layers``: layer records only (the monitor has these on scheduled steps);
- ``run``: a training run's history (``trace.run``), filled by the monitor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from lossdoctor.findings import SEVERITY_RANK, Finding
from lossdoctor.thresholds import DEFAULT, Thresholds
from lossdoctor.trace import Trace

Scope = Literal["batch", "layers", "run"]
CheckFn = Callable[[Trace, Thresholds], list[Finding]]


@dataclass(frozen=True)
class Check:
    """A registered check.

    Attributes:
        fn: the pure function.
        codes: the finding codes it may emit (each catalogued).
        scope: what part of a trace it needs.
    """

    fn: CheckFn
    codes: frozenset[str]
    scope: Scope

    @property
    def name(self) -> str:
        """The function's name."""
        return self.fn.__name__


REGISTRY: list[Check] = []


def check(*codes: str, scope: Scope = "batch") -> Callable[[CheckFn], CheckFn]:
    """Register a check that emits ``codes`` (decorator)."""
    def register(fn: CheckFn) -> CheckFn:
        REGISTRY.append(Check(fn, frozenset(codes), scope))
        return fn
    return register


def run_checks(trace: Trace, thresholds: Thresholds | None = None,
               scopes: Iterable[Scope] = ("batch", "layers", "run")) -> list[Finding]:
    """Run the registered checks of the given scopes; findings sorted by severity, then order.

    Raises:
        RuntimeError: a check emitted a code it did not declare (a bug in lossdoctor).
    """
    th = thresholds or DEFAULT
    wanted = set(scopes)
    found: list[Finding] = []
    for c in REGISTRY:
        if c.scope not in wanted:
            continue
        out = c.fn(trace, th)
        for f in out:
            if f.code not in c.codes:
                raise RuntimeError(f"check {c.name} emitted undeclared code {f.code!r}")
        found.extend(out)
    return sorted(found, key=lambda f: -SEVERITY_RANK[f.severity])
