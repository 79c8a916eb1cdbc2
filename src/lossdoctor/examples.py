"""Built-in examples: the stories of DESIGN.md as ready-made diagnosis inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lossdoctor.errors import LossDoctorError


def digits(batch_size: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of scikit-learn's 8x8 digits, pixels scaled to [-0.5, 0.5] like story 1's MNIST."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the install
        raise LossDoctorError(
            "this example needs scikit-learn for its digits data: pip install 'lossdoctor[examples]'"
        ) from e
    data = load_digits()
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data.target), generator=g)[:batch_size]
    x = torch.tensor(data.data, dtype=torch.float32)[idx] / 16.0 - 0.5
    y = torch.tensor(data.target, dtype=torch.long)[idx]
    return x, y


def trunc_normal_tf(t: torch.Tensor, std: float, g: torch.Generator) -> torch.Tensor:
    """TensorFlow's ``truncated_normal``: N(0, std^2), redrawn beyond 2 standard deviations."""
    with torch.no_grad():
        t.copy_(torch.randn(t.shape, generator=g) * std)
        while True:
            bad = t.abs() > 2 * std
            if not bool(bad.any()):
                return t
            t[bad] = torch.randn(int(bad.sum()), generator=g) * std


def mlp(widths: list[int], act: type[nn.Module], dropout: float) -> nn.Sequential:
    """Linear layers of the given widths with an activation (and dropout) between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(act())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def he_init(model: nn.Module, g: torch.Generator) -> nn.Module:
    """He init (std sqrt(2 / fan_in)) for every ``nn.Linear``, zero biases, drawn from ``g``."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=g)
                               * (2.0 / m.in_features) ** 0.5)
                m.bias.zero_()
    return model


def deep_relu(seed: int = 0) -> dict[str, Any]:
    """Story 1: 64 -> [750]*6 -> 10, ReLU, trunc-normal(0.5) weights and biases, dropout 0.5.

    The global torch seed is set too, so the dropout masks (and the report) are reproducible.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = mlp([64] + [750] * 6 + [10], nn.ReLU, 0.5)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_tf(m.weight, 0.5, g)
            trunc_normal_tf(m.bias, 0.5, g)
    x, y = digits(seed=seed)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.5)}


def healthy_mlp(seed: int = 0) -> dict[str, Any]:
    """The story-1 network with He init and zero biases (no dropout): the control."""
    model = he_init(mlp([64] + [750] * 6 + [10], nn.ReLU, 0.0),
                    torch.Generator().manual_seed(seed))
    x, y = digits(seed=seed)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)}


def saturated_neuron(seed: int = 0) -> dict[str, Any]:
    """Story 2: one sigmoid neuron at (w, b) = (2, 2), x = 1, target 0, squared error."""
    neuron = nn.Linear(1, 1)
    with torch.no_grad():
        neuron.weight.fill_(2.0)
        neuron.bias.fill_(2.0)
    model = nn.Sequential(neuron, nn.Sigmoid())
    x = torch.ones(1, 1)
    y = torch.zeros(1, 1)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.MSELoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.15)}


def _half_cross_entropy(a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -torch.mean(y * torch.log(a))


def half_cross_entropy(seed: int = 0) -> dict[str, Any]:
    """Story 2's hand-written ``-mean(y * log(a))`` with y = 0: the loss is constantly 0."""
    ex = saturated_neuron(seed)
    ex["loss_fn"] = _half_cross_entropy
    return ex


EXAMPLES: dict[str, Callable[..., dict[str, Any]]] = {
    "deep-relu": deep_relu,
    "healthy-mlp": healthy_mlp,
    "saturated-neuron": saturated_neuron,
    "half-cross-entropy": half_cross_entropy,
}
