"""Run one batch through the model and the loss under the probe and return a :class:`Trace`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossdoctor.errors import LossFnError, ModelError
from lossdoctor.probe import nonfinite
from lossdoctor.probe.guard import Snapshot
from lossdoctor.probe.hooks import all_tensors, first_tensor, module_hooks, output_tensor
from lossdoctor.probe.kinds import is_norm
from lossdoctor.probe.ops import LossCall, LossTaint, OpsMode, grad_fn_producer
from lossdoctor.probe.readback import reduce, rms
from lossdoctor.probe.recorder import Recorder, stats_from
from lossdoctor.probe.tokens import token_labels
from lossdoctor.task import infer_task
from lossdoctor.trace import (
    InputStats,
    LossStats,
    NonfiniteOrigin,
    OptimizerStats,
    OutputStats,
    ParamStats,
    TargetStats,
    Task,
    TensorStats,
    Trace,
)
from lossdoctor.vocab import LOSSES

ADAM_FAMILY = frozenset({"Adam", "AdamW", "Adamax", "NAdam", "RAdam", "SparseAdam", "Adafactor"})


def call_model(model: nn.Module, inputs: Any) -> Any:
    """Call the model the way the inputs are packed: tensor, tuple/list of args, or kwargs."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def tensor_stats(t: torch.Tensor) -> TensorStats:
    """Statistics of one tensor, read back at once (used for the few whole-batch tensors)."""
    values = reduce(t)
    return stats_from(tuple(t.shape),
                      values if isinstance(values, list) else values.cpu().tolist())


def _target_stats(t: torch.Tensor, ignore_index: int | None) -> TargetStats:
    with torch.no_grad():
        st = tensor_stats(t)
        is_float = t.is_floating_point()
        dtype = "bool" if t.dtype == torch.bool else ("float" if is_float else "int")
        x = t.detach().double()
        finite = bool(torch.isfinite(x).all()) if is_float else True
        integer_valued = bool((x == x.round()).all()) if finite else False
        binary = bool(((x == 0) | (x == 1)).all())
        rows = x.dim() >= 2 and x.shape[1] > 1
        onehot = rows and binary and bool((x.sum(1) == 1).all())
        prob = (
            rows and finite and st.min >= 0 and st.max <= 1
            and bool(((x.sum(1) - 1).abs() <= 1e-3).all())
        )
        counts: dict[int, int] = {}
        if integer_valued and x.numel() and (not is_float or not rows):
            values, n = torch.unique(t.detach().reshape(-1), return_counts=True)
            if values.numel() <= 100_000:
                counts = {
                    int(v): int(c)
                    for v, c in zip(values.tolist(), n.tolist(), strict=True)
                    if ignore_index is None or int(v) != ignore_index
                }
        return TargetStats(
            stats=st, dtype=dtype, integer_valued=integer_valued, binary=binary,
            onehot_rows=onehot, prob_rows=prob, class_counts=counts,
            var=st.std**2, mean_sq=st.rms**2,
        )


def _prediction_stats(t: torch.Tensor, producer: str | None) -> OutputStats:
    with torch.no_grad():
        st = tensor_stats(t)
        unit = st.nonfinite == 0 and st.numel > 0 and st.min >= 0 and st.max <= 1
        rows = (
            unit and t.dim() >= 2 and t.shape[1] > 1
            and bool(((t.detach().double().sum(1) - 1).abs() <= 1e-3).all())
        )
        return OutputStats(stats=st, producer=producer, in_unit_interval=unit, rows_sum_to_one=rows)


def _input_stats(inputs: Any) -> InputStats | None:
    x = first_tensor(inputs)
    if x is None or not x.is_floating_point() or x.numel() == 0:
        return None
    with torch.no_grad():
        st = tensor_stats(x)
        if x.dim() >= 2 and x.shape[0] > 1:
            per = x.detach().double().movedim(1, 0).reshape(x.shape[1], -1).std(1)
            per = per[torch.isfinite(per)]
            nz = per[per > 0]
            lo = float(nz.min()) if nz.numel() else 0.0
            hi = float(per.max()) if per.numel() else 0.0
        else:
            lo = hi = st.std
        return InputStats(stats=st, feature_std_min=lo, feature_std_max=hi,
                          features=int(x.shape[1]) if x.dim() >= 2 else 1)


def _roles(model: nn.Module) -> dict[str, str]:
    roles: dict[str, str] = {}
    for mname, m in model.named_modules():
        for pname, p in m.named_parameters(recurse=False):
            full = f"{mname}.{pname}" if mname else pname
            if is_norm(m):
                roles[full] = "norm"
            elif p.dim() >= 2:
                roles[full] = "weight"
            else:
                roles[full] = "bias"
    return roles


