"""Plain TensorFlow, as the three stories are written: a ``tf.Module`` whose ``__call__`` uses
``tf.matmul``, ``tf.nn.relu``, ``tf.nn.dropout``..., and a hand-written loss with
``tf.nn.softmax_cross_entropy_with_logits``, ``tf.nn.l2_loss`` and ``reduce_sum``/``reduce_mean``.

There are no layers to wrap, so the probe wraps the ops: for the duration of the block the
functions in TensorFlow's public namespaces (``tf.nn.relu``, ``tf.matmul``, ``tf.reduce_mean``...)
are replaced by recording wrappers and put back in ``finally``. ``tf.matmul(h, W)`` with a
variable ``W`` is a linear record (fan-in and weight scale from ``W``); the input of each
activation is its pre-activation; the loss call names the loss kind, the logits and the labels;
the reduction applied to its per-example values names the reduction; ``tf.nn.l2_loss`` of a
variable marks a penalty. Gradients come from one persistent ``tf.GradientTape``. An op bound to
another name before the probe runs (``relu = tf.nn.relu`` at import) is not seen: call it through
``tf.nn``/``tf``/``tf.math`` as the stories do.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from lossdoctor.keras.backend import TensorFlowAdapter
from lossdoctor.keras.layers import KerasRecorder
from lossdoctor.probe.run import _input_stats, _prediction_stats, _target_stats
from lossdoctor.task import infer_task
from lossdoctor.trace import LossStats, ParamStats, Task, Trace

_ACTIVATIONS = {"relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh",
                "softmax": "softmax", "log_softmax": "log_softmax", "elu": "elu", "selu": "selu",
                "gelu": "gelu", "silu": "silu", "swish": "silu", "leaky_relu": "leaky_relu",
                "softplus": "softplus"}
_LOSSES = {"softmax_cross_entropy_with_logits": "cross_entropy",
           "sparse_softmax_cross_entropy_with_logits": "cross_entropy",
           "sigmoid_cross_entropy_with_logits": "bce_logits"}
_REDUCE = {"reduce_mean": "mean", "reduce_sum": "sum"}


@dataclass
class _State:
    rec: KerasRecorder
    counts: dict[str, int] = field(default_factory=dict)
    loss_kind: str | None = None
    logits: Any = None
    labels: Any = None
    per_example: Any = None
    reduction: str | None = None
    data: Any = None
    penalty_vars: list[Any] = field(default_factory=list)
    variables: dict[int, Any] = field(default_factory=dict)

    def name(self, op: str) -> str:
        n = self.counts.get(op, 0) + 1
        self.counts[op] = n
        return f"fn:{op}#{n}"


def _first_var(args: tuple[Any, ...], kwargs: dict[str, Any], st: _State) -> Any:
    for a in (*args, *kwargs.values()):
        if id(a) in st.variables:
            return a
    return None


def _wrapper(name: str, original: Callable[..., Any], st: _State) -> Callable[..., Any]:
    rec = st.rec

    def call(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        if not rec.enabled and rec.phase == "model":
            return out
        x = args[0] if args else next(iter(kwargs.values()), None)
        if name in _ACTIVATIONS and rec.phase == "model":
            op = _ACTIVATIONS[name]
            rec.record(st.name(op), "activation", op, x, out, source=rec.producer(x))
        elif name == "matmul" and rec.phase == "model":
            w = args[1] if len(args) > 1 else kwargs.get("b")
            kernel = w if id(w) in st.variables else None
            rec.record(st.name("matmul"), "linear", "MatMul", None, out, kernel=kernel,
                       source=rec.producer(x))
        elif name == "dropout":
            rec.alias(out, x)
        elif name in _LOSSES and st.loss_kind is None:
            st.loss_kind = _LOSSES[name]
            st.logits = kwargs.get("logits", args[1] if len(args) > 1 else None)
            st.labels = kwargs.get("labels", args[0] if args else None)
            st.per_example = out
        elif name in _REDUCE and st.per_example is not None and x is st.per_example \
                and st.reduction is None:
            st.reduction, st.data = _REDUCE[name], out
        elif name == "l2_loss":
            var = _first_var(args, kwargs, st)
            if var is not None:
                st.penalty_vars.append(var)
        return out

    return call


_PLACES = (("nn", tuple(_ACTIVATIONS) + tuple(_LOSSES) + ("dropout", "l2_loss")),
           ("math", ("sigmoid", "tanh", "softplus", "reduce_mean", "reduce_sum")),
           ("linalg", ("matmul",)),
           ("", ("matmul", "sigmoid", "tanh", "reduce_mean", "reduce_sum")))


@contextmanager
def op_hooks(st: _State) -> Iterator[None]:
    """Wrap TensorFlow's public op functions while the block runs; always put them back."""
    patched: list[tuple[Any, str, Any]] = []
    try:
        for space, names in _PLACES:
            module = getattr(tf, space) if space else tf
            for n in names:
                original = getattr(module, n, None)
                if original is None:
                    continue
                patched.append((module, n, original))
                setattr(module, n, _wrapper(n, original, st))
        yield
    finally:
        for module, n, original in reversed(patched):
            setattr(module, n, original)


