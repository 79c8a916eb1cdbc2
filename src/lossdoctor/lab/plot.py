"""Line plots saved to PNG (matplotlib, headless), imported only when a plot is asked for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lossdoctor.errors import LossDoctorError


def _pyplot() -> Any:
    """matplotlib's pyplot on the headless Agg backend, or a clear error without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the install
        raise LossDoctorError("plots need matplotlib: pip install 'lossdoctor[lab]'") from e
    return plt


def _save(plt: Any, fig: Any, path: str | Path) -> Path:
    fig.tight_layout()
    out = Path(path)
    try:
        fig.savefig(out)
    except OSError as e:
        raise LossDoctorError(f"cannot write the plot {out}: {e}") from e
    finally:
        plt.close(fig)
    return out


def line_plot(path: str | Path, series: dict[str, Sequence[float]], *, title: str,
              xlabel: str, ylabel: str, log_if_decades: float = 2.0) -> Path:
    """Save one line per series; the y axis is logarithmic when the values span decades.

    Args:
        path: PNG file to write.
        series: label -> values (x is the index).
        title: plot title.
        xlabel: x axis label.
        ylabel: y axis label.
        log_if_decades: use a log y axis when max/min of the positive values exceeds 10^this.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    positive = [v for vals in series.values() for v in vals if v > 0]
    for label, vals in series.items():
        ax.plot(range(len(vals)), list(vals), label=label)
    if positive and max(positive) / min(positive) > 10**log_if_decades:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)


def rms_plot(path: str | Path, names: Sequence[str], predicted: Sequence[float],
             measured: Sequence[float | None]) -> Path:
    """Per-layer rms on a log axis: the prediction as a line, the measurement as points."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    x = list(range(len(names)))
    ax.plot(x, list(predicted), "-", label="predicted (mean-field)")
    pts = [(i, m) for i, m in zip(x, measured, strict=True) if m is not None]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", label="measured")
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel("rms of the layer's output")
    ax.set_title("signal scale per layer")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(plt, fig, path)
