"""Monitor overhead under DDP: 2 processes, gloo on CPU, training-step time with / without it.

The same method as ``monitor_overhead.py``, in one run: blocks of plain DDP steps alternate with
blocks under a monitor that is attached but never scheduled (the per-step cost: one batch
fingerprint and the unscheduled ``observe``) and blocks under a monitor that measures and
exchanges on every step; the default schedule's ratio is composed as (49 idle + 1 measured) / 50.
Also timed: ``stop_on_nonfinite=True``, whose flag travels in a 16-byte ``all_gather`` every
step. The bytes are those of one scheduled exchange: each rank sends one float64 row and receives
all ``world`` rows. Every rank runs the same blocks (their order rotates from block to block);
rank 0 prints its own timings, as wall time and as CPU time of its training thread (the second
is less disturbed by other load on a shared machine; waiting in a collective costs no CPU), and
the two distributed parts timed alone: the batch fingerprint every step, one exchange.

Run: ``OMP_NUM_THREADS=1 python benchmarks/monitor_overhead_ddp.py``.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import lossdoctor as ld
from lossdoctor.monitor.distributed import batch_fingerprint

WORLD = 2


def make(kind: str, rank: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    if kind == "mlp":
        layers: list[nn.Module] = []
        for a, b in zip([64] + [750] * 6, [750] * 6 + [10], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        model = nn.Sequential(*layers[:-1])
        g = torch.Generator().manual_seed(rank)
        return model, torch.randn(128, 64, generator=g), torch.randint(0, 10, (128,), generator=g)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    g = torch.Generator().manual_seed(rank)
    return model, torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g)


def steps(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          n: int, mon: ld.Monitor | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this rank's training thread) for ``n`` steps."""
    dist.barrier()
    t, c = time.perf_counter(), time.thread_time()
    for _ in range(n):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if mon is not None:
            mon.observe(loss)
    return time.perf_counter() - t, time.thread_time() - c


def timeit(fn: Callable[[], object], n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def overhead(kind: str, rank: int, blocks: int, per_block: int) -> dict[str, float]:
    inner, x, y = make(kind, rank)
    model = DDP(inner)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    idle = ld.Monitor(model, opt, every=10**9, on_finding="ignore")
    stop = ld.Monitor(model, opt, every=10**9, on_finding="ignore", stop_on_nonfinite=True)
    busy = ld.Monitor(model, opt, every=1, on_finding="ignore")
    mons: dict[str, ld.Monitor | None] = {"plain": None, "idle": idle, "stop": stop, "busy": busy}
    wall: dict[str, list[float]] = {k: [] for k in mons}
    cpu: dict[str, list[float]] = {k: [] for k in mons}
    steps(model, opt, x, y, 5, None)
    for m in (idle, stop, busy):  # the first exchange (step 1) and attach happen off the clock
        m.attach()
        steps(model, opt, x, y, 1, m)
        m.detach()
    names = list(mons)
    for b in range(blocks):
        for name in names[b % 4:] + names[:b % 4]:  # rotate the order: no block always first
            mon = mons[name]
            if mon is not None:
                mon.attach()
            w, c = steps(model, opt, x, y, per_block, mon)
            if mon is not None:
                mon.detach()
            wall[name].append(w)
            cpu[name].append(c)
    out: dict[str, float] = {}
    for label, t in (("", wall), ("cpu_", cpu)):
        base = statistics.median(t["plain"])
        r = {k: statistics.median(v) / base for k, v in t.items()}
        out.update({f"{label}idle": r["idle"], f"{label}busy": r["busy"],
                    f"{label}stop": r["stop"],
                    f"{label}default": (49 * r["idle"] + r["busy"]) / 50})
    assert busy._x is not None
    # the parts, timed alone: the per-step batch fingerprint and one exchange of a row
    fp = min(timeit(lambda: batch_fingerprint(x), 100) for _ in range(5))
    row = [0.0] * busy._row_length()
    dist.barrier()
    ex = min(timeit(lambda: busy._x.gather(row, "bench"), 20) for _ in range(3))  # type: ignore[union-attr]
    out.update({"fingerprint_us": 1e6 * fp, "exchange_ms": 1e3 * ex})
    return {**out, "step_ms": 1e3 * statistics.median(wall["plain"]) / per_block,
            "bytes_sent": busy._x.bytes_last / WORLD, "bytes_received": busy._x.bytes_last,
            "params": len(busy._params)}


def worker(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=120))
    if rank == 0:
        print(f"torch {torch.__version__}, DDP over gloo on CPU, {WORLD} processes x "
              f"{torch.get_num_threads()} thread(s); step time with the monitor / without")
    for kind, label, blocks, per_block in (("mlp", "story-1 MLP 64-750x6-10, batch 128/rank", 12, 10),
                                           ("cnn", "small CNN, batch 64/rank", 12, 10)):
        r = overhead(kind, rank, blocks, per_block)
        if rank == 0:
            print(f"{label}: step {r['step_ms']:.1f} ms; exchange {r['bytes_sent']:.0f} B sent, "
                  f"{r['bytes_received']:.0f} B received per rank per scheduled step "
                  f"({r['params']:.0f} parameter tensors); parts timed alone: batch fingerprint "
                  f"{r['fingerprint_us']:.0f} us per step, one exchange {r['exchange_ms']:.2f} ms",
                  flush=True)
            for p, what in (("", "wall time"), ("cpu_", "CPU time of the training thread")):
                print(f"  {what:32s} every 50: {r[p + 'default']:.3f}x (hooks idle "
                      f"{r[p + 'idle']:.3f}x)  every step: {r[p + 'busy']:.3f}x  "
                      f"stop_on_nonfinite: {r[p + 'stop']:.3f}x", flush=True)
    dist.destroy_process_group()


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(worker, args=(port,), nprocs=WORLD, start_method="spawn")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