def _role(v: Any) -> str:
    name = v.name.lower().rsplit("/", 1)[-1].split(":")[0]
    if "bias" in name or name.startswith("b"):
        return "bias" if len(v.shape) < 2 else "weight"
    if name in ("gamma", "beta", "scale", "offset"):
        return "norm"
    return "weight" if len(v.shape) >= 2 else "bias"


def _np(t: Any) -> np.ndarray:
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def probe_tf(model: Any, inputs: Any, targets: Any, loss_fn: Callable[[Any, Any], Any],
             task: Task | None = None) -> Trace:
    """Measure one batch of a ``tf.Module`` and a hand-written ``loss_fn(output, targets)``.

    The caller restores the variables (:func:`~lossdoctor.tf.diagnose.diagnose_tf`).
    """
    ad = TensorFlowAdapter()
    rec = KerasRecorder(ad)
    variables = list(model.trainable_variables)
    st = _State(rec, variables={id(v): v for v in variables})
    with warnings.catch_warnings(record=True) as caught, ad.recording(), op_hooks(st):
        warnings.simplefilter("always")
        x = tf.convert_to_tensor(inputs)
        output = model(x)
        ad.watch(output)
        last = next((p for p in reversed(rec.pending)), None)
        rec.phase = "loss"
        loss = loss_fn(output, targets)
    trainable_grads = ad.gradients(loss, [*variables, *[p.tensor for p in rec.pending], output])
    n = len(variables)
    layers = rec.layers(trainable_grads[n:n + len(rec.pending)])
    out_grad = trainable_grads[-1]
    if last is not None and tuple(last.output.shape) == tuple(output.shape):
        layers = (*layers[:last.index], _as_output(layers[last.index]), *layers[last.index + 1:])
    data_norm = penalty_norm = data_value = penalty_value = None
    value = float(_np(loss).reshape(-1).sum())
    if st.penalty_vars and st.data is not None:
        data_value = float(_np(st.data).reshape(-1).sum())
        penalty_value = value - data_value
    if penalty_value == 0.0:  # an l2_loss times a zero coefficient: no penalty
        st.penalty_vars, data_value, penalty_value = [], None, None
    if penalty_value is not None:
        dg = ad.gradients(st.data, variables)
        tg = trainable_grads[:n]
        data_norm = math.sqrt(sum(float((g ** 2).sum()) for g in dg if g is not None))
        penalty_norm = math.sqrt(sum(float(((t - (d if d is not None else 0.0)) ** 2).sum())
                                     for t, d in zip(tg, dg, strict=True) if t is not None))
    pred = _np(st.logits) if st.logits is not None else _np(output)
    producer = None
    if st.logits is not None:
        hit = rec.producer(st.logits)
        producer = hit.op if hit is not None else None
    labels = _np(st.labels) if st.labels is not None else _np(targets)
    import torch

    prediction = _prediction_stats(torch.from_numpy(pred.astype(np.float32)), producer)
    lab = torch.from_numpy(labels.astype(np.int64 if labels.dtype.kind in "iu" else np.float32))
    target_stats = _target_stats(lab, None)
    kind = st.loss_kind or "custom"
    loss_stats = LossStats(
        value=value, kind=kind, reduction=st.reduction, source="function" if st.loss_kind
        else "expression", requires_grad=True, data_value=data_value,
        penalty_value=penalty_value, data_grad_norm=data_norm, penalty_grad_norm=penalty_norm,
        output_grad_rms=float(np.sqrt(np.mean(out_grad ** 2))) if out_grad is not None else None)
    penalised = {id(v) for v in st.penalty_vars}
    params = []
    for v, g in zip(variables, trainable_grads[:n], strict=True):
        w = _np(v).astype(np.float64)
        params.append(ParamStats(
            name=v.name, role=_role(v), shape=tuple(int(s) for s in v.shape),
            rms=float(np.sqrt(np.mean(w ** 2))) if w.size else 0.0,
            grad_rms=float(np.sqrt(np.mean(g ** 2))) if g is not None and g.size else None,
            grad_nonfinite=int((~np.isfinite(g)).sum()) if g is not None else 0,
            requires_grad=True, in_loss_penalty=id(v) in penalised))
    inferred, n_classes = infer_task(kind, tuple(pred.shape), target_stats, task)
    notes = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught
                                if not issubclass(w.category, DeprecationWarning)))
    return Trace(
        task=inferred, n_classes=n_classes, batch_size=int(pred.shape[0]) if pred.ndim else 1,
        layers=layers, params=tuple(params), loss=loss_stats, output=prediction,
        targets=target_stats, inputs=_input_stats(torch.from_numpy(_np(x).astype(np.float32))),
        optimizer=None, notes=notes)


def _as_output(layer: Any) -> Any:
    from dataclasses import replace

    return replace(layer, is_output=True)

