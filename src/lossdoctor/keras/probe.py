"""Run one batch through a Keras model and its loss and return the same :class:`Trace` the
PyTorch probe returns, so every check applies unchanged.

The model is called as ``fit`` calls it (``training=True``: Dropout drops, BatchNorm uses batch
statistics); layers are recorded by :mod:`lossdoctor.keras.layers`; gradients come from the
backend's adapter (:mod:`lossdoctor.keras.backend`). The loss is what ``fit`` minimises: the data
loss plus ``model.losses`` (the regularisers), split into its two terms.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from lossdoctor.errors import LossFnError, ModelError
from lossdoctor.keras.backend import adapter, to_numpy
from lossdoctor.keras.layers import KerasRecorder, Pending, layer_hooks
from lossdoctor.keras.loss import KerasLoss, LibraryCalls, library_calls
from lossdoctor.keras.optimizer import optimizer_stats
from lossdoctor.probe.run import _input_stats, _prediction_stats, _target_stats
from lossdoctor.task import infer_task
from lossdoctor.trace import LayerStats, LossStats, ParamStats, Task, Trace

_NOT_PARAMETERS = ("seed_generator_state", "moving_mean", "moving_variance")


def parameters(model: Any) -> list[tuple[str, Any]]:
    """(path, variable) of the model's parameters: its weights without Keras' seed-generator
    states and BatchNorm's moving statistics (buffers, not parameters)."""
    out = []
    for v in model.variables:
        path = str(getattr(v, "path", v.name))
        leaf = path.rsplit("/", 1)[-1]
        if leaf in _NOT_PARAMETERS or "float" not in str(v.dtype):
            continue
        out.append((path, v))
    return out


def role(path: str, v: Any, norm_paths: set[str]) -> str:
    """``weight``, ``bias`` or ``norm`` from the variable path."""
    leaf = path.rsplit("/", 1)[-1]
    if path.rsplit("/", 1)[0] in norm_paths or leaf in ("gamma", "beta"):
        return "norm"
    if leaf == "bias" or leaf.endswith("_bias"):
        return "bias"
    if "kernel" in leaf or leaf == "embeddings":
        return "weight"
    return "weight" if len(v.shape) >= 2 else "bias"


def _norm_paths(model: Any) -> set[str]:
    from lossdoctor.keras.layers import layer_kind

    paths = set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if layer_kind(layer) == "norm":
            for v in layer.variables:
                paths.add(str(v.path).rsplit("/", 1)[0])
    return paths


def l2_coefficient(v: Any) -> float | None:
    """The L2 coefficient of a variable's regulariser (None without one)."""
    reg = getattr(v, "regularizer", None)
    if reg is None:
        return None
    cfg = reg.get_config() if hasattr(reg, "get_config") else {}
    return float(cfg.get("l2", 0.0) or 0.0)


def _t(a: Any) -> torch.Tensor:
    """A numpy array as a torch tensor, for the statistics shared with the PyTorch probe."""
    arr = np.asarray(a)
    if arr.dtype.kind == "f":
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if arr.dtype.kind == "b":
        return torch.from_numpy(np.ascontiguousarray(arr))
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.int64))


def call_model(model: Any, inputs: Any) -> Any:
    """Call the model as ``fit`` does."""
    return model(inputs, training=True)


def _scalar(x: Any) -> float:
    return float(np.asarray(to_numpy(x), dtype=np.float64).reshape(-1).sum())


def _log_record(out: Pending, index: int) -> LayerStats:
    """The log a probability loss applies to the output (its input is the model output)."""
    return LayerStats(index=index, name="loss:log", kind="log", op="log", phase="loss",
                      inputs=out.output, output=out.output, source_op=out.op,
                      source_index=out.index)


