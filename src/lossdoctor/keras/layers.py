"""Scoped recording of Keras layers: every leaf layer's output, and the pre-activation of every
layer that applies its own ``activation`` (``Dense``, ``Conv2D``...).

Keras has no forward hooks, so for the duration of the block each recorded layer gets an
instance attribute ``call`` (and ``activation``) that wraps the original and records; both are
deleted (or put back) in ``finally``. A ``Dense(750, activation="relu")`` yields two records like
PyTorch's ``Linear`` + ``ReLU``: the linear output (the pre-activation, with fan-in and weight
scale from the kernel) and the activation (its input, output, dead and saturated fractions).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossdoctor.keras.backend import Adapter, to_numpy
from lossdoctor.trace import LayerStats, TensorStats
from lossdoctor.vocab import DYING, SATURATION_Z

# Keras activation function names -> the trace vocabulary.
ACTIVATION_NAMES = {
    "relu": "relu", "relu6": "relu6", "leaky_relu": "leaky_relu", "elu": "elu", "selu": "selu",
    "celu": "celu", "gelu": "gelu", "silu": "silu", "swish": "silu", "mish": "mish",
    "softplus": "softplus", "softsign": "softsign", "tanh": "tanh", "sigmoid": "sigmoid",
    "hard_sigmoid": "hardsigmoid", "hard_silu": "hardswish", "hard_swish": "hardswish",
    "softmax": "softmax", "log_softmax": "log_softmax", "log_sigmoid": "logsigmoid",
    "hard_tanh": "hardtanh", "linear": "linear", "exponential": "exp",
}
_ACTIVATION_LAYERS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "PReLU": "prelu", "ELU": "elu",
                      "Softmax": "softmax"}
_LINEAR = ("Dense", "EinsumDense")
_CONV = ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
         "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D")
_NORM = ("BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization",
         "UnitNormalization", "SpectralNormalization")
_RECURRENT = ("SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D")
_PASS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
         "GaussianDropout", "GaussianNoise", "Flatten", "Reshape", "Identity", "InputLayer",
         "ActivityRegularization", "Permute")
_ADD = ("Add", "Subtract")


def activation_op(fn: Any) -> str:
    """The trace name of a Keras activation function (``linear`` for None)."""
    if fn is None:
        return "linear"
    name = getattr(fn, "__name__", type(fn).__name__).lower()
    return ACTIVATION_NAMES.get(name, name)


def layer_kind(layer: Any) -> str | None:
    """``linear``, ``conv``, ``norm``, ``embedding``, ``recurrent``, ``activation``, ``add``,
    ``pass`` or None (not recorded, a container, or unknown)."""
    cls = type(layer).__name__
    if cls in _LINEAR:
        return "linear"
    if cls in _CONV:
        return "conv"
    if cls in _NORM:
        return "norm"
    if cls == "Embedding":
        return "embedding"
    if cls in _RECURRENT:
        return "recurrent"
    if cls in _ACTIVATION_LAYERS or cls == "Activation":
        return "activation"
    if cls in _ADD:
        return "add"
    if cls in _PASS:
        return "pass"
    return None


def sublayers(layer: Any) -> list[Any]:
    """Direct sublayers of a layer or model."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def leaf_layers(model: Any) -> list[tuple[Any, str | None]]:
    """(layer, kind) for every layer the probe wraps: known kinds are not descended into
    (an LSTM's cell is part of the LSTM record), other containers are."""
    found: list[tuple[Any, str | None]] = []
    seen: set[int] = set()

    def walk(layer: Any) -> None:
        for sub in sublayers(layer):
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            kind = layer_kind(sub)
            if kind is not None or not sublayers(sub):
                found.append((sub, kind))
            else:
                walk(sub)

    walk(model)
    return found


def fan_in(kernel_shape: tuple[int, ...]) -> int:
    """Inputs per output unit: every kernel axis but the last (Keras kernels are (..., in, out))."""
    return int(math.prod(kernel_shape[:-1])) if len(kernel_shape) >= 2 else 1


