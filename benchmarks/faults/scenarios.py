"""Scenarios for the tests and the fault benchmark: healthy controls and faults.

Each entry builds a fresh ``dict(model, inputs, targets, loss_fn[, optimizer, task])`` from a
fixed seed, so tests can call it as often as they like.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Case = dict[str, Any]


def _seed(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def blobs(n: int = 128, d: int = 32, k: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised Gaussian blobs: unit-scale features, balanced integer labels."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g) * 1.5
    y = torch.arange(n) % k
    x = centers[y] + torch.randn(n, d, generator=g)
    x = (x - x.mean(0)) / x.std(0)
    return x, y


def relu_mlp(depth: int, width: int = 256, d: int = 32, k: int = 10, init: str = "default",
             act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    n_in = d
    for _ in range(depth):
        lin = nn.Linear(n_in, width)
        if init == "he":
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            nn.init.zeros_(lin.bias)
        elif init == "xavier-tanh":
            nn.init.xavier_normal_(lin.weight, gain=nn.init.calculate_gain("tanh"))
            nn.init.zeros_(lin.bias)
        layers += [lin, act()]
        n_in = width
    layers.append(nn.Linear(n_in, k))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- healthy controls


def default_mlp(depth: int) -> Callable[[], Case]:
    def make() -> Case:
        _seed(depth)
        x, y = blobs()
        model = relu_mlp(depth)
        return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
                "optimizer": torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)}
    return make


def he_mlp(depth: int) -> Callable[[], Case]:
    def make() -> Case:
        _seed(100 + depth)
        x, y = blobs()
        model = relu_mlp(depth, init="he")
        return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
                "optimizer": torch.optim.SGD(model.parameters(), lr=0.01)}
    return make


def xavier_tanh() -> Case:
    _seed(1)
    x, y = blobs()
    model = relu_mlp(8, init="xavier-tanh", act=nn.Tanh)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": F.cross_entropy}


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.b1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.b2 = nn.BatchNorm2d(32)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.relu(self.b2(self.c2(x)))
        return self.head(x.mean((2, 3)))


def cnn_bn() -> Case:
    _seed(2)
    x = torch.randn(64, 1, 16, 16)
    y = torch.randint(0, 10, (64,))
    model = SmallCNN()
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)}


class PreNormResidual(nn.Module):
    def __init__(self, d: int = 64, depth: int = 8, k: int = 10) -> None:
        super().__init__()
        self.inp = nn.Linear(32, d)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(depth))
        self.ups = nn.ModuleList(nn.Linear(d, 4 * d) for _ in range(depth))
        self.downs = nn.ModuleList(nn.Linear(4 * d, d) for _ in range(depth))
        for down in self.downs:
            nn.init.zeros_(down.weight)
            nn.init.zeros_(down.bias)
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for norm, up, down in zip(self.norms, self.ups, self.downs, strict=True):
            h = h + down(F.gelu(up(norm(h))))
        return self.head(self.out_norm(h))


def residual() -> Case:
    _seed(3)
    x, y = blobs()
    model = PreNormResidual()
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss()}


def binary_logits() -> Case:
    _seed(4)
    x, y = blobs(k=2)
    model = relu_mlp(3, width=64, k=1)
    return {"model": model, "inputs": x, "targets": y.float().unsqueeze(1),
            "loss_fn": nn.BCEWithLogitsLoss()}


class LogSoftmaxNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = relu_mlp(3, width=128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.body(x), dim=1)


def log_softmax_nll() -> Case:
    _seed(5)
    x, y = blobs()
    return {"model": LogSoftmaxNet(), "inputs": x, "targets": y, "loss_fn": nn.NLLLoss()}


def regression() -> Case:
    _seed(6)
    x = torch.randn(128, 16)
    w = torch.randn(16, 3)
    y = x @ w + 0.1 * torch.randn(128, 3)
    y = (y - y.mean(0)) / y.std(0)
    model = relu_mlp(3, width=64, d=16, k=3)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.MSELoss(),
            "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3)}


def multilabel() -> Case:
    _seed(7)
    x, _ = blobs()
    y = (torch.rand(128, 5) < 0.3).float()
    model = relu_mlp(2, width=64, k=5)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.BCEWithLogitsLoss()}


def dropout_train() -> Case:
    _seed(8)
    x, y = blobs()
    model = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 256),
                          nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))
    model.train()
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss()}


def unit_interval_images() -> Case:
    """Inputs in [0, 1] (rms about 0.58): common and fine."""
    _seed(9)
    x = torch.rand(64, 1, 16, 16)
    y = torch.randint(0, 10, (64,))
    return {"model": SmallCNN(), "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss()}


HEALTHY: dict[str, Callable[[], Case]] = {
    **{f"default-mlp-{d}": default_mlp(d) for d in (1, 3, 6)},
    **{f"he-mlp-{d}": he_mlp(d) for d in (1, 6, 20)},
    "xavier-tanh": xavier_tanh,
    "cnn-bn": cnn_bn,
    "prenorm-residual": residual,
    "binary-logits": binary_logits,
    "log-softmax-nll": log_softmax_nll,
    "regression": regression,
    "multilabel": multilabel,
    "dropout-train": dropout_train,
    "unit-interval-images": unit_interval_images,
}


# ---------------------------------------------------------------- faults, one per finding code


def _scaled_he(depth: int, factor: float, seed: int = 10) -> Case:
    _seed(seed)
    x, y = blobs()
    model = relu_mlp(depth, init="he")
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.mul_(factor)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.01)}


def exploding() -> Case:
    return _scaled_he(6, 4.0)


def vanishing() -> Case:
    return _scaled_he(6, 0.2)


def huge_head() -> Case:
    _seed(11)
    x, y = blobs()
    model = relu_mlp(2, init="he")
    with torch.no_grad():
        model[-1].weight.mul_(30.0)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss()}


def saturated_tanh() -> Case:
    _seed(12)
    x, y = blobs()
    model = relu_mlp(4, init="xavier-tanh", act=nn.Tanh)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.mul_(5.0)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss()}


def dead_layer() -> Case:
    _seed(13)
    x, y = blobs()
    model = relu_mlp(3, init="he")
    with torch.no_grad():
        model[2].bias.fill_(-20.0)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss()}


class SqrtNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(32, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.sqrt(self.lin(x)))


def nan_sqrt() -> Case:
    _seed(14)
    x, y = blobs()
    return {"model": SqrtNet(), "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss()}


def softmax_into_ce() -> Case:
    _seed(15)
    x, y = blobs()
    model = nn.Sequential(relu_mlp(2, width=64), nn.Softmax(dim=1))
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss()}


def sigmoid_into_bce_logits() -> Case:
    _seed(16)
    x, y = blobs(k=2)
    model = nn.Sequential(relu_mlp(2, width=64, k=1), nn.Sigmoid())
    return {"model": model, "inputs": x, "targets": y.float().unsqueeze(1),
            "loss_fn": nn.BCEWithLogitsLoss()}


def sigmoid_mse() -> Case:
    """Story 2 in a network: squared error on a sigmoid output that is already confident."""
    _seed(17)
    x, y = blobs(k=2)
    model = nn.Sequential(relu_mlp(2, width=64, k=1), nn.Sigmoid())
    with torch.no_grad():
        model[0][-1].weight.mul_(20.0)  # output |z| of several units: s'(z) far below its peak
    return {"model": model, "inputs": x, "targets": y.float().unsqueeze(1), "loss_fn": nn.MSELoss()}


def ce_single_logit() -> Case:
    _seed(18)
    x, y = blobs(k=2)
    return {"model": relu_mlp(2, width=64, k=1), "inputs": x, "targets": y,
            "loss_fn": nn.CrossEntropyLoss()}


def mse_on_class_indices() -> Case:
    _seed(19)
    x, y = blobs()
    return {"model": relu_mlp(2, width=64, k=1), "inputs": x, "targets": y.unsqueeze(1),
            "loss_fn": lambda o, t: F.mse_loss(o, t.float()) if t.dtype.is_floating_point
            else F.mse_loss(o, t)}


def one_based_labels() -> Case:
    _seed(20)
    x, y = blobs()
    return {"model": relu_mlp(2, width=64), "inputs": x, "targets": y + 1,
            "loss_fn": nn.CrossEntropyLoss()}


def bce_on_class_indices() -> Case:
    _seed(21)
    x, y = blobs(k=4)
    return {"model": relu_mlp(2, width=64, k=1), "inputs": x, "targets": y.float().unsqueeze(1),
            "loss_fn": nn.BCEWithLogitsLoss()}


def half_cross_entropy() -> Case:
    _seed(22)
    x, y = blobs(k=2)
    model = nn.Sequential(relu_mlp(2, width=64, k=1), nn.Sigmoid())
    zeros = torch.zeros(128, 1)
    return {"model": model, "inputs": x, "targets": zeros,
            "loss_fn": lambda a, t: -torch.mean(t * torch.log(a))}


def detached_loss() -> Case:
    _seed(23)
    x, y = blobs()
    return {"model": relu_mlp(2, width=64), "inputs": x, "targets": y,
            "loss_fn": lambda o, t: F.cross_entropy(o.detach(), t)}


def log_of_underflowing_softmax() -> Case:
    _seed(24)
    x, y = blobs()
    model = relu_mlp(2, init="he")
    with torch.no_grad():
        model[-1].weight.mul_(500.0)

    def loss_fn(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(o, dim=1)
        return F.nll_loss(torch.log(p), t)

    return {"model": model, "inputs": x, "targets": y, "loss_fn": loss_fn}


def decay_everything() -> Case:
    _seed(25)
    x, y = blobs()
    model = relu_mlp(2, init="he")
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5e-4)}


def heavy_l2_in_loss() -> Case:
    _seed(26)
    x, y = blobs()
    model = relu_mlp(2, init="he")

    def loss_fn(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        l2 = sum(p.pow(2).sum() for p in model.parameters())
        return F.cross_entropy(o, t) + 0.5 * l2 / 2

    return {"model": model, "inputs": x, "targets": y, "loss_fn": loss_fn}


def adam_with_l2() -> Case:
    _seed(27)
    x, y = blobs()
    model = relu_mlp(2, init="he")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.Adam([{"params": decay, "weight_decay": 1e-2},
                            {"params": rest, "weight_decay": 0.0}], lr=1e-3)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": opt}


def summed_ce() -> Case:
    _seed(28)
    x, y = blobs()
    return {"model": relu_mlp(2, init="he"), "inputs": x, "targets": y,
            "loss_fn": nn.CrossEntropyLoss(reduction="sum")}


def summed_squares() -> Case:
    case = regression()
    case["loss_fn"] = lambda o, t: ((o - t) ** 2).sum()
    return case


def raw_pixels() -> Case:
    _seed(29)
    x, y = blobs()
    return {"model": relu_mlp(2), "inputs": x * 60 + 120, "targets": y,
            "loss_fn": nn.CrossEntropyLoss()}


# name -> (factory, expected code, expected severity)
FAULTS: dict[str, tuple[Callable[[], Case], str, str]] = {
    "huge-head": (huge_head, "init-loss-high", "warning"),
    "exploding-signal": (exploding, "signal-exploding", "warning"),
    "vanishing-signal": (vanishing, "signal-vanishing", "warning"),
    "exploding-grad": (exploding, "grad-exploding", "warning"),
    "vanishing-grad-default-20": (default_mlp(20), "grad-vanishing", "warning"),
    "saturated-tanh": (saturated_tanh, "saturation", "warning"),
    "dead-layer": (dead_layer, "dead-relu", "error"),
    "nan-sqrt": (nan_sqrt, "nonfinite", "error"),
    "sigmoid-mse": (sigmoid_mse, "mse-on-saturating-output", "warning"),
    "softmax-into-ce": (softmax_into_ce, "double-softmax", "error"),
    "sigmoid-into-bce-logits": (sigmoid_into_bce_logits, "double-softmax", "error"),
    "ce-single-logit": (ce_single_logit, "loss-task-mismatch", "error"),
    "mse-on-class-indices": (mse_on_class_indices, "loss-task-mismatch", "error"),
    "one-based-labels": (one_based_labels, "labels-out-of-range", "error"),
    "bce-on-class-indices": (bce_on_class_indices, "labels-out-of-range", "error"),
    "half-cross-entropy": (half_cross_entropy, "loss-degenerate", "error"),
    "detached-loss": (detached_loss, "loss-degenerate", "error"),
    "log-of-underflowing-softmax": (log_of_underflowing_softmax, "log-of-zero", "error"),
    "decay-everything": (decay_everything, "weight-decay-on-bias", "info"),
    "l2-in-loss-on-biases": (heavy_l2_in_loss, "weight-decay-on-bias", "info"),
    "heavy-l2-in-loss": (heavy_l2_in_loss, "regularization-dominates", "warning"),
    "adam-with-l2": (adam_with_l2, "adam-coupled-l2", "warning"),
    "summed-ce": (summed_ce, "sum-reduction", "warning"),
    "summed-squares": (summed_squares, "sum-reduction", "warning"),
    "raw-pixels": (raw_pixels, "input-not-normalized", "warning"),
}


def broadcast_mse() -> Case:
    case = regression()
    case["model"] = relu_mlp(2, width=64, d=16, k=1)
    case["targets"] = case["targets"][:, 0]
    case.pop("optimizer")
    return case


FAULTS["broadcast-mse"] = (broadcast_mse, "loss-task-mismatch", "error")


def lr_too_high() -> Case:
    case = he_mlp(3)()
    case["optimizer"] = torch.optim.SGD(case["model"].parameters(), lr=20.0)
    return case


def lr_too_low() -> Case:
    case = he_mlp(3)()
    case["optimizer"] = torch.optim.SGD(case["model"].parameters(), lr=1e-6)
    return case


FAULTS["lr-too-high"] = (lr_too_high, "lr-too-high", "error")
FAULTS["lr-too-low"] = (lr_too_low, "lr-too-low", "info")


# ---------------------------------------------------------------- more faults for the benchmark


def story_1() -> Case:
    from lossdoctor.examples import deep_relu

    return deep_relu()


def story_2_quadratic() -> Case:
    from lossdoctor.examples import saturated_neuron

    return saturated_neuron()


def story_2_half_ce() -> Case:
    from lossdoctor.examples import half_cross_entropy

    return half_cross_entropy()


class PlainCNN(nn.Module):
    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.c3 = nn.Conv2d(32, 32, 3, padding=1)
        self.head = nn.Linear(32, 10)
        with torch.no_grad():
            for c in (self.c1, self.c2, self.c3):
                nn.init.kaiming_normal_(c.weight, nonlinearity="relu")
                c.weight.mul_(scale)
                c.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))
        x = F.relu(self.c3(x))
        return self.head(x.mean((2, 3)))


def cnn_exploding() -> Case:
    _seed(30)
    return {"model": PlainCNN(scale=6.0), "inputs": torch.randn(32, 1, 12, 12),
            "targets": torch.randint(0, 10, (32,)), "loss_fn": nn.CrossEntropyLoss()}


def cnn_he() -> Case:
    _seed(31)
    return {"model": PlainCNN(), "inputs": torch.randn(32, 1, 12, 12),
            "targets": torch.randint(0, 10, (32,)), "loss_fn": nn.CrossEntropyLoss()}


def deep_sigmoid() -> Case:
    _seed(32)
    x, y = blobs()
    model = relu_mlp(10, width=128, act=nn.Sigmoid)
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.01)}


def residual_huge_head() -> Case:
    case = residual()
    with torch.no_grad():
        case["model"].head.weight.mul_(100.0)
    return case


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = relu_mlp(2, width=64, k=64)
        self.cls = nn.Linear(64, 10)
        self.aux = nn.Linear(64, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.body(x))
        return F.softmax(self.cls(h), dim=1), self.aux(h)


def two_heads_softmax() -> Case:
    _seed(33)
    x, y = blobs()
    return {"model": TwoHeads(), "inputs": x, "targets": y,
            "loss_fn": lambda out, t: F.cross_entropy(out[0], t) + 0.1 * out[1].pow(2).mean()}


def offset_regression() -> Case:
    case = regression()
    case["targets"] = case["targets"] + 500.0
    return case


def nll_on_logits() -> Case:
    _seed(34)
    x, y = blobs()
    return {"model": relu_mlp(2, width=64), "inputs": x, "targets": y, "loss_fn": nn.NLLLoss()}


def bn_dead() -> Case:
    case = cnn_bn()
    with torch.no_grad():
        case["model"].b2.bias.fill_(-6.0)
    return case


def multilabel_with_ce() -> Case:
    case = multilabel()
    case["loss_fn"] = nn.CrossEntropyLoss()
    return case


class LogFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(32, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.log(F.relu(self.lin(x))))


def log_features() -> Case:
    _seed(35)
    x, y = blobs()
    return {"model": LogFeatures(), "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss()}


def nan_inputs() -> Case:
    case = he_mlp(3)()
    x = case["inputs"].clone()
    x[5, 3] = float("nan")
    case["inputs"] = x
    return case


def negative_binary_labels() -> Case:
    case = binary_logits()
    case["targets"] = case["targets"] * 2 - 1  # {-1, 1}, as for a hinge loss
    return case


def adam_lr_1() -> Case:
    case = he_mlp(3)()
    case["optimizer"] = torch.optim.Adam(case["model"].parameters(), lr=1.0)
    return case


def tanh_raw_inputs() -> Case:
    case = xavier_tanh()
    case["inputs"] = case["inputs"] * 50
    return case


def summed_bce_multilabel() -> Case:
    case = multilabel()
    case["loss_fn"] = nn.BCEWithLogitsLoss(reduction="sum")
    return case


def huge_weight_decay() -> Case:
    case = he_mlp(2)()
    case["optimizer"] = torch.optim.SGD(case["model"].parameters(), lr=0.01, weight_decay=50.0)
    return case


class Bag(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.emb = nn.Embedding(100, 32)
        self.head = nn.Linear(32, 5)
        with torch.no_grad():
            self.emb.weight.mul_(scale)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(ids).mean(1))


def embedding_huge() -> Case:
    _seed(36)
    return {"model": Bag(300.0), "inputs": torch.randint(0, 100, (64, 12)),
            "targets": torch.randint(0, 5, (64,)), "loss_fn": nn.CrossEntropyLoss()}


def embedding_healthy() -> Case:
    _seed(37)
    return {"model": Bag(1.0), "inputs": torch.randint(0, 100, (64, 12)),
            "targets": torch.randint(0, 5, (64,)), "loss_fn": nn.CrossEntropyLoss()}


def negated_ce() -> Case:
    case = he_mlp(3)()
    case["loss_fn"] = lambda o, t: -F.cross_entropy(o, t)
    return case


def sgd_maximize() -> Case:
    case = he_mlp(3)()
    case["optimizer"] = torch.optim.SGD(case["model"].parameters(), lr=0.1, maximize=True)
    return case


def oscillating_sgd() -> Case:
    case = he_mlp(3)()
    case["optimizer"] = torch.optim.SGD(case["model"].parameters(), lr=1.5, momentum=0.9)
    return case


def adamw_no_decay_groups() -> Case:
    case = he_mlp(3)()
    model = case["model"]
    case["optimizer"] = torch.optim.AdamW([
        {"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 0.01},
        {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0},
    ], lr=1e-3)
    return case


def leaky_gelu_mix() -> Case:
    _seed(38)
    x, y = blobs()
    model = nn.Sequential(nn.Linear(32, 128), nn.LeakyReLU(0.1), nn.Linear(128, 128), nn.GELU(),
                          nn.Linear(128, 10))
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3)}


def optimizer_of_old_model() -> Case:
    """The optimizer was built over the model, then the model was built again."""
    case = he_mlp(3)()
    stale = case["model"]
    case["model"] = copy.deepcopy(stale)
    case["optimizer"] = torch.optim.SGD(stale.parameters(), lr=0.01)
    return case


def half_precision_adam() -> Case:
    case = he_mlp(3)()
    model = case["model"].half()
    case["inputs"] = case["inputs"].half()
    case["optimizer"] = torch.optim.Adam(model.parameters(), lr=1e-3)
    return case


FAULTS["optimizer-of-old-model"] = (optimizer_of_old_model, "nothing-trainable", "error")
FAULTS["float16-adam"] = (half_precision_adam, "half-precision-overflow", "error")


HEALTHY.update({
    "cnn-he-no-bn": cnn_he,
    "embedding-bag": embedding_healthy,
    "adamw-no-decay-groups": adamw_no_decay_groups,
    "leaky-gelu-adam": leaky_gelu_mix,
})


# ---------------------------------------------------------------- real-bug categories (issue 11)


def relu_output_into_bce() -> Case:
    """deepmufl SO 58572274 / 54282951: a ReLU (or linear) output unit into BCELoss."""
    _seed(21)
    x, y = blobs(k=2)
    model = nn.Sequential(*relu_mlp(2, width=64, k=1), nn.ReLU())
    return {"model": model, "inputs": x, "targets": y.float().unsqueeze(1), "loss_fn": nn.BCELoss()}


def sigmoid_regression_on_prices() -> Case:
    """deepmufl SO 48251943: a sigmoid output regressed onto prices in the thousands."""
    _seed(22)
    x = torch.randn(128, 8)
    y = 3000 + 25000 * torch.rand(128, 1)
    model = nn.Sequential(*relu_mlp(2, width=64, d=8, k=1), nn.Sigmoid())
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.MSELoss(),
            "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3)}


def collapsed_labels() -> Case:
    """DeepFD SO 59325381: labels divided by 255 and truncated: every label becomes 0."""
    _seed(23)
    x, y = blobs()
    return {"model": relu_mlp(2, width=64), "inputs": x, "targets": (y / 255).long(),
            "loss_fn": nn.CrossEntropyLoss()}


def head_narrower_than_one_hot() -> Case:
    """deepmufl SO 70148149: one output unit against one-hot targets of three classes."""
    _seed(24)
    x, y = blobs(k=3)
    return {"model": nn.Sequential(*relu_mlp(2, width=64, k=1), nn.Sigmoid()), "inputs": x,
            "targets": F.one_hot(y, 3).float(), "loss_fn": nn.BCELoss()}


FAULTS["relu-output-into-bce"] = (relu_output_into_bce, "non-probability-into-prob-loss", "error")
FAULTS["sigmoid-regression-on-prices"] = (sigmoid_regression_on_prices, "output-range-mismatch",
                                          "error")
FAULTS["collapsed-labels"] = (collapsed_labels, "labels-degenerate", "warning")
FAULTS["head-narrower-than-one-hot"] = (head_narrower_than_one_hot, "head-label-mismatch", "error")


# ------------------------------------------------------------------ token labels (sequence models)


class TinyLM(nn.Module):
    """A one-block causal transformer LM: embedding, causal self-attention, MLP, LM head."""

    def __init__(self, vocab: int = 200, d: int = 64) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.block = nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True,
                                                norm_first=True)
        self.head = nn.Linear(d, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        causal = torch.triu(torch.full((t, t), float("-inf")), 1)
        return self.head(self.block(self.emb(ids), src_mask=causal))


def _padded_tokens(pad: int = 0) -> torch.Tensor:
    ids = torch.randint(1, 200, (16, 24))
    for i in range(0, 16, 2):
        ids[i, 12 + i // 2:] = pad  # right padding, different lengths
    return ids


def _lm_loss(ignore: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               ignore_index=ignore)
    return loss_fn


def lm_shifted() -> Case:
    """Healthy: next-token labels, padding set to -100."""
    _seed(30)
    ids = _padded_tokens()
    y = ids[:, 1:].clone()
    y[y == 0] = -100
    model = TinyLM()
    return {"model": model, "inputs": ids[:, :-1], "targets": y, "loss_fn": _lm_loss(-100),
            "optimizer": torch.optim.AdamW(model.parameters(), lr=1e-3)}


def lm_padding_counted() -> Case:
    """Next-token labels, but the padding's labels stay in the loss (no ignore_index)."""
    _seed(31)
    ids = _padded_tokens()
    model = TinyLM()
    return {"model": model, "inputs": ids[:, :-1], "targets": ids[:, 1:], "loss_fn": _lm_loss(-100),
            "optimizer": torch.optim.AdamW(model.parameters(), lr=1e-3)}


