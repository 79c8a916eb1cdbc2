"""Monitored training runs: named faults and healthy runs for the run-level rules.

Each run trains a small model on scikit-learn's digits under ``ld.Monitor`` and returns the
monitor's report; the rule catalogue names them as ``runs:NAME``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from scenarios import relu_mlp
from torch import nn

import lossdoctor as ld
from lossdoctor.lab.datasets import load

SPLIT = load("digits")


def train(model: nn.Module, opt: torch.optim.Optimizer, *, steps: int = 300, every: int = 50,
          zero: bool = True, accumulate: int = 1, nan_at: int | None = None,
          shift_at: int | None = None, images: bool = False, **kw: object) -> ld.Report:
    g = torch.Generator().manual_seed(1)
    with ld.Monitor(model, opt, every=every, on_finding="ignore", **kw) as mon:  # type: ignore[arg-type]
        for step in range(1, steps + 1):
            idx = torch.randint(0, len(SPLIT.y_train), (64,), generator=g)
            x, y = SPLIT.x_train[idx], SPLIT.y_train[idx]
            if images:
                x = x.reshape(-1, 1, 8, 8)
            if nan_at == step:
                x = x.clone()
                x[0, 0] = float("inf")
            if shift_at == step:
                with torch.no_grad():
                    model[2].bias.sub_(50.0)  # type: ignore[index, union-attr]
            if zero and (step - 1) % accumulate == 0:
                opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            if step % accumulate == 0:
                opt.step()
            mon.observe(loss, inputs=x, targets=y)
    return mon.report()


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return relu_mlp(2, width=128, d=64, init="he")


def codes(report: ld.Report) -> dict[str, tuple[str, int]]:
    return {f.code: (f.severity, f.evidence.get("step")) for f in report.findings}


def _sgd(lr: float, momentum: float = 0.0, **kw: object) -> Callable[[], ld.Report]:
    def run() -> ld.Report:
        model = mlp()
        return train(model, torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum), **kw)
    return run


RUNS: dict[str, Callable[[], ld.Report]] = {
    "healthy-sgd": _sgd(0.1),
    "missing-zero-grad": _sgd(0.01, zero=False),
    "diverging": _sgd(1.0),
    "plateau": _sgd(1e-5),
    "oscillating": _sgd(0.5, momentum=0.9),
}