def array_stats(a: np.ndarray) -> TensorStats:
    """Statistics of one array (float64 reductions over the finite elements)."""
    x = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(x)
    nonfinite = int(x.size - finite.sum())
    v = x[finite] if nonfinite else x.reshape(-1)
    if v.size == 0:
        return TensorStats(tuple(x.shape), int(x.size), 0.0, 0.0, 0.0, 0.0, 0.0, nonfinite, 0)
    mean = float(v.mean())
    rms = float(np.sqrt(np.mean(v * v)))
    return TensorStats(
        shape=tuple(int(s) for s in x.shape), numel=int(x.size), mean=mean, rms=rms,
        std=float(v.std(ddof=1)) if v.size > 1 else 0.0, min=float(v.min()), max=float(v.max()),
        nonfinite=nonfinite, zeros=int((x == 0).sum()))


def saturated_fraction(pre: np.ndarray, op: str) -> float | None:
    """Share of pre-activations beyond the flat-tail line of a sigmoid-like unit."""
    z = SATURATION_Z.get(op)
    if z is None or pre.size == 0:
        return None
    return float((np.abs(pre) >= z).mean())


def dead_fraction(out: np.ndarray) -> tuple[float, int] | None:
    """Share of units (last axis: Keras is channels-last) that are <= 0 for the whole batch."""
    if out.ndim < 2 or out.size == 0:
        return None
    flat = out.reshape(-1, out.shape[-1])
    return float((flat.max(axis=0) <= 0).mean()), int(out.shape[-1])


@dataclass
class Pending:
    """One record whose gradient is still to come."""

    index: int
    name: str
    kind: str
    op: str
    phase: str
    inputs: TensorStats | None
    output: TensorStats
    tensor: Any
    fan_in: int | None = None
    weight_rms: float | None = None
    source_op: str | None = None
    saturated: float | None = None
    dead_units: float | None = None
    units: int | None = None
    is_output: bool = False
    source_index: int | None = None
    skip_index: int | None = None


@dataclass
class KerasRecorder:
    """Records in execution order, and which record produced which tensor (by identity)."""

    adapter: Adapter
    pending: list[Pending] = field(default_factory=list)
    producers: dict[int, tuple[Pending, Any]] = field(default_factory=dict)
    phase: str = "model"
    enabled: bool = True
    last_input: Any = None  # the input of the linear/conv layer whose activation runs next

    def producer(self, t: Any) -> Pending | None:
        """The record whose output is ``t`` (held alive by the entry, so ids are not reused)."""
        hit = self.producers.get(id(t))
        return hit[0] if hit is not None and hit[1] is t else None

    def alias(self, out: Any, inp: Any) -> None:
        """A pass-through layer's output points at its input's producer."""
        src = self.producer(inp)
        if src is not None:
            self.producers[id(out)] = (src, out)

    def record(self, name: str, kind: str, op: str, inp: Any, out: Any, *,
               kernel: Any = None, source: Pending | None = None,
               skip: Pending | None = None) -> Pending:
        """Measure one layer output now; its gradient is read after the loss."""
        out_np = to_numpy(out)
        in_np = to_numpy(inp) if inp is not None else None
        p = Pending(index=len(self.pending), name=name, kind=kind, op=op, phase=self.phase,
                    inputs=array_stats(in_np) if in_np is not None else None,
                    output=array_stats(out_np), tensor=out,
                    source_op=source.op if source is not None else None,
                    source_index=source.index if source is not None else None,
                    skip_index=skip.index if skip is not None else None)
        if kernel is not None:
            k = to_numpy(kernel)
            p.fan_in = fan_in(tuple(k.shape))
            p.weight_rms = float(np.sqrt(np.mean(np.asarray(k, dtype=np.float64) ** 2)))
        if in_np is not None and kind == "activation":
            p.saturated = saturated_fraction(in_np, op)
        if op in DYING:
            dead = dead_fraction(out_np)
            if dead is not None:
                p.dead_units, p.units = dead
        self.adapter.watch(out)
        self.pending.append(p)
        self.producers[id(out)] = (p, out)
        return p

    def layers(self, grads: list[np.ndarray | None]) -> tuple[LayerStats, ...]:
        """Freeze the records, with the gradient of the loss w.r.t. each output."""
        out = []
        for p, g in zip(self.pending, grads, strict=True):
            grad_rms = None
            grad_nonfinite = 0
            if g is not None and g.size:
                finite = np.isfinite(g)
                grad_nonfinite = int(g.size - finite.sum())
                grad_rms = (float(np.sqrt(np.mean(np.where(finite, g, 0.0) ** 2)))
                            if not grad_nonfinite else math.inf)
            out.append(LayerStats(
                index=p.index, name=p.name, kind=p.kind, op=p.op, phase=p.phase, inputs=p.inputs,
                output=p.output, fan_in=p.fan_in, weight_rms=p.weight_rms, source_op=p.source_op,
                saturated=p.saturated, dead_units=p.dead_units, units=p.units, grad_rms=grad_rms,
                grad_nonfinite=grad_nonfinite, is_output=p.is_output,
                source_index=p.source_index, skip_index=p.skip_index))
        return tuple(out)