def probe(model: Any, inputs: Any, targets: Any, loss: KerasLoss, optimizer: Any = None,
          task: Task | None = None) -> Trace:
    """Measure one batch. The caller guarantees restoration (:func:`~lossdoctor.keras.state.untouched`).

    Raises:
        ModelError: the model raised.
        LossFnError: the loss raised and nothing explains it.
    """
    ad = adapter()
    rec = KerasRecorder(ad)
    named = parameters(model)
    trainable = [(n, v) for n, v in named if v.trainable]
    error: str | None = None
    calls: LibraryCalls | None = None
    loss_value: Any = None
    data: Any = None
    penalty: Any = None
    with warnings.catch_warnings(record=True) as caught, ad.recording(), \
            layer_hooks(model, rec):
        warnings.simplefilter("always")
        try:
            output = call_model(model, inputs)
        except Exception as e:
            raise ModelError(f"the model raised {type(e).__name__}: {e}") from e
        ad.watch(output)
        out_rec = rec.producer(output)
        if out_rec is not None:
            out_rec.is_output = True
        rec.phase = "loss"
        rec.enabled = False
        try:
            with library_calls(output) as calls:
                data = loss.fn(targets, output)
            reg = list(model.losses)
            penalty = sum(reg[1:], reg[0]) if reg else None
            loss_value = data + penalty if penalty is not None else data
        except Exception as e:  # noqa: BLE001 - the backend's complaint is evidence
            error = f"{type(e).__name__}: {e}"
    watched = [v for _, v in trainable] + [p.tensor for p in rec.pending] + [output]
    grads: list[np.ndarray | None] = [None] * len(watched)
    data_norm = penalty_norm = None
    if error is None:
        if int(np.asarray(to_numpy(loss_value)).size) != 1:
            raise LossFnError(f"the loss returned shape {tuple(np.shape(to_numpy(loss_value)))}, "
                              "not a scalar")
        grads = ad.gradients(loss_value, watched)
        if penalty is not None:
            dg = ad.gradients(data, [v for _, v in trainable])
            pg = ad.gradients(penalty, [v for _, v in trainable])
            data_norm = math.sqrt(sum(float((g ** 2).sum()) for g in dg if g is not None))
            penalty_norm = math.sqrt(sum(float((g ** 2).sum()) for g in pg if g is not None))
    n_var, n_rec = len(trainable), len(rec.pending)
    var_grads = grads[:n_var]
    layers = rec.layers(grads[n_var:n_var + n_rec])
    out_grad = grads[-1]

    # the prediction the loss reads: the logits under a softmax/sigmoid head for from_logits=False
    producer = out_rec.op if out_rec is not None else None
    kind, on_logits = loss.kind(producer)
    out_np = to_numpy(output)
    pred_np, pred_producer = out_np, producer
    if on_logits and out_rec is not None and out_rec.source_index is not None:
        head = rec.pending[out_rec.source_index]
        pred_np, pred_producer = to_numpy(head.tensor), head.op
        out_grad = grads[n_var + head.index]
    if kind == "nll" and out_rec is not None:
        layers = (*layers, _log_record(out_rec, len(layers)))
    prediction = _prediction_stats(_t(pred_np), pred_producer)
    ignore = getattr(loss.fn, "ignore_class", None)
    y_np = to_numpy(targets)
    target_stats = _target_stats(_t(y_np), ignore)

    value = _scalar(loss_value) if error is None else math.nan
    loss_stats = LossStats(
        value=value, kind=kind, reduction=loss.reduction,
        source="module" if loss.library else "expression", requires_grad=error is None,
        error=error,
        data_value=_scalar(data) if penalty is not None else None,
        penalty_value=_scalar(penalty) if penalty is not None else None,
        data_grad_norm=data_norm, penalty_grad_norm=penalty_norm,
        output_grad_rms=(float(np.sqrt(np.mean(out_grad ** 2))) if out_grad is not None
                         and out_grad.size else None),
        label_smoothing=loss.label_smoothing,
        ignore_index=int(ignore) if ignore is not None else None,
        library_value=_scalar(data) if error is None and loss.library else None,
        arguments_swapped=calls is not None and calls.swapped)

    norms = _norm_paths(model)
    coupled = {n: c for n, v in named if (c := l2_coefficient(v))}
    opt_stats = optimizer_stats(optimizer, named, coupled)
    grad_of = {n: g for (n, _), g in zip(trainable, var_grads, strict=True)}
    params = []
    for n, v in named:
        g = grad_of.get(n)
        w = to_numpy(v).astype(np.float64)
        grad_rms = float(np.sqrt(np.mean(g ** 2))) if g is not None and g.size else None
        params.append(ParamStats(
            name=n, role=role(n, v, norms), shape=tuple(int(s) for s in v.shape),
            rms=float(np.sqrt(np.mean(w ** 2))) if w.size else 0.0, grad_rms=grad_rms,
            grad_nonfinite=int((~np.isfinite(g)).sum()) if g is not None else 0,
            requires_grad=bool(v.trainable),
            weight_decay=_decay(optimizer, v),
            lr=opt_stats.groups[0]["lr"] if opt_stats is not None else None,
            in_loss_penalty=getattr(v, "regularizer", None) is not None))

    inferred, n_classes = infer_task(kind, tuple(pred_np.shape), target_stats, task)
    notes = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught
                                if not issubclass(w.category, DeprecationWarning)))
    return Trace(
        task=inferred, n_classes=n_classes, batch_size=int(out_np.shape[0]) if out_np.ndim else 1,
        layers=layers, params=tuple(params), loss=loss_stats, output=prediction,
        targets=target_stats, inputs=_inputs(inputs), optimizer=opt_stats,
        nonfinite_origin=_origin(layers, params, value), notes=notes)


