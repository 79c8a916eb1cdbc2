"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Every number the page shows from the report is wrapped in ``<data value=...>`` with a
``data-key`` naming where it comes from, so a test (and a reader's tool) can check the page
against ``Report.to_dict()``.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

from lossdoctor.fmt import g
from lossdoctor.report.plots import layer_chart, run_chart, verification_charts

if TYPE_CHECKING:
    from lossdoctor.causes import Cause
    from lossdoctor.report.report import Report

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;
background:#ffffff;margin:0 auto;max-width:1100px;padding:16px 24px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:24px 0 8px;border-bottom:1px solid #d1d5db}
.meta{color:#374151}.cause{border:1px solid #d1d5db;border-left:6px solid #6b7280;border-radius:6px;
padding:10px 14px;margin:12px 0;background:#ffffff}.cause.error{border-left-color:#b91c1c}
.cause.warning{border-left-color:#b45309}.cause.info{border-left-color:#1d4ed8}
.sev{font-weight:700;font-size:12px;padding:1px 6px;border-radius:4px;color:#ffffff;
background:#374151}.sev.error{background:#b91c1c}.sev.warning{background:#b45309}
.sev.info{background:#1d4ed8}code,pre{font:13px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#f3f4f6;border:1px solid #e5e7eb;border-radius:4px;padding:8px;overflow-x:auto;
color:#111827}.why{color:#374151}.because{color:#4b5563;margin:0 0 6px 18px}
ul.symptoms{margin:4px 0 8px;padding-left:20px}.verified{color:#15803d;font-weight:600}
.notverified{color:#b45309;font-weight:600}.failed{color:#b91c1c;font-weight:600}
.gone{color:#15803d}.left{color:#b45309}svg.chart{width:100%;max-width:760px;height:auto;
display:block;margin:8px 0}.ct{font-size:14px;font-weight:600;fill:#111827}
.tk{font-size:11px;fill:#374151}.al{font-size:12px;fill:#111827}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;border-bottom:1px solid #e5e7eb;
text-align:right}td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
.clean{color:#15803d;font-weight:700}.note{color:#4b5563}
"""


def num(key: str, value: float | int | None, text: str | None = None) -> str:
    """A number with its machine-readable value (``nan``/``inf`` as in the JSON)."""
    if value is None:
        return ""
    v = float(value)
    raw = repr(v) if math.isfinite(v) else str(v)
    shown = text if text is not None else (g(v) if isinstance(value, float) else str(value))
    return f'<data data-key="{escape(key)}" value="{raw}">{escape(shown)}</data>'


def _header(report: Report) -> str:
    t = report.trace
    parts = [f"loss {num('trace.loss.value', t.loss.value)} ({escape(t.loss.kind)}"
             + (f", reduction={escape(t.loss.reduction)}" if t.loss.reduction else "") + ")"]
    if t.task != "unknown":
        parts.append(f"task {escape(t.task)}" + (f" (K={t.n_classes})" if t.n_classes else ""))
    if t.batch_size:
        parts.append(f"batch {num('trace.batch_size', t.batch_size)}")
    if t.params:
        parts.append(f"{sum(math.prod(p.shape) for p in t.params):,} parameters")
    if t.optimizer:
        parts.append(f"optimizer {escape(t.optimizer.name)}")
    if t.run is not None:
        parts.append(f"monitored run: {num('trace.run.step', t.run.step)} steps")
    return f'<p class="meta">{" &middot; ".join(parts)}</p>'


def _cause(n: int, cause: Cause, shown: dict[str, int]) -> str:
    f = cause.root
    sev = cause.severity
    out = [f'<section class="cause {sev}" id="cause-{n}">',
           f'<h3>Cause {n} <span class="sev {sev}">{sev.upper()}</span> '
           f'<code data-key="causes.{n - 1}.code">{escape(f.code)}</code> at {escape(f.where)}</h3>',
           f"<p>{escape(f.summary)}</p>", f'<p class="why">{escape(f.explanation)}</p>']
    if cause.symptoms:
        out.append(f"<p><b>Explains {len(cause.symptoms)} more finding"
                   f"{'s' if len(cause.symptoms) != 1 else ''}:</b></p><ul class=\"symptoms\">")
        for s in cause.symptoms:
            sf = s.finding
            out.append(f'<li><span class="sev {sf.severity}">{sf.severity.upper()}</span> '
                       f"<code>{escape(sf.code)}</code> at {escape(sf.where)}: "
                       f"{escape(sf.summary)}<div class=\"because\">because "
                       f"{escape(s.because)}</div></li>")
        out.append("</ul>")
    fix = cause.fix
    if fix is not None:
        out.append(f"<p><b>Fix:</b> {escape(fix.title)}</p>")
        if fix.code in shown:
            out.append(f'<p class="note">(the same code as cause {shown[fix.code]})</p>')
        else:
            shown[fix.code] = n
            out.append(f"<pre><code>{escape(fix.code)}</code></pre>")
        more = [x.title for x in f.fixes[1:]]
        if more:
            out.append(f'<p class="note">Other fixes (code in the JSON): '
                       f'{escape("; ".join(more))}</p>')
    v = cause.verification
    if v is not None:
        cls = v.status.replace(" ", "")
        out.append(f'<p><span class="{cls}">{escape(v.status)} on a copy</span> '
                   f"({escape(v.repair)}): {escape(v.message)}</p>")
        gone, left = cause.gone()
        if v.status != "failed" and (gone or left):
            out.append("<p>" + (f'<span class="gone">gone after the fix: '
                                f'{escape(", ".join(gone))}</span>' if gone else "")
                       + ("; " if gone and left else "")
                       + (f'<span class="left">still found: {escape(", ".join(left))}</span>'
                          if left else "") + "</p>")
    out.append("</section>")
    return "\n".join(out)


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.0f}%"


def _layer_table(report: Report) -> str:
    rows = ["<table><tr><th>layer</th><th>op</th><th>shape</th><th>in rms</th><th>out rms</th>"
            "<th>grad rms</th><th>saturated</th><th>dead</th></tr>"]
    for i, x in enumerate(report.trace.layers):
        rows.append(
            f"<tr><td>{escape(x.name)}{' *' if x.is_output else ''}</td><td>{escape(x.op)}</td>"
            f"<td>{'x'.join(str(s) for s in x.output.shape)}</td>"
            f"<td>{num(f'trace.layers.{i}.inputs.rms', x.inputs.rms) if x.inputs else ''}</td>"
            f"<td>{num(f'trace.layers.{i}.output.rms', x.output.rms)}</td>"
            f"<td>{num(f'trace.layers.{i}.grad_rms', x.grad_rms)}</td>"
            f"<td>{_pct(x.saturated)}</td><td>{_pct(x.dead_units)}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def to_html(report: Report, title: str = "lossdoctor report") -> str:
    """The whole page."""
    from lossdoctor import __version__

    body: list[str] = [f"<h1>{escape(title)}</h1>", _header(report)]
    if report.trace.run is not None and report.trace.run.losses:  # a run: its curve first
        body += ["<h2>The run</h2>", run_chart(report)]
    causes = report.causes
    if causes:
        counts = {s: sum(c.severity == s for c in causes) for s in ("error", "warning", "info")}
        body.append(f"<h2>{len(causes)} cause{'s' if len(causes) != 1 else ''} ("
                    + ", ".join(f"{k} {s}" for s, k in counts.items() if k)
                    + f") for {len(report.findings)} finding"
                    + ("s" if len(report.findings) != 1 else "") + "</h2>")
        shown: dict[str, int] = {}
        body += [_cause(i, c, shown) for i, c in enumerate(causes, 1)]
    else:
        body.append('<p class="clean">No problems found.</p>')
    charts: list[str] = []
    if report.trace.layers:
        charts.append(layer_chart(report))
    charts += verification_charts(report)
    if charts:
        body.append("<h2>Plots</h2>")
        body += charts
    if report.trace.layers:
        body += ["<h2>Per-layer measurements (execution order)</h2>", _layer_table(report)]
    if report.trace.notes:
        body += ["<h2>Notes</h2>"] + [f'<p class="note">{escape(n)}</p>'
                                      for n in report.trace.notes]
    body.append(f'<p class="note">lossdoctor {escape(__version__)}</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def data_values(report_dict: dict[str, Any], key: str) -> Any:
    """The value a ``data-key`` names in ``Report.to_dict()`` (dotted path, list indices)."""
    cur: Any = report_dict
    for part in key.split("."):
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    return cur