def _optimizer_stats(
    optimizer: torch.optim.Optimizer | None, names: dict[int, str]
) -> tuple[OptimizerStats | None, dict[str, tuple[float, float]]]:
    if optimizer is None:
        return None, {}
    name = type(optimizer).__name__
    per_param: dict[str, tuple[float, float]] = {}
    groups = []
    decoupled = name == "AdamW"
    for g in optimizer.param_groups:
        wd = float(g.get("weight_decay", 0.0) or 0.0)
        lr = float(g["lr"]) if isinstance(g.get("lr"), (int, float)) else float(g.get("lr", 0.0))
        pnames = [names.get(id(p), "<not in model>") for p in g["params"]]
        for pn in pnames:
            per_param[pn] = (lr, wd)
        decoupled = decoupled or bool(g.get("decoupled_weight_decay", False))
        groups.append({"lr": lr, "weight_decay": wd, "params": pnames})
    return (
        OptimizerStats(name=name, adam_family=name in ADAM_FAMILY, decoupled=decoupled,
                       groups=tuple(groups),
                       maximize=any(bool(g.get("maximize", False)) for g in optimizer.param_groups)),
        per_param,
    )


def _final_op(loss: torch.Tensor) -> str | None:
    node = loss.grad_fn
    while node is not None and type(node).__name__.startswith("Neg") and node.next_functions:
        node = node.next_functions[0][0]
    return type(node).__name__ if node is not None else None


def _loss_source(loss_fn: Any) -> str:
    if isinstance(loss_fn, nn.Module) and type(loss_fn).__module__.startswith("torch.nn"):
        return "module"
    if any(getattr(F, n, None) is loss_fn for n in LOSSES):
        return "function"
    return "expression"


def _grads(
    loss: torch.Tensor, params: Sequence[torch.Tensor], retain: bool
) -> list[torch.Tensor | None]:
    grads = torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True)
    return [g.to_dense() if g is not None and g.is_sparse else g for g in grads]


def _norm(grads: list[torch.Tensor | None]) -> float:
    total = sum(float(g.square().sum(dtype=torch.float64)) for g in grads if g is not None)
    return math.sqrt(total)


@dataclass
class _Forward:
    """What one forward pass and ``loss_fn`` call left behind."""

    output: Any
    out: torch.Tensor | None
    loss: Any
    error: str | None
    output_grad: list[float]
    caught: list[warnings.WarningMessage]


@dataclass
class _Backward:
    """The loss value, its graph and the gradients it gives."""

    value: float = math.nan
    requires_grad: bool = False
    final_op: str | None = None
    grads: list[torch.Tensor | None] = field(default_factory=list)
    data_value: float | None = None
    penalty_value: float | None = None
    data_norm: float | None = None
    penalty_norm: float | None = None


def _forward(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any, rec: Recorder,
             taint: LossTaint, mode: OpsMode) -> _Forward:
    """Run the model and the loss under the hooks and the op-recording mode."""
    loss: Any = None
    error: str | None = None
    output_grad: list[float] = []
    with (
        torch.enable_grad(),
        module_hooks(model, rec),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        with mode:
            try:
                output = call_model(model, inputs)
            except Exception as e:
                if mode.raised_in_model_loss() is None:
                    raise ModelError(f"the model raised {type(e).__name__}: {e}") from e
                # the model's own loss (labels in its inputs) refused the labels: evidence
                return _Forward(None, None, None, f"{type(e).__name__}: {e}", [], list(caught))
            out = output_tensor(output)
            if out is not None:
                hit = rec.producer(out)
                if hit is not None:
                    hit.is_output = True
                taint.output_ids.update(id(t) for t in all_tensors(output))
            rec.phase = "loss"
            try:
                loss = loss_fn(output, targets)
            except Exception as e:  # noqa: BLE001 - torch's own complaint is evidence
                error = f"{type(e).__name__}: {e}"
        if out is not None and out.requires_grad:
            out.register_hook(lambda g: output_grad.append(float(rms(g))))
    return _Forward(output, out, loss, error, output_grad, list(caught))


def _check_scalar(loss: Any) -> None:
    """Raises LossFnError unless ``loss`` is a real scalar tensor."""
    if not isinstance(loss, torch.Tensor):
        raise LossFnError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}")
    if loss.is_complex():
        raise LossFnError(f"loss_fn must return a real scalar, got {loss.dtype}")
    if loss.numel() != 1:
        raise LossFnError(
            f"loss_fn must return a scalar, got a tensor of shape {tuple(loss.shape)} "
            "(use reduction='mean')"
        )


