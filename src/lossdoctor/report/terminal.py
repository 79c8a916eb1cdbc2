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


def _finding(f: object) -> RenderableType:
    from lossdoctor.findings import Finding

    assert isinstance(f, Finding)
    title = Text()
    title.append(f"{f.severity.upper():8}", style=STYLE[f.severity])
    title.append(f"{f.code}", style="bold")
    title.append(f"  at {f.where}")
    parts: list[RenderableType] = [title, Text(f.summary), Text(f.explanation, style="dim")]
    for fix in f.fixes:
        parts.append(Text(f"fix: {fix.title}", style="green"))
        parts.append(Syntax(fix.code, "python", theme="ansi_dark", background_color="default"))
    v = f.verification
    if v is not None:
        style = {"verified": "bold green", "not verified": "yellow", "failed": "red"}[v.status]
        line = Text()
        line.append(f"{v.status} on a copy", style=style)
        line.append(f" ({v.repair}): {v.message}")
        parts.append(line)
    return Panel(Group(*parts), expand=True, border_style=STYLE[f.severity])


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
    """Everything the terminal report shows, in order."""
    yield _header(report)
    if report.findings:
        counts = {s: sum(f.severity == s for f in report.findings)
                  for s in ("error", "warning", "info")}
        yield Text(", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n),
                   style="bold")
        for f in report.findings:
            yield _finding(f)
    else:
        yield Text("no problems found", style="bold green")
    if report.trace.layers:
        yield layer_table(report)
    for note in report.trace.notes:
        yield Text(f"note: {note}", style="dim")
