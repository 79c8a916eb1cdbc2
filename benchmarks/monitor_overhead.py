"""Training-step time and peak memory with the monitor vs without, measured in one run.

Blocks of steps alternate between plain and monitored training so machine noise hits both;
the medians of the block times are compared. Peak memory is the maximum resident set size of a
fresh child process running the same training with and without the monitor. The cost of one
unscheduled ``observe()`` is timed on its own (many calls on an attached monitor whose schedule
never comes), and a 1-millisecond step shows the floor: there the fixed per-step cost counts most.
Run: ``python benchmarks/monitor_overhead.py``.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import lossdoctor as ld
from lossdoctor.examples import digits, mlp


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
        return self.head(x.mean((2, 3)))  # type: ignore[no-any-return]


def make(kind: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    if kind == "tiny":
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                              nn.Linear(128, 10))
        return model, torch.randn(32, 64), torch.randint(0, 10, (32,))
    if kind == "mlp":
        x, y = digits(128)
        model = mlp([64] + [750] * 6 + [10], nn.ReLU, 0.5)
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        return model, x, y
    return SmallCNN(), torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))


def steps(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          n: int, mon: ld.Monitor | None) -> float:
    t = time.perf_counter()
    for _ in range(n):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if mon is not None:
            mon.observe(loss)
    return time.perf_counter() - t


def observe_us(calls: int = 100_000) -> float:
    """Microseconds per unscheduled ``observe(loss)`` (loss a detached scalar tensor)."""
    model = nn.Linear(4, 1)
    loss = torch.tensor(0.5)
    best = float("inf")
    for _ in range(5):
        with ld.Monitor(model, None, every=10**9, on_finding="ignore") as mon:
            t = time.perf_counter()
            for _ in range(calls):
                mon.observe(loss)
            best = min(best, (time.perf_counter() - t) / calls)
    return 1e6 * best


def overhead(kind: str, blocks: int = 10, per_block: int = 40) -> tuple[float, float, float]:
    """(idle-hook ratio, every-step ratio, default-schedule ratio) against plain training.

    Three kinds of blocks alternate: plain, monitor attached but never scheduled (the hook cost
    of the 49 unscheduled steps out of 50) and monitor measuring every step. The default
    schedule's ratio is composed from them: (49 idle + 1 measured) / 50 plain. Direct timing of
    every=50 blocks is too noisy on this machine to resolve a few percent.
    """
    model, x, y = make(kind)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    idle = ld.Monitor(model, opt, every=10**9, on_finding="ignore")
    busy = ld.Monitor(model, opt, every=1, on_finding="ignore")
    plain, idle_t, busy_t = [], [], []
    steps(model, opt, x, y, 10, None)
    for _ in range(blocks):
        plain.append(steps(model, opt, x, y, per_block, None))
        idle.attach()
        idle_t.append(steps(model, opt, x, y, per_block, idle))
        idle.detach()
        busy.attach()
        busy_t.append(steps(model, opt, x, y, per_block, busy))
        busy.detach()
    base = statistics.median(plain)
    r_idle = statistics.median(idle_t) / base
    r_busy = statistics.median(busy_t) / base
    return r_idle, r_busy, (49 * r_idle + r_busy) / 50


def child(kind: str, every: int) -> None:
    model, x, y = make(kind)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    if every:
        with ld.Monitor(model, opt, every=every, on_finding="ignore") as mon:
            steps(model, opt, x, y, 100, mon)
    else:
        steps(model, opt, x, y, 100, None)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak(kind: str, every: int) -> int:
    out = subprocess.run([sys.executable, __file__, "child", kind, str(every)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def step_ms(kind: str) -> float:
    model, x, y = make(kind)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    steps(model, opt, x, y, 10, None)
    return 1e3 * min(steps(model, opt, x, y, 50, None) / 50 for _ in range(5))


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          "time and peak RSS with the monitor / without")
    print(f"one unscheduled observe(): {observe_us():.2f} us")
    for kind, label, blocks, per_block in (
            ("tiny", "MLP 64-128-128-10, batch 32", 30, 200),
            ("mlp", "story-1 MLP (He init), batch 128", 10, 40),
            ("cnn", "small CNN, batch 64", 10, 40)):
        r_idle, r_busy, r_default = overhead(kind, blocks, per_block)
        mem = peak(kind, 50) / peak(kind, 0)
        print(f"{label:34s} step {step_ms(kind):5.2f} ms  every 50: {r_default:.3f}x (hooks idle "
              f"{r_idle:.3f}x)   every step: {r_busy:.3f}x   peak memory (every 50): {mem:.3f}x")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