def with_dropout_off(trace: Trace, model: Any, inputs: Any, targets: Any,
                     loss: KerasLoss) -> Trace:
    """``trace`` with ``loss.dropout_off_value``: the loss with every Dropout's rate set to 0
    for one more forward (BatchNorm stays in training mode, as in the measured pass).

    Inverted dropout multiplies each unit's second moment by 1/(1-p), so several dropout layers
    make training-mode logits larger than the network's own (see the PyTorch probe). The caller
    restores state (the extra forward moves BatchNorm statistics)."""
    from lossdoctor.keras.layers import leaf_layers

    if trace.loss.error is not None or not math.isfinite(trace.loss.value):
        return trace
    active = [layer for layer, _ in leaf_layers(model)
              if "Dropout" in type(layer).__name__ and float(getattr(layer, "rate", 0) or 0) > 0]
    if not active:
        return trace
    rates = [layer.__dict__.get("rate") for layer in active]
    try:
        for layer in active:
            object.__setattr__(layer, "rate", 0.0)
        out = call_model(model, inputs)
        value = loss.fn(targets, out)
        for r in model.losses:
            value = value + r
        off = _scalar(value)
    except Exception:  # noqa: BLE001 - the training-mode pass already reported what raised
        return trace
    finally:
        for layer, rate in zip(active, rates, strict=True):
            object.__setattr__(layer, "rate", rate)
    return replace(trace, loss=replace(trace.loss, dropout_off_value=off))


def _inputs(inputs: Any) -> Any:
    """Input statistics of a single array input (None for dicts and lists of inputs)."""
    if isinstance(inputs, (dict, list, tuple)):
        return None
    try:
        return _input_stats(_t(to_numpy(inputs)))
    except (TypeError, ValueError):
        return None


def _decay(optimizer: Any, v: Any) -> float:
    from lossdoctor.keras.optimizer import decay_of

    return decay_of(optimizer, v) if optimizer is not None else 0.0


def _origin(layers: tuple[LayerStats, ...], params: list[ParamStats], value: float) -> Any:
    """The first record whose output is non-finite (the forward is recorded in order)."""
    from lossdoctor.trace import NonfiniteOrigin

    for layer in layers:
        if layer.output.nonfinite:
            bad_in = layer.inputs is not None and layer.inputs.nonfinite
            return NonfiniteOrigin(
                where=layer.name, op=layer.op, phase=layer.phase,
                detail=("input already non-finite" if bad_in else
                        f"{layer.output.nonfinite} of {layer.output.numel} outputs non-finite"))
    if not math.isfinite(value):
        return NonfiniteOrigin(where="loss", op="loss", phase="loss",
                               detail="every layer output finite; the loss is not")
    bad = [p.name for p in params if p.grad_nonfinite]
    if bad:
        return NonfiniteOrigin(where=bad[-1], op="backward", phase="backward",
                               detail=f"forward values finite; gradients of {len(bad)} "
                                      "parameter(s) are not")
    return None

