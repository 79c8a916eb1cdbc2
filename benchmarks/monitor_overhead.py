"""Training-step time and peak memory with the monitor vs without, measured in one run.

Blocks of steps alternate between plain and monitored training so machine noise hits both;
the medians of the block times are compared. Peak memory is the maximum resident set size of a
fresh child process running the same training with and without the monitor.
Run: ``python benchmarks/monitor_overhead.py``.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from speed import SmallCNN  # noqa: E402

import lossdoctor as ld  # noqa: E402
from lossdoctor.examples import digits, mlp  # noqa: E402


def make(kind: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
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


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          "time and peak RSS with the monitor / without")
    for kind, label in (("mlp", "story-1 MLP (He init), batch 128"), ("cnn", "small CNN, batch 64")):
        r_idle, r_busy, r_default = overhead(kind)
        mem = peak(kind, 50) / peak(kind, 0)
        print(f"{label:34s} every 50: {r_default:.3f}x (hooks idle {r_idle:.3f}x)   every step: "
              f"{r_busy:.3f}x   peak memory (every 50): {mem:.3f}x")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
