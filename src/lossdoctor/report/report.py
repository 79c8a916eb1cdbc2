"""The :class:`Report` a diagnosis returns."""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult

from lossdoctor.causes import Cause, find_causes
from lossdoctor.findings import SEVERITY_RANK, Finding
from lossdoctor.trace import Trace

# Version of the JSON layout of ``Report.to_dict``: bumped when the layout changes (2: ``causes``).
SCHEMA_VERSION = 2


def strict(x: Any) -> Any:
    """``x`` with NaN/Inf floats as the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON)."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [strict(v) for v in x]
    return x


@dataclass(frozen=True)
class Report:
    """Findings (most severe first), the causes they group into, and the trace.

    Attributes:
        trace: everything measured.
        findings: diagnosed problems.
    """

    trace: Trace
    findings: list[Finding]

    @cached_property
    def causes(self) -> list[Cause]:
        """The findings grouped by the causes graph: each root with the symptoms it explains,
        most severe cause first (``lossdoctor.causes``)."""
        return find_causes(self.findings, self.trace)

    @property
    def codes(self) -> set[str]:
        """The set of finding codes."""
        return {f.code for f in self.findings}

    def worst(self) -> str | None:
        """Most severe severity present, or None for a clean report."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=SEVERITY_RANK.__getitem__)

    def has(self, at_least: str) -> bool:
        """Whether a finding of at least this severity exists."""
        return any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK[at_least] for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for strict JSON (NaN/Inf as strings): causes, findings, then the trace."""
        from lossdoctor import __version__

        out: dict[str, Any] = strict({
            "schema_version": SCHEMA_VERSION,
            "lossdoctor_version": __version__,
            "codes": sorted(self.codes),
            "causes": [c.to_dict() for c in self.causes],
            "findings": [f.to_dict() for f in self.findings],
            "trace": self.trace.to_dict(),
        })
        return out

    def to_html(self, title: str = "lossdoctor report") -> str:
        """The report as one self-contained HTML page (inline CSS and SVG plots, no script)."""
        from lossdoctor.report.html import to_html

        return to_html(self, title)

    def save_html(self, path: str | os.PathLike[str], title: str = "lossdoctor report") -> Path:
        """Write :meth:`to_html` to ``path`` (UTF-8) and return the path."""
        out = Path(path)
        out.write_text(self.to_html(title), encoding="utf-8")
        return out

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the HTML report."""
        return self.to_html()

    def render(self, width: int = 100, color: bool = False) -> str:
        """The terminal report as text."""
        console = Console(width=width, record=True, color_system="standard" if color else None,
                          force_terminal=color, file=io.StringIO())
        console.print(self)
        return console.export_text(styles=color)

    def __str__(self) -> str:
        return self.render()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from lossdoctor.report.terminal import renderables

        yield from renderables(self)
