"""Scale along depth: the forward signal and the backward gradient as series over layers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lossdoctor.probe.kinds import ACTIVATIONS
from lossdoctor.trace import LayerStats, Trace

TINY = 1e-30


@dataclass(frozen=True)
class Run:
    """The largest change of scale between two points of a series.

    Attributes:
        start: index of the first point.
        end: index of the last point.
        ratio: scale at ``end`` over scale at ``start`` (> 1 grows, < 1 shrinks).
        per_layer: geometric mean factor per step.
    """

    start: int
    end: int
    ratio: float
    per_layer: float


def signal_points(trace: Trace) -> list[tuple[str, float]]:
    """Pre-activation rms at every elementwise nonlinearity of the model, in order."""
    return [
        (layer.name, layer.inputs.rms)
        for layer in trace.layers
        if layer.phase == "model" and layer.kind == "activation" and layer.op in ACTIVATIONS
        and layer.inputs is not None and layer.inputs.nonfinite == 0
    ]


def grad_points(trace: Trace) -> list[tuple[str, float]]:
    """Per-example gradient norm at the output of every linear/conv layer, input to output.

    The norm (not the per-element rms) is what a correctly scaled init preserves when widths
    change: with He init, ``N_l E[d_l^2] = N_(l+1) E[d_(l+1)^2]``. Layers whose gradient is
    exactly 0 are left out: that is structural (a zero-initialised residual branch above them,
    a dead layer, a detached path) and other checks report it.
    """
    pts = []
    for layer in trace.layers:
        if (layer.phase == "model" and layer.kind in ("linear", "conv") and layer.grad_rms
                and not layer.grad_nonfinite and math.isfinite(layer.grad_rms)):
            numel = layer.output.numel
            per_example = numel / max(trace.batch_size, 1)
            pts.append((layer.name, layer.grad_rms * math.sqrt(per_example)))
    return pts


def extreme(points: list[tuple[str, float]], grow: bool) -> Run | None:
    """The pair i < j with the largest growth (``grow``) or shrinkage of the series."""
    best: Run | None = None
    anchor = 0
    for j in range(1, len(points)):
        a = max(points[anchor][1], TINY)
        b = max(points[j][1], TINY)
        ratio = b / a
        better = best is None or (ratio > best.ratio if grow else ratio < best.ratio)
        if better:
            best = Run(anchor, j, ratio, ratio ** (1.0 / (j - anchor)))
        prev = max(points[j][1], TINY)
        if (grow and prev < a) or (not grow and prev > a):
            anchor = j
    return best


def activation_family(trace: Trace) -> str:
    """``relu``, ``tanh``, ``sigmoid`` or ``linear``: the dominant hidden nonlinearity."""
    ops = [layer.op for layer in trace.layers
           if layer.kind == "activation" and layer.phase == "model" and not layer.is_output]
    for family, members in (
        ("relu", {"relu", "relu6", "leaky_relu", "prelu", "elu", "celu", "gelu", "silu", "mish",
                  "hardswish", "softplus", "selu"}),
        ("tanh", {"tanh", "hardtanh", "softsign"}),
        ("sigmoid", {"sigmoid", "hardsigmoid"}),
    ):
        if any(op in members for op in ops):
            return family
    return "linear"


def linear_layers(trace: Trace) -> list[LayerStats]:
    """Linear and conv layers of the model with a known fan-in and weight scale."""
    return [layer for layer in trace.layers
            if layer.kind in ("linear", "conv") and layer.phase == "model"
            and layer.fan_in and layer.weight_rms is not None]


def weight_gain(layer: LayerStats) -> float:
    """``std(w) * sqrt(fan_in)``: how a layer scales a unit-variance input (He: sqrt 2)."""
    assert layer.weight_rms is not None and layer.fan_in is not None
    return layer.weight_rms * math.sqrt(layer.fan_in)