def _backward(loss: torch.Tensor, trainable: list[nn.Parameter], taint: LossTaint) -> _Backward:
    """Gradients of the loss (and of its data and penalty terms when they were split)."""
    bw = _Backward(grads=[None] * len(trainable))
    bw.value = float(loss.detach().double().reshape(()))
    bw.requires_grad = bool(loss.requires_grad and loss.grad_fn is not None)
    bw.final_op = _final_op(loss)
    if not (bw.requires_grad and trainable):
        return bw
    split = taint.split
    if split is not None:
        bw.data_value = float(split.data.detach().double().sum())
        bw.penalty_value = split.sign * float(split.penalty.detach().double().sum())
        if split.data.requires_grad:
            bw.data_norm = _norm(_grads(split.data.sum(), trainable, True))
        if split.penalty.requires_grad:
            bw.penalty_norm = _norm(_grads(split.penalty.sum(), trainable, True))
    bw.grads = _grads(loss.reshape(()), trainable, False)
    return bw


def _loss_stats(lc: LossCall | None, fw: _Forward, bw: _Backward, source: str) -> LossStats:
    reduction = lc.reduction if lc is not None else None
    if reduction is None and bw.final_op is not None:
        if bw.final_op.startswith("SumBackward"):
            reduction = "sum"
        elif bw.final_op.startswith("MeanBackward"):
            reduction = "mean"
    return LossStats(
        value=bw.value, kind=lc.kind if lc is not None else "custom", reduction=reduction,
        source=source, requires_grad=bw.requires_grad, error=fw.error,
        data_value=bw.data_value, penalty_value=bw.penalty_value, data_grad_norm=bw.data_norm,
        penalty_grad_norm=bw.penalty_norm,
        output_grad_rms=fw.output_grad[0] if fw.output_grad else None, final_op=bw.final_op,
        label_smoothing=lc.label_smoothing if lc is not None else 0.0,
        ignore_index=lc.ignore_index if lc is not None else None,
        elementwise_mean=_elementwise_mean(lc),
        library_value=_library_value(lc),
    )


def _library_value(lc: LossCall | None) -> float | None:
    r = lc.result if lc is not None and lc.reduction != "none" else None
    if r is None or r.numel() != 1 or not r.is_floating_point():
        return None
    return float(r.detach().double().reshape(()))


def _elementwise_mean(lc: LossCall | None) -> float | None:
    r = lc.result if lc is not None and lc.reduction == "none" else None
    if r is None or r.numel() == 0 or not r.is_floating_point():
        return None
    with torch.no_grad():
        return float(r.detach().double().mean())


def _param_stats(model: nn.Module, named: list[tuple[str, nn.Parameter]],
                 trainable: list[nn.Parameter], grads: list[torch.Tensor | None],
                 per_param: Mapping[str, tuple[float | None, float]],
                 taint: LossTaint) -> list[ParamStats]:
    roles = _roles(model)
    grad_of = {id(p): g for p, g in zip(trainable, grads, strict=True)}
    params = []
    with torch.no_grad():
        for n, p in named:
            g = grad_of.get(id(p))
            lr, wd = per_param.get(n, (None, 0.0))
            grad_rms = rms(g) if g is not None else None
            params.append(ParamStats(
                name=n, role=roles.get(n, "weight"), shape=tuple(p.shape),
                rms=rms(p), grad_rms=grad_rms,
                grad_nonfinite=0 if g is None or grad_rms is None or math.isfinite(grad_rms)
                else int((~torch.isfinite(g)).sum()),
                requires_grad=p.requires_grad, weight_decay=wd, lr=lr,
                in_loss_penalty=n in taint.params_read,
            ))
    return params


_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
            nn.FeatureAlphaDropout)


def with_dropout_off(trace: Trace, model: nn.Module, inputs: Any, targets: Any,
                     loss_fn: Any) -> Trace:
    """``trace`` with ``loss.dropout_off_value`` measured (one extra forward, no gradients).

    Inverted dropout keeps each unit with probability 1 - p and scales it by 1 / (1 - p): the
    mean is kept, the second moment grows by 1 / (1 - p) per dropout layer, so a training-mode
    forward through several dropout layers has larger logits than the network itself. Measured
    on demand (when the first loss looks high), so a model with dropout pays nothing otherwise.
    The caller restores state (BatchNorm statistics move in the extra forward)."""
    if trace.loss.error is not None or not math.isfinite(trace.loss.value):
        return trace
    off = _dropout_off_value(model, inputs, targets, loss_fn)
    return trace if off is None else replace(trace, loss=replace(trace.loss, dropout_off_value=off))


