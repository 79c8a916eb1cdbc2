"""Rich rendering: a header, the findings, then the per-layer table."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from lossdoctor.fmt import g

if TYPE_CHECKING:
    from lossdoctor.causes import Cause
    from lossdoctor.findings import Verification
    from lossdoctor.report.report import Report

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _header(report: Report) -> Text:
    t = report.trace
    loss = t.loss
    n_params = sum(1 for _ in t.params)
    total = sum(math.prod(p.shape) for p in t.params)
    red = f", reduction={loss.reduction}" if loss.reduction else ""
    text = Text()
    text.append("lossdoctor", style="bold")
    text.append(
        f"  loss {g(loss.value)} ({loss.kind}{red})  task {t.task}"
        + (f" (K={t.n_classes})" if t.task == "multiclass" else "")
        + f"  batch {t.batch_size}  {total:,} parameters in {n_params} tensors"
        + (f"  optimizer {t.optimizer.name}" if t.optimizer else "")
    )
    return text


def _verification_line(v: Verification) -> Text:
    style = {"verified": "bold green", "not verified": "yellow", "failed": "red"}[v.status]
    line = Text()
    line.append(f"{v.status} on a copy", style=style)
    line.append(f" ({v.repair}): {v.message}")
    return line


def _cause(n: int, cause: Cause, shown: dict[str, int]) -> RenderableType:
    """One cause: its root finding, the symptoms it explains, one fix and its verification."""
    f = cause.root
    title = Text()
    title.append(f"CAUSE {n}  ", style="bold")
    title.append(f"{cause.severity.upper():8}", style=STYLE[cause.severity])
    title.append(f"{f.code}", style="bold")
    title.append(f"  at {f.where}")
    parts: list[RenderableType] = [title, Text(f.summary), Text(f.explanation, style="dim")]
    if cause.symptoms:
        k = len(cause.symptoms)
        parts.append(Text(f"explains {k} more finding{'s' if k != 1 else ''}:", style="bold"))
    for s in cause.symptoms:
        line = Text("  ")
        line.append(f"{s.finding.severity.upper():8}", style=STYLE[s.finding.severity])
        line.append(s.finding.code, style="bold")
        line.append(f"  at {s.finding.where}: {s.finding.summary}")
        parts.append(line)
        parts.append(Text(f"    because {s.because}", style="dim"))
    fix = cause.fix
    if fix is not None:
        parts.append(Text(f"fix: {fix.title}", style="green"))
        if fix.code in shown:
            parts.append(Text(f"(the same code as cause {shown[fix.code]})", style="dim"))
        else:
            shown[fix.code] = n
            parts.append(Syntax(fix.code, "python", theme="ansi_dark",
                                background_color="default"))
        more = [x.title for x in f.fixes[1:]]
        if more:
            parts.append(Text("other fixes (code in --json): " + "; ".join(more), style="dim"))
    if cause.verification is not None:
        parts.append(_verification_line(cause.verification))
        gone, left = cause.gone()
        if cause.verification.status != "failed" and (gone or left):
            line = Text()
            if gone:
                line.append("gone after the fix: " + ", ".join(gone), style="green")
            if left:
                line.append(("; " if gone else "") + "still found: " + ", ".join(left),
                            style="yellow")
            parts.append(line)
    return Panel(Group(*parts), expand=True, border_style=STYLE[cause.severity])


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.0f}%"


def layer_table(report: Report) -> Table:
    """Per-layer measurements in execution order."""
    table = Table(title="per-layer measurements (execution order)", title_justify="left",
                  show_edge=False, pad_edge=False)
    for col, just in (("layer", "left"), ("op", "left"), ("shape", "left"), ("in rms", "right"),
                      ("out rms", "right"), ("grad rms", "right"), ("sat", "right"),
                      ("dead", "right"), ("nan/inf", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for layer in report.trace.layers:
        table.add_row(
            layer.name + (" *" if layer.is_output else ""),
            layer.op,
            "x".join(str(s) for s in layer.output.shape),
            g(layer.inputs.rms) if layer.inputs else "",
            g(layer.output.rms),
            g(layer.grad_rms) if layer.grad_rms is not None else "",
            _pct(layer.saturated),
            _pct(layer.dead_units),
            str(layer.output.nonfinite) if layer.output.nonfinite else "",
        )
    return table


def renderables(report: Report) -> Iterator[RenderableType]:
    """Everything the terminal report shows, in order: causes first, each fix once."""
    yield _header(report)
    if report.findings:
        causes = report.causes
        counts = {s: sum(c.severity == s for c in causes) for s in ("error", "warning", "info")}
        n = len(causes)
        yield Text(f"{n} cause{'s' if n != 1 else ''} ("
                   + ", ".join(f"{k} {s}" for s, k in counts.items() if k)
                   + f") for {len(report.findings)} finding"
                   + ("s" if len(report.findings) != 1 else ""), style="bold")
        shown: dict[str, int] = {}
        for i, cause in enumerate(causes, 1):
            yield _cause(i, cause, shown)
    else:
        yield Text("no problems found", style="bold green")
    if report.trace.layers:
        yield layer_table(report)
    for note in report.trace.notes:
        yield Text(f"note: {note}", style="dim")
