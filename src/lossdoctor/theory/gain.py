"""The theory's view attached to a measured trace: predicted gain per layer and first loss."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from lossdoctor.probe.hooks import first_tensor
from lossdoctor.theory.propagate import input_moments, propagate
from lossdoctor.trace import Trace


def predicted_gain(rms: list[float]) -> float | None:
    """Geometric-mean factor between consecutive hidden linear layers (the head excluded)."""
    hidden = [r for r in rms[:-1] if r > 0 and math.isfinite(r)]
    if len(hidden) < 2:
        return None
    return float((hidden[-1] / hidden[0]) ** (1 / (len(hidden) - 1)))


def with_prediction(trace: Trace, model: nn.Module, inputs: Any) -> Trace:
    """The trace with the mean-field prediction from the batch's input moments, when it applies.

    Only the weights are read (no forward pass); a model the theory cannot follow gets none.
    """
    x = first_tensor(inputs)
    if x is None or not x.is_floating_point() or x.dim() < 2:
        return trace
    try:
        with torch.no_grad():
            mu, var = input_moments(x)
            pred = propagate(model, mu, var, trace.n_classes if trace.task == "multiclass"
                             else None, trace.batch_size, draws=0)
    except Exception:  # noqa: BLE001 - the theory is an extra; measurement stands without it
        return trace
    if pred.notes or not pred.layers:
        return trace
    rms = [p.rms for p in pred.layers if p.op in ("Linear", "Conv1d", "Conv2d", "Conv3d")]
    loss = None
    if trace.task == "multiclass" and trace.n_classes and pred.layers:
        from lossdoctor.checks.init_loss import expected_ce

        last = pred.layers[-1]
        # over the init's draws every logit is N(0, q): E[CE] needs only q and K
        loss = expected_ce(trace.n_classes, round(math.sqrt(last.q), 6)) if last.q == last.q \
            else None
    return replace(trace, predicted_gain=predicted_gain(rms), predicted_initial_loss=loss)
