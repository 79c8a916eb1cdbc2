"""``predict``: per-layer scale and the first loss from the architecture and its init alone."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from lossdoctor.errors import LossDoctorError
from lossdoctor.frameworks import is_keras, is_tf_module
from lossdoctor.probe.hooks import first_tensor
from lossdoctor.probe.kinds import fan_in
from lossdoctor.theory.propagate import Prediction, input_moments, propagate


def _classes(model: nn.Module) -> int | None:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return last[-1].out_features if last else None


def _is_chain(model: nn.Module) -> bool:
    """Leaf modules run one after another: every container is an ``nn.Sequential``."""
    return all(isinstance(m, nn.Sequential) for m in model.modules() if list(m.children()))


def _graph(model: nn.Module, inputs: Any, classes: int | None) -> Prediction:
    from lossdoctor.probe.hooks import all_tensors
    from lossdoctor.theory.graph import predict_graph

    tensors = all_tensors(inputs)
    if not tensors:
        raise LossDoctorError("inputs must hold a tensor batch")
    if any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in tensors):
        raise LossDoctorError("inputs hold NaN/Inf: the prediction needs finite values")
    return predict_graph(model, inputs, classes or _classes(model))


def _first_fan_in(model: nn.Module) -> tuple[str, int] | None:
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            return name, m.in_features
        if isinstance(m, nn.modules.conv._ConvNd) or fan_in(m) is not None:
            return None  # channels, not features: the theory checks those itself
    return None


def _stats(input_stats: Any) -> tuple[int, float, float]:
    if not isinstance(input_stats, (tuple, list)) or len(input_stats) != 3:
        raise LossDoctorError(f"input_stats must be (dim, mean, second_moment), got "
                              f"{input_stats!r}")
    dim, mean, sq = input_stats
    if isinstance(dim, bool) or not isinstance(dim, (int, float)) or dim != int(dim) or dim < 1:
        raise LossDoctorError(f"input_stats: dim must be a whole number >= 1, got {dim!r}")
    try:
        mean, sq = float(mean), float(sq)
    except (TypeError, ValueError):
        raise LossDoctorError(f"input_stats: mean and second moment must be numbers, got "
                              f"{mean!r}, {sq!r}") from None
    if not (math.isfinite(mean) and math.isfinite(sq)):
        raise LossDoctorError(f"input_stats: mean and second moment must be finite, got "
                              f"{mean}, {sq}")
    if sq < mean * mean:
        raise LossDoctorError(f"input_stats: need second moment >= mean^2, got {input_stats}")
    return int(dim), mean, sq


def predict(
    model: nn.Module,
    inputs: Any = None,
    *,
    input_stats: tuple[int, float, float] | None = None,
    classes: int | None = None,
    batch_size: int | None = None,
) -> Prediction:
    """Predict how the signal's scale travels through ``model`` and what the first loss will be.

    Give either a batch (``inputs``) or ``input_stats = (dim, mean, second_moment)`` of the
    input features (features assumed i.i.d.). The model is only read.

    A chain of layers (every container an ``nn.Sequential``) is propagated layer by layer from
    the weights, without running it. Any other model (residual blocks, transformers, a
    functional ``forward``) needs a batch: it runs once in its own dtype while every torch call
    maps the moments of its inputs to those of its output (:mod:`lossdoctor.theory.graph`:
    residual sums, Linear/Conv1D/conv, BatchNorm/LayerNorm/RMSNorm, attention, GELU/SiLU/
    SwiGLU); only calls no rule covers are measured, and named in ``notes``.

    Args:
        model: any module; a chain of layers also works from ``input_stats``.
        inputs: a representative input batch.
        input_stats: (features, mean, second moment) when no batch is at hand.
        classes: classes of a softmax cross-entropy on the output (default: the last
            ``nn.Linear``'s outputs).
        batch_size: batch size the loss band is for (default: the batch's, else 128).

    Returns:
        A :class:`~lossdoctor.theory.propagate.Prediction`.

    Raises:
        LossDoctorError: neither or both of ``inputs`` and ``input_stats``, or bad values.
    """
    if is_keras(model) or is_tf_module(model):
        raise LossDoctorError("predict follows PyTorch modules only; for a Keras or TensorFlow "
                              "model, ld.diagnose(model, x, y) measures the same per-layer numbers")
    if not isinstance(model, nn.Module):
        raise LossDoctorError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if (inputs is None) == (input_stats is None):
        raise LossDoctorError("give either inputs (a batch) or input_stats=(dim, mean, second_moment)")
    from lossdoctor.diagnose import preflight

    preflight(model, inputs, None, None)
    if inputs is not None and not _is_chain(model):
        return _graph(model, inputs, classes)
    if inputs is not None:
        x = first_tensor(inputs)
        if x is None or not x.is_floating_point() or x.dim() < 2:
            raise LossDoctorError("inputs must hold a float tensor batch of shape (B, ...)")
        if not bool(torch.isfinite(x).all()):
            raise LossDoctorError("inputs hold NaN/Inf: the prediction needs finite values")
        mu, var = input_moments(x)
        batch = batch_size or int(x.shape[0])
    else:
        dim, mean, sq = _stats(input_stats)
        first = _first_fan_in(model)
        if first is not None and first[1] != dim:
            raise LossDoctorError(f"input_stats: dim {dim} does not match the model's first "
                                  f"layer {first[0] or 'model'} (in_features {first[1]})")
        mu = torch.full((dim,), mean, dtype=torch.float64)
        var = torch.full((dim,), sq - mean * mean, dtype=torch.float64)
        batch = batch_size or 128
    with torch.no_grad():
        return propagate(model, mu, var, classes or _classes(model), batch, inputs)