def _first(x: Any) -> Any:
    while isinstance(x, (list, tuple)) and x:
        x = x[0]
    if isinstance(x, dict) and x:
        return _first(next(iter(x.values())))
    return x


def _wrap_call(layer: Any, kind: str | None, rec: KerasRecorder) -> Callable[..., Any]:
    original = layer.call
    cls = type(layer).__name__

    def call(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        if not rec.enabled:
            return out
        x, y = _first(args), _first(out)
        if kind == "pass":
            if x is not None and y is not None:
                rec.alias(y, x)
            return out
        if kind in ("linear", "conv") or y is None:
            # the activation wrapper recorded both; an identity activation leaves out == pre
            if y is not None and x is not None and rec.producer(y) is None:
                rec.alias(y, x)
            return out
        if kind == "activation":
            op = (_ACTIVATION_LAYERS.get(cls) if cls != "Activation"
                  else activation_op(getattr(layer, "activation", None)))
            if cls == "ReLU" and float(getattr(layer, "negative_slope", 0.0) or 0.0) != 0.0:
                op = "leaky_relu"
            rec.record(layer.name, "activation", op or "linear", x, y, source=rec.producer(x))
        elif kind == "add":
            srcs = [rec.producer(a) for a in (args[0] if args and isinstance(args[0], (list, tuple))
                                               else args)]
            known = sorted((s for s in srcs if s is not None), key=lambda s: s.index)
            rec.record(layer.name, "add", "add", x, y,
                       source=known[-1] if known else None,
                       skip=known[0] if len(known) > 1 else None)
        else:
            rec.record(layer.name, kind or "other", cls, None, y, source=rec.producer(x))
        return out

    return call


def _wrap_activation(layer: Any, kind: str, rec: KerasRecorder) -> Callable[..., Any]:
    original = layer.activation
    op = activation_op(original)
    cls = type(layer).__name__

    def activation(x: Any, *args: Any, **kwargs: Any) -> Any:
        y = original(x, *args, **kwargs)
        if not rec.enabled:
            return y
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            kernel = getattr(layer, "depthwise_kernel", None)
        lin = rec.record(layer.name, kind, cls, None, x, kernel=kernel,
                         source=rec.producer(rec.last_input))
        if op != "linear":
            rec.record(f"{layer.name}/{op}", "activation", op, x, y, source=lin)
        return y

    return activation


@contextmanager
def layer_hooks(model: Any, rec: KerasRecorder) -> Iterator[None]:
    """Wrap the layers' ``call`` (and ``activation``) while the block runs; always unwrap."""
    patched: list[tuple[Any, str, bool, Any]] = []  # (layer, attribute, had own, old value)

    def patch(layer: Any, attr: str, value: Any) -> None:
        own = attr in layer.__dict__
        patched.append((layer, attr, own, layer.__dict__.get(attr)))
        object.__setattr__(layer, attr, value)

    try:
        for layer, kind in leaf_layers(model):
            if kind in ("linear", "conv") and callable(getattr(layer, "activation", None)):
                patch(layer, "activation", _wrap_activation(layer, kind, rec))
                patch(layer, "call", _wrap_inputs(layer, rec))
            else:
                patch(layer, "call", _wrap_call(layer, kind, rec))
        yield
    finally:
        for layer, attr, own, old in reversed(patched):
            if own:
                object.__setattr__(layer, attr, old)
            else:
                object.__delattr__(layer, attr)


def _wrap_inputs(layer: Any, rec: KerasRecorder) -> Callable[..., Any]:
    """A linear/conv layer's call: remember its input (for the source link), then alias."""
    original = layer.call

    def call(*args: Any, **kwargs: Any) -> Any:
        x = _first(args)
        rec.last_input = x
        out = original(*args, **kwargs)
        y = _first(out)
        if rec.enabled and y is not None and rec.producer(y) is None and x is not None:
            rec.alias(y, x)  # no activation call recorded (none applied)
        return out

    return call
