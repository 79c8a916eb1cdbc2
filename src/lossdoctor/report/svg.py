"""Inline SVG line charts for the HTML report: no JavaScript, no external resources.

A chart is a list of :class:`Series` on shared axes, log or linear in y; non-finite points are
drawn as crosses on the top edge (a NaN/Inf loss is exactly what a reader must see).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from lossdoctor.fmt import g

W, H = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 66


@dataclass(frozen=True)
class Series:
    """One line.

    Attributes:
        name: legend label.
        points: (x, y) pairs; y may be non-finite (drawn as a cross on the top edge).
        color: stroke colour.
        dashed: dashed line (predictions).
        dots: draw a dot at each point.
    """

    name: str
    points: Sequence[tuple[float, float]]
    color: str
    dashed: bool = False
    dots: bool = True


@dataclass(frozen=True)
class Marker:
    """A vertical line at x with a label (a finding at a step)."""

    x: float
    label: str
    color: str = "#b91c1c"


@dataclass(frozen=True)
class Chart:
    """Axes and series.

    Attributes:
        title: shown above the plot.
        x_label: x axis label.
        y_label: y axis label.
        series: the lines.
        log_y: log10 y axis.
        markers: vertical lines.
        x_ticks: (x, label) tick positions; default: up to 10 evenly spaced integers.
    """

    title: str
    x_label: str
    y_label: str
    series: Sequence[Series]
    log_y: bool = True
    markers: Sequence[Marker] = field(default_factory=tuple)
    x_ticks: Sequence[tuple[float, str]] | None = None


def _ok(y: float, log: bool) -> bool:
    return math.isfinite(y) and (y > 0 or not log)


def _range(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def _y_ticks(lo: float, hi: float, log: bool) -> list[tuple[float, str]]:
    if log:
        a, b = math.ceil(lo), math.floor(hi)
        step = max(1, math.ceil((b - a + 1) / 8))
        return [(float(e), g(10.0 ** e)) for e in range(a, b + 1, step)]
    return [(lo + (hi - lo) * k / 5, g(lo + (hi - lo) * k / 5)) for k in range(6)]


def render(chart: Chart) -> str:
    """The chart as an ``<svg>`` element."""
    log = chart.log_y
    xs = [x for s in chart.series for x, _ in s.points] + [m.x for m in chart.markers]
    ys = [math.log10(y) if log else y for s in chart.series for _, y in s.points if _ok(y, log)]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = _range(ys)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        v = math.log10(y) if log else y
        return TOP + (1 - (v - y0) / (y1 - y0)) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
           f'class="chart" aria-label="{escape(chart.title)}">',
           f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>',
           f'<text x="{LEFT}" y="18" class="ct">{escape(chart.title)}</text>',
           f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#f8fafc" '
           f'stroke="#94a3b8"/>']
    for v, label in _y_ticks(y0, y1, log):
        y = TOP + (1 - (v - y0) / (y1 - y0)) * ph
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#e2e8f0"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tk">'
                   f'{escape(label)}</text>')
    ticks = chart.x_ticks
    if ticks is None:
        step = max(1, math.ceil((x1 - x0) / 10))
        ticks = [(float(x), str(x)) for x in range(math.ceil(x0), math.floor(x1) + 1, step)]
    for x, label in ticks:
        out.append(f'<text x="{px(x):.1f}" y="{TOP + ph + 16}" text-anchor="middle" class="tk">'
                   f'{escape(label)}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 30}" text-anchor="middle" class="al">'
               f'{escape(chart.x_label)}</text>')
    out.append(f'<text x="14" y="{TOP + ph / 2}" text-anchor="middle" class="al" '
               f'transform="rotate(-90 14 {TOP + ph / 2})">{escape(chart.y_label)}</text>')
    for m in chart.markers:
        out.append(f'<line x1="{px(m.x):.1f}" x2="{px(m.x):.1f}" y1="{TOP}" y2="{TOP + ph}" '
                   f'stroke="{m.color}" stroke-dasharray="3 3"/>')
        out.append(f'<text x="{px(m.x) + 3:.1f}" y="{TOP + 12}" class="tk" fill="{m.color}">'
                   f'{escape(m.label)}</text>')
    for s in chart.series:
        out.extend(_series(s, log, px, py, TOP))
    out.extend(_legend(chart.series))
    out.append("</svg>")
    return "\n".join(out)


def _series(s: Series, log: bool, px: Callable[[float], float], py: Callable[[float], float],
            top: float) -> list[str]:
    out: list[str] = []
    runs: list[list[str]] = [[]]
    for x, y in s.points:
        if _ok(y, log):
            runs[-1].append(f"{px(x):.1f},{py(y):.1f}")
            if s.dots:
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{s.color}"/>')
        else:
            runs.append([])
            cx, cy = px(x), top + 6
            out.append(f'<path d="M{cx - 4:.1f},{cy - 4:.1f}L{cx + 4:.1f},{cy + 4:.1f}M'
                       f'{cx - 4:.1f},{cy + 4:.1f}L{cx + 4:.1f},{cy - 4:.1f}" '
                       f'stroke="{s.color}" stroke-width="2"><title>{escape(s.name)}: '
                       f'{y} at {g(x)}</title></path>')
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    lines = [f'<polyline points="{" ".join(r)}" fill="none" stroke="{s.color}" '
             f'stroke-width="2"{dash}/>' for r in runs if len(r) > 1]
    return lines + out


def _legend(series: Sequence[Series]) -> list[str]:
    out, x = [], LEFT + 8.0
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(f'<line x1="{x:.1f}" x2="{x + 18:.1f}" y1="{H - 14}" y2="{H - 14}" '
                   f'stroke="{s.color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{x + 22:.1f}" y="{H - 10}" class="tk">{escape(s.name)}</text>')
        x += 30 + 6.2 * len(s.name)
    return out
