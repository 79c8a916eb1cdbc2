"""Scale along depth: the forward signal and the backward gradient as series over layers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lossdoctor.trace import LayerStats, Trace
from lossdoctor.vocab import ACTIVATIONS

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


def norm_breaks(trace: Trace) -> frozenset[int]:
    """Positions in :func:`signal_points` that follow a normalisation layer.

    A norm layer resets the scale by construction (BatchNorm after a 219-rms pre-activation gives
    0.53 at the next one): a change across it is not the init compounding over depth.
    """
    breaks, seen_norm, k = set(), False, 0
    for layer in trace.layers:
        if layer.phase != "model":
            continue
        if layer.kind == "norm":
            seen_norm = True
        elif (layer.kind == "activation" and layer.op in ACTIVATIONS and layer.inputs is not None
              and layer.inputs.nonfinite == 0):
            if seen_norm and k:
                breaks.add(k)
            seen_norm = False
            k += 1
    return frozenset(breaks)


def _chain(trace: Trace) -> list[LayerStats]:
    """Linear/conv layers on the path into the output, input side first, following producers.

    Starts at the last linear/conv layer and walks back through activations, norms, residual
    additions and pass-through ops; branches that do not feed that path (attention's query and
    key projections) are left out.
    """
    layers = trace.layers
    lin = [layer for layer in layers
           if layer.phase == "model" and layer.kind in ("linear", "conv")]
    if not lin:
        return []
    chain = [lin[-1]]
    cur = lin[-1]
    while cur.source_index is not None:
        cur = layers[cur.source_index]
        if cur.kind in ("linear", "conv"):
            chain.append(cur)
    return chain[::-1]


def residual_branches(trace: Trace) -> frozenset[int]:
    """Indices of the records inside a residual branch: after the skip's producer, before the
    addition that joins them (:attr:`LayerStats.skip_index`)."""
    inside: set[int] = set()
    for layer in trace.layers:
        if layer.kind == "add" and layer.skip_index is not None:
            inside.update(range(layer.skip_index + 1, layer.index))
    return frozenset(inside)


def grad_points(trace: Trace) -> list[tuple[str, float]]:
    """Per-example gradient norm at the output of linear/conv layers, input to output.

    The layers are those on the path into the output (:func:`_chain`) when that path has at
    least three of them, otherwise every linear/conv layer in execution order, unless two of
    them read the same input (a branched model, where execution order is not depth: no series).
    Layers inside residual branches are not depth: the gradient reaches the layer below a
    block through the skip, whatever a branch scales its own layers by (ConvNeXt's layer scale
    of 1e-6, a squeeze-excitation gate). The norm (not the per-element rms) is what a correctly
    scaled init preserves when widths change: with He init,
    ``N_l E[d_l^2] = N_(l+1) E[d_(l+1)^2]``. Layers whose gradient is exactly 0 are left out:
    that is structural (a zero-initialised residual branch above them, a dead layer, a detached
    path) and other checks report it.
    """
    chain = _chain(trace)
    if len(chain) < 3:
        branches = residual_branches(trace)
        everything = [layer for layer in trace.layers
                      if layer.phase == "model" and layer.kind in ("linear", "conv")
                      and layer.index not in branches]
        sources = [layer.source_index for layer in everything if layer.source_index is not None]
        if len(sources) != len(set(sources)):
            return []  # branched (e.g. query/key/value read one input): order is not depth
        chain = everything
    pts = []
    for layer in chain:
        if (layer.grad_rms and not layer.grad_nonfinite and math.isfinite(layer.grad_rms)):
            per_example = layer.output.numel / max(trace.batch_size, 1)
            pts.append((layer.name, layer.grad_rms * math.sqrt(per_example)))
    return pts


def extreme(points: list[tuple[str, float]], grow: bool,
            breaks: frozenset[int] = frozenset()) -> Run | None:
    """The largest monotone growth (``grow``) or shrinkage between two points of the series.

    Only runs where every step goes the same way count: in a branched model (attention's query,
    key and value projections, parallel heads) consecutive records are not consecutive depths,
    and a pair picked from different branches says nothing about depth.
    """
    best: Run | None = None
    start = 0
    for j in range(1, len(points)):
        a = max(points[j - 1][1], TINY)
        b = max(points[j][1], TINY)
        if (b > a) != grow or b == a or j in breaks:
            start = j
            continue
        s = max(points[start][1], TINY)
        ratio = b / s
        if best is None or (ratio > best.ratio if grow else ratio < best.ratio):
            best = Run(start, j, ratio, ratio ** (1.0 / (j - start)))
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
