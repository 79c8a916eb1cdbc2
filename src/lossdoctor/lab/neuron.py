"""Story 2: one sigmoid neuron, x = 1, target 0, plain gradient descent.

The quadratic cost is C = (a - y)^2 / 2 (as in Nielsen, "Neural Networks and Deep Learning",
ch. 3), so dC/dw = (a - y) s'(z) x; cross-entropy C = -[y ln a + (1 - y) ln(1 - a)] gives
dC/dw = (a - y) x. Every run uses torch autograd on a real ``nn.Linear(1, 1)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": lambda a, y: 0.5 * F.mse_loss(a, y),
    "ce": lambda a, y: F.binary_cross_entropy(a, y),
    "half-ce": lambda a, y: -torch.mean(y * torch.log(a)),
}
CLASSIC: tuple[tuple[str, float, float], ...] = (
    ("mse", 0.6, 0.9), ("mse", 2.0, 2.0), ("ce", 0.6, 0.9), ("ce", 2.0, 2.0),
)
SHOWN_STEPS = (0, 50, 100, 150, 300)


@dataclass(frozen=True)
class NeuronRun:
    """One run: the output a after every step and the first gradient.

    Attributes:
        loss: ``mse``, ``ce`` or ``half-ce``.
        w: starting weight.
        b: starting bias.
        outputs: a at step 0..steps.
        losses: cost at step 0..steps.
        first_grad: (dC/dw, dC/db) at step 0.
    """

    loss: str
    w: float
    b: float
    outputs: tuple[float, ...]
    losses: tuple[float, ...]
    first_grad: tuple[float, float]

    @property
    def label(self) -> str:
        """Legend label."""
        return f"{self.loss} from (w, b) = ({self.w:g}, {self.b:g})"


def make_neuron(w: float, b: float) -> nn.Sequential:
    """``sigmoid(w x + b)`` as a module, with the given weight and bias."""
    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(w)
        lin.bias.fill_(b)
    return nn.Sequential(lin, nn.Sigmoid())


def run(loss: str, w: float, b: float, lr: float = 0.15, steps: int = 300) -> NeuronRun:
    """Train one neuron on x = 1, y = 0 with plain gradient descent."""
    model = make_neuron(w, b)
    cost = LOSSES[loss]
    x, y = torch.ones(1, 1), torch.zeros(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    outputs, losses = [], []
    first: tuple[float, float] = (0.0, 0.0)
    for step in range(steps + 1):
        a = model(x)
        c = cost(a, y)
        outputs.append(float(a.detach()))
        losses.append(float(c.detach()))
        if step == steps:
            break
        opt.zero_grad()
        c.backward()
        if step == 0:
            lin = model[0]
            first = (float(lin.weight.grad), float(lin.bias.grad))  # type: ignore[arg-type]
        opt.step()
    return NeuronRun(loss, w, b, tuple(outputs), tuple(losses), first)


def case(loss: str, w: float, b: float, lr: float = 0.15) -> dict[str, object]:
    """The diagnosis input of one neuron run."""
    model = make_neuron(w, b)
    return {"model": model, "inputs": torch.ones(1, 1), "targets": torch.zeros(1, 1),
            "loss_fn": LOSSES[loss], "optimizer": torch.optim.SGD(model.parameters(), lr=lr)}