def _dropout_off_value(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any) -> float | None:
    """The loss with every training-mode dropout module switched off; None without any."""
    active = [m for m in model.modules() if isinstance(m, _DROPOUT) and m.training and m.p > 0]
    if not active:
        return None
    try:
        for m in active:
            m.training = False
        with torch.no_grad():
            value = loss_fn(call_model(model, inputs), targets)
        return float(value.detach().double().reshape(())) \
            if isinstance(value, torch.Tensor) and value.numel() == 1 else None
    except Exception:  # noqa: BLE001 - the training-mode pass already reported what raised
        return None
    finally:
        for m in active:
            m.training = True


def _origin(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any, rng: Snapshot,
            params: list[ParamStats]) -> NonfiniteOrigin | None:
    """Replay the batch with the same RNG state to name the first op that made a NaN/Inf."""
    rng.restore()
    origin = nonfinite.locate(
        model, lambda: call_model(model, inputs), lambda o: loss_fn(o, targets), inputs, targets,
    )
    if origin is None:
        bad = [p.name for p in params if p.grad_nonfinite]
        if bad:
            origin = NonfiniteOrigin(
                where=bad[-1], op="backward", phase="backward",
                detail=f"forward values finite; gradients of {len(bad)} parameter(s) are not",
            )
    return origin


def probe(
    model: nn.Module,
    inputs: Any,
    targets: Any,
    loss_fn: Any,
    optimizer: torch.optim.Optimizer | None = None,
    task: Task | None = None,
) -> Trace:
    """Measure one batch. The caller guarantees state restoration (see :mod:`guard`).

    Steps: forward and loss under hooks, gradients, then the records of the prediction, the
    targets, the loss, the parameters and (when something went non-finite) its origin.

    Raises:
        ModelError: the model raised.
        LossFnError: ``loss_fn`` returned something other than a scalar tensor.
    """
    rng = Snapshot(model)
    named = list(model.named_parameters())
    names = {id(p): n for n, p in named}
    rec = Recorder()
    taint = LossTaint(param_ids=dict(names))
    mode = OpsMode(rec, taint)
    fw = _forward(model, inputs, targets, loss_fn, rec, taint, mode)
    trainable = [p for _, p in named if p.requires_grad]
    bw = _Backward(grads=[None] * len(trainable))
    if fw.error is None:
        _check_scalar(fw.loss)
        bw = _backward(fw.loss, trainable, taint)

    layers = rec.layers()
    lc: LossCall | None = mode.loss_call
    source = _loss_source(loss_fn)
    if lc is None:
        lc = mode.raised_in_model_loss() if fw.error else mode.model_loss(fw.loss, fw.output)
        source = "model" if lc is not None else source
    out = fw.out
    pred_t = lc.prediction if lc is not None else out
    producer = None
    if lc is not None:
        producer = lc.producer
    elif out is not None:
        hit = rec.producer(out)
        producer = hit.op if hit is not None else grad_fn_producer(out)
    prediction = _prediction_stats(pred_t, producer) if pred_t is not None else None
    target_t = lc.target if lc is not None and isinstance(lc.target, torch.Tensor) else (
        targets if isinstance(targets, torch.Tensor) else first_tensor(targets))
    ignore = lc.ignore_index if lc is not None else None
    target_stats = _target_stats(target_t, ignore) if target_t is not None else None
    loss_stats = _loss_stats(lc, fw, bw, source)

    opt_stats, per_param = _optimizer_stats(optimizer, names)
    params = _param_stats(model, named, trainable, bw.grads, per_param, taint)
    taint.tags.clear()

    shape = tuple(pred_t.shape) if pred_t is not None else ()
    inferred, n_classes = infer_task(loss_stats.kind, shape, target_stats, task)
    batch = int(out.shape[0]) if out is not None and out.dim() >= 1 else 1

    saw_nonfinite = (
        not math.isfinite(bw.value) and fw.error is None
        or any(layer.output.nonfinite or layer.grad_nonfinite for layer in layers)
        or any(p.grad_nonfinite for p in params)
        or (prediction is not None and prediction.stats.nonfinite > 0)
    )
    # masked NaN/Inf (loss and every gradient finite) are named by the layers that held them:
    # the replay that finds the first op is only paid when the loss or a gradient is poisoned
    masked = (math.isfinite(bw.value) and not any(p.grad_nonfinite for p in params)
              and not any(layer.grad_nonfinite for layer in layers) and fw.error is None)
    origin = (_origin(model, inputs, targets, loss_fn, rng, params)
              if saw_nonfinite and not masked else None)
    return Trace(
        task=inferred, n_classes=n_classes, batch_size=batch, layers=layers,
        params=tuple(params), loss=loss_stats, output=prediction, targets=target_stats,
        inputs=_input_stats(inputs), optimizer=opt_stats, nonfinite_origin=origin,
        notes=tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in fw.caught)),
        tokens=token_labels(inputs, targets, lc),
    )

