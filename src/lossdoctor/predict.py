"""``predict``: per-layer scale and the first loss from the architecture and its init alone."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossdoctor.errors import LossDoctorError
from lossdoctor.probe.hooks import first_tensor
from lossdoctor.theory.propagate import Prediction, input_moments, propagate


def _classes(model: nn.Module) -> int | None:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return last[-1].out_features if last else None


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

    Args:
        model: a chain of layers (``nn.Sequential`` style).
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
    if not isinstance(model, nn.Module):
        raise LossDoctorError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if (inputs is None) == (input_stats is None):
        raise LossDoctorError("give either inputs (a batch) or input_stats=(dim, mean, second_moment)")
    if inputs is not None:
        x = first_tensor(inputs)
        if x is None or not x.is_floating_point() or x.dim() < 2:
            raise LossDoctorError("inputs must hold a float tensor batch of shape (B, ...)")
        mu, var = input_moments(x)
        batch = batch_size or int(x.shape[0])
    else:
        assert input_stats is not None
        try:
            dim, mean, sq = int(input_stats[0]), float(input_stats[1]), float(input_stats[2])
        except (TypeError, ValueError, IndexError):
            raise LossDoctorError("input_stats must be (dim, mean, second_moment)") from None
        if dim < 1 or sq < mean * mean:
            raise LossDoctorError(f"input_stats: need dim >= 1 and second moment >= mean^2, got "
                                  f"{input_stats}")
        mu = torch.full((dim,), mean, dtype=torch.float64)
        var = torch.full((dim,), sq - mean * mean, dtype=torch.float64)
        batch = batch_size or 128
    with torch.no_grad():
        return propagate(model, mu, var, classes or _classes(model), batch, inputs)