def lm_unshifted() -> Case:
    """The labels are the inputs themselves: the model can copy the token it reads."""
    _seed(32)
    ids = torch.randint(1, 200, (16, 24))
    model = TinyLM()
    return {"model": model, "inputs": ids, "targets": ids, "loss_fn": _lm_loss(-100),
            "optimizer": torch.optim.AdamW(model.parameters(), lr=1e-3)}


HEALTHY["lm-shifted-ignore-padding"] = lm_shifted
FAULTS["lm-padding-counted"] = (lm_padding_counted, "padding-in-loss", "warning")
FAULTS["lm-unshifted-labels"] = (lm_unshifted, "labels-copy-inputs", "error")
FAULTS["negated-cross-entropy"] = (negated_ce, "loss-maximized", "error")
FAULTS["sgd-maximize"] = (sgd_maximize, "loss-maximized", "error")


def bce_arguments_swapped() -> Case:
    """``F.binary_cross_entropy(target, output)``: the Keras (y_true, y_pred) order in PyTorch."""
    _seed(33)
    x, y = blobs(k=2)
    model = nn.Sequential(relu_mlp(2, width=64, k=1), nn.Sigmoid())
    return {"model": model, "inputs": x, "targets": y.float().unsqueeze(1),
            "loss_fn": lambda out, t: F.binary_cross_entropy(t, out),
            "optimizer": torch.optim.SGD(model.parameters(), lr=1e-3)}


FAULTS["bce-arguments-swapped"] = (bce_arguments_swapped, "loss-arguments-swapped", "error")
