"""Data repairs: standardise the inputs."""

from __future__ import annotations

import torch

from lossdoctor.case import Case
from lossdoctor.errors import LossDoctorError


def standardize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-feature (dim 1) mean and std of a batch, and the standardised batch."""
    dims = [d for d in range(x.dim()) if d != 1]
    mean = x.mean(dims, keepdim=True)
    std = x.std(dims, keepdim=True).clamp_min(1e-8)
    return (x - mean) / std, mean, std


def standardize_inputs(case: Case) -> Case:
    """Replace a float tensor input by its per-feature standardised version."""
    x = case.inputs
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise LossDoctorError("only a single float tensor input can be standardised mechanically")
    return case.with_(inputs=standardize(x)[0])
