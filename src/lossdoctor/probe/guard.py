"""The untouched-model guarantee: snapshot everything diagnosis could disturb, restore it.

Parameters, buffers (BatchNorm running statistics move in a train-mode forward), gradients,
``requires_grad`` flags, train/eval modes and the torch, numpy and Python RNG states (dropout
draws random numbers) are restored in ``finally``, also when the model or the loss raises.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn


class Snapshot:
    """Everything about a model and the global RNGs that a forward/backward can change."""

    def __init__(self, model: nn.Module) -> None:
        with torch.no_grad():
            self.params = [
                (p, p.detach().clone(), p.grad, None if p.grad is None else p.grad.detach().clone(),
                 p.requires_grad)
                for p in model.parameters()
            ]
            self.buffers = [
                (m, name, b, b.detach().clone())
                for m in model.modules()
                for name, b in m._buffers.items()
                if b is not None
            ]
        self.modes = [(m, m.training) for m in model.modules()]
        self.torch_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        self.numpy_rng = np.random.get_state()
        self.python_rng = random.getstate()

    def restore(self) -> None:
        """Put every recorded value back, keeping the original tensor objects."""
        with torch.no_grad():
            for p, value, grad, grad_value, requires_grad in self.params:
                if not torch.equal(p, value):
                    p.copy_(value)
                if p.grad is not grad:
                    p.grad = grad
                if grad is not None and grad_value is not None and not torch.equal(grad, grad_value):
                    grad.copy_(grad_value)
                if p.requires_grad != requires_grad:
                    p.requires_grad_(requires_grad)
            for m, name, buf, value in self.buffers:
                m._buffers[name] = buf
                if not torch.equal(buf, value):
                    buf.copy_(value)
        for m, training in self.modes:
            m.training = training
        torch.set_rng_state(self.torch_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        np.random.set_state(self.numpy_rng)
        random.setstate(self.python_rng)


@contextmanager
def untouched(model: nn.Module) -> Iterator[Snapshot]:
    """Run a block and leave ``model`` and the global RNGs exactly as they were."""
    snap = Snapshot(model)
    try:
        yield snap
    finally:
        snap.restore()
