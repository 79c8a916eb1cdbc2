"""Diagnose time as a multiple of one plain forward+backward on the same batch.

Diagnosis alone (``verify_steps=0``) is compared with a plain step; diagnosis with the default
verification of every mechanical fix is reported in seconds (story 1: target under 5 s).

Both are measured in the same run, interleaved, and the medians compared: the machines are
noisy, so only the ratio means something. Run: ``python benchmarks/speed.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import lossdoctor as ld
from lossdoctor.examples import deep_relu


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 32, 3, padding=1)
        self.b1 = nn.BatchNorm2d(32)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.b2 = nn.BatchNorm2d(64)
        self.c3 = nn.Conv2d(64, 64, 3, padding=1)
        self.b3 = nn.BatchNorm2d(64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        x = F.relu(self.b3(self.c3(x)))
        return self.head(x.mean((2, 3)))


def cnn_case() -> dict[str, Any]:
    torch.manual_seed(0)
    model = SmallCNN()
    return {"model": model, "inputs": torch.randn(64, 3, 32, 32),
            "targets": torch.randint(0, 10, (64,)), "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.1)}


def plain_step(case: dict[str, Any]) -> None:
    model = case["model"]
    loss = case["loss_fn"](model(case["inputs"]), case["targets"])
    torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])


def measure(fn: Callable[[], object], other: Callable[[], object], reps: int) -> tuple[float, float]:
    a, b = [], []
    fn()
    other()  # warm-up
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        other()
        b.append(time.perf_counter() - t)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'case':34s} {'fwd+bwd ms':>11s} {'diagnose ms':>12s} {'ratio':>7s}")
    for name, case in (("story-1 MLP 64-[750]x6-10, batch 128", deep_relu()),
                       ("small CNN 3x32x32, batch 64", cnn_case())):
        base, diag = measure(lambda c=case: plain_step(c),
                             lambda c=case: ld.diagnose(**c, verify_steps=0), 15)
        print(f"{name:34s} {1e3 * base:11.1f} {1e3 * diag:12.1f} {diag / base:7.2f}x")
    times = []
    for _ in range(3):
        case = deep_relu()
        t = time.perf_counter()
        report = ld.diagnose(**case)
        times.append(time.perf_counter() - t)
    verified = sum(f.verification is not None and f.verification.status == "verified"
                   for f in report.findings)
    print(f"story 1 with verification (20 steps): {statistics.median(times):.2f} s "
          f"(median of 3; {verified} findings verified)")


def predict_speed() -> None:
    """Time to predict a 100-layer MLP (target < 50 ms) and the ratio to one forward pass."""
    layers: list[nn.Module] = []
    for _ in range(100):
        layers += [nn.Linear(256, 256), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(256, 10))
    x = torch.randn(128, 256)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    pred, fwd = measure(lambda: ld.predict(model, input_stats=(256, 0.0, 1.0)), forward, 15)
    print(f"predict a 100-layer MLP (width 256): {1e3 * pred:.1f} ms, "
          f"{pred / fwd:.2f}x one forward pass of a batch of 128 ({1e3 * fwd:.1f} ms)")


if __name__ == "__main__":
    main()
    predict_speed()
