"""Distributed training runs (gloo, CPU): the cross-rank faults, healthy DDP / FSDP2 controls.

``launch(names)`` runs the named scenarios in one job of ``world`` processes (one process group,
the scenarios one after the other) under a hard timeout and returns, per scenario, what each
rank saw: the codes of its monitor's report with their severity and evidence, and the
scenario's own measurements. The rule catalogue names them as ``ddp:NAME``.

    python benchmarks/faults/ddp_runs.py healthy no-sampler   # prints rank 0's results
    python benchmarks/faults/ddp_runs.py --world 4 healthy-short allreduce-sum divide-twice
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import lossdoctor as ld
from lossdoctor.monitor.distributed import RankFailed
from lossdoctor.monitor.monitor import FindingRaised, NonFiniteLoss

N, D, K, BATCH = 256, 16, 4, 16  # 8 batches per rank and epoch at world size 2


class Net(nn.Module):
    """A small MLP; ``unused`` adds a layer that forward never calls, ``bn`` a BatchNorm."""

    def __init__(self, unused: bool = False, bn: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, K))
        if bn:
            self.net.insert(1, nn.BatchNorm1d(32))
        if unused:
            self.head2 = nn.Linear(32, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def dataset() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=g)
    y = (x[:, :K] + 0.5 * torch.randn(N, K, generator=g)).argmax(1)
    return TensorDataset(x, y)


def train(rank: int, world: int, *, wrap: str = "ddp", sampler: bool = True,
          set_epoch: bool = True, epochs: int = 3, every: int = 5, unused: bool = False,
          grad_hook: Callable[[nn.Module, int], None] | None = None,
          before_observe: Callable[[nn.Module, int], None] | None = None,
          batch_hook: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
          accumulate: int = 1, diagnose_first: bool = False, bn: bool = False,
          broadcast_buffers: bool = True,
          **monitor_kw: Any) -> tuple[ld.Report, dict[str, Any]]:
    """Train ``Net`` under a monitor; returns its report and extra measurements."""
    torch.manual_seed(0)
    model: nn.Module = Net(unused, bn)
    if wrap in ("ddp", "reinit-after-wrap"):
        model = DDP(model, find_unused_parameters=unused, broadcast_buffers=broadcast_buffers)
    if wrap == "reinit-after-wrap":  # DDP broadcast rank 0's weights at construction, not these
        torch.manual_seed(rank)
        for layer in model.module.net:  # type: ignore[union-attr]
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
    elif wrap == "fsdp":
        from torch.distributed.fsdp import fully_shard
        for layer in model.net:  # type: ignore[union-attr]
            if isinstance(layer, nn.Linear):
                fully_shard(layer)
        fully_shard(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ds = dataset()
    torch.manual_seed(1)  # the same loader seed on every rank
    samp = DistributedSampler(ds, shuffle=True, seed=0) if sampler else None
    loader = DataLoader(ds, batch_size=BATCH, sampler=samp, shuffle=samp is None)
    extra: dict[str, Any] = {}
    step = 0
    monitor_kw.setdefault("on_finding", "ignore")
    if diagnose_first:  # observe(inputs=, targets=) diagnoses the first batch on every rank
        monitor_kw["loss_fn"] = F.cross_entropy
    with ld.Monitor(model, opt, every=every, **monitor_kw) as mon:
        for epoch in range(epochs):
            if samp is not None and set_epoch:
                samp.set_epoch(epoch)
            for x, y in loader:
                step += 1
                if batch_hook is not None:
                    x = batch_hook(x, step)
                last = step % accumulate == 0
                if (step - 1) % accumulate == 0:
                    opt.zero_grad()
                sync = model.no_sync() if isinstance(model, DDP) and not last else nullcontext()
                with sync:  # accumulation: only the last micro-batch's backward all-reduces
                    loss = F.cross_entropy(model(x), y)
                    loss.backward()
                if grad_hook is not None:
                    grad_hook(model, step)
                if last:
                    opt.step()
                if before_observe is not None:
                    before_observe(model, step)
                if diagnose_first:
                    mon.observe(loss, inputs=x, targets=y)
                else:
                    mon.observe(loss)
        extra["steps"] = step
        extra["bytes_per_exchange"] = mon._x.bytes_last if mon._x is not None else 0
        extra["params"] = [n for n, _ in mon._params]
    report = mon.report()
    extra["layers"] = [layer.name for layer in report.trace.layers]
    return report, extra


def _sum_grads(model: nn.Module, step: int) -> None:
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)  # SUM on top of DDP's average


def _divide_again(model: nn.Module, step: int) -> None:
    for p in model.parameters():
        if p.grad is not None:
            p.grad /= dist.get_world_size()


def _nudge_on_rank1(model: nn.Module, step: int) -> None:
    if step == 3 and dist.get_rank() == 1:
        with torch.no_grad():
            model.module.net[0].bias.add_(1e-3)  # type: ignore[union-attr, index, operator]


def _inf_on_rank1(x: torch.Tensor, step: int) -> torch.Tensor:
    if step == 4 and dist.get_rank() == 1:
        x = x.clone()
        x[0, 0] = float("inf")
    return x


def _raise_on_rank1(model: nn.Module, step: int) -> None:
    if step == 3 and dist.get_rank() == 1:
        raise ValueError("a bug in rank 1's logging")


def _stall_on_rank1(model: nn.Module, step: int) -> None:
    if step == 4 and dist.get_rank() == 1:
        time.sleep(5)  # alive but late for the exchange of step 4: rank 0 must not wait forever


def run_stopping(rank: int, world: int, **kw: Any) -> tuple[ld.Report | None, dict[str, Any]]:
    """A run expected to stop: which exception each rank raised, at which step, how fast."""
    t0 = time.perf_counter()
    try:
        report, extra = train(rank, world, **kw)
        return report, {**extra, "raised": None}
    except (NonFiniteLoss, RankFailed, FindingRaised, ValueError) as e:
        return None, {"raised": type(e).__name__, "message": str(e),
                      "seconds": time.perf_counter() - t0}


def _state(model: nn.Module, opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Everything diagnose must leave bit-identical: weights, buffers, grads, optimizer, RNG."""
    ts = [t.detach().clone() for t in model.state_dict().values()]
    ts += [p.grad.clone() for p in model.parameters() if p.grad is not None]
    ts += [v.clone() for st in opt.state.values() for v in st.values()
           if isinstance(v, torch.Tensor)]
    return [*ts, torch.get_rng_state()]


def diagnose_ddp(rank: int, world: int) -> tuple[ld.Report, dict[str, Any]]:
    """``diagnose`` on a DDP model with each rank's own batch: rank 1's inputs are raw (x 50)."""
    torch.manual_seed(0)
    model = DDP(Net())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = dataset().tensors
    x, y = x[rank * 64:(rank + 1) * 64], y[rank * 64:(rank + 1) * 64]
    F.cross_entropy(model(x), y).backward()  # a momentum buffer and grads to keep
    opt.step()
    before = _state(model, opt)
    report = ld.diagnose(model, x * (50.0 if rank == 1 else 1.0), y,
                         nn.CrossEntropyLoss(reduction="sum"), opt, verify_steps=5)
    after = _state(model, opt)
    same = len(before) == len(after) and all(
        a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(before, after, strict=True))
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()  # DDP still synchronises after the diagnosis
    grads = torch.cat([p.grad.reshape(-1) for p in model.parameters()])  # type: ignore[union-attr]
    gathered = [torch.empty_like(grads) for _ in range(world)]
    dist.all_gather(gathered, grads)
    return report, {"bit_identical": same, "grads_synced": torch.equal(gathered[0], gathered[1])}


def accelerate_run(rank: int, world: int, prepare_loader: bool) -> tuple[ld.Report,
                                                                         dict[str, Any]]:
    """Hugging Face accelerate: ``Accelerator.prepare`` wraps the model in DDP and (when the
    loader is prepared too) shards the data; ``accelerator.backward`` runs the backward."""
    from accelerate import Accelerator

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    acc = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(dataset(), batch_size=BATCH, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    if prepare_loader:
        model, opt, loader = acc.prepare(model, opt, loader)
    else:
        model, opt = acc.prepare(model, opt)
    with ld.Monitor(model, opt, every=5, on_finding="ignore") as mon:
        for _ in range(2):
            for x, y in loader:
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                acc.backward(loss)
                opt.step()
                mon.observe(loss)
    report = mon.report()
    return report, {"steps": mon.step, "wrapper": mon._wrapper,
                    "layers": [layer.name for layer in report.trace.layers]}


def diagnose_raises_on_rank1(rank: int, world: int) -> tuple[None, dict[str, Any]]:
    """Rank 1 passes targets of the wrong shape (its loss raises): rank 0 must not wait."""
    torch.manual_seed(0)
    model = DDP(Net())
    x, y = dataset().tensors
    t0 = time.perf_counter()
    try:
        ld.diagnose(model, x[:32], y[:32] if rank == 0 else y[:16], nn.CrossEntropyLoss(),
                    verify_steps=0)
    except ld.LossDoctorError as e:
        return None, {"raised": type(e).__name__, "message": str(e)[:300],
                      "seconds": time.perf_counter() - t0}
    return None, {"raised": None}


def hf_trainer(rank: int, world: int) -> tuple[ld.Report, dict[str, Any]]:
    """The Hugging Face Trainer (DDP through accelerate) with ``LossDoctorHFCallback``."""
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from lossdoctor.monitor.hf import LossDoctorHFCallback

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, num_labels=3)
    x = torch.randint(0, 100, (256, 16), generator=torch.Generator().manual_seed(0))
    data = [{"input_ids": x[i], "labels": x[i, 0] % 3} for i in range(len(x))]
    cb = LossDoctorHFCallback(every=5, on_finding="ignore")
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, max_steps=10, per_device_train_batch_size=16,
                                 logging_steps=5, report_to=[], use_cpu=True, save_strategy="no",
                                 learning_rate=1e-3, disable_tqdm=True)
        trainer = Trainer(model=BertForSequenceClassification(cfg), args=args,
                          train_dataset=data, callbacks=[cb])  # type: ignore[arg-type]
        trainer.train()
    report = cb.report()
    assert cb.monitor is not None
    return report, {"steps": cb.monitor.step, "wrapper": cb.monitor._wrapper,
                    "ddp": type(trainer.model_wrapped).__name__,
                    "layers": [layer.name for layer in report.trace.layers][:3]}


SCENARIOS: dict[str, Callable[[int, int], tuple[ld.Report | None, dict[str, Any]]]] = {
    "healthy": lambda r, w: train(r, w, diagnose_first=True),
    "healthy-short": lambda r, w: train(r, w, epochs=1, every=2),
    "accumulate": lambda r, w: train(r, w, accumulate=2, epochs=2),
    "fsdp-healthy": lambda r, w: train(r, w, wrap="fsdp"),
    "not-wrapped": lambda r, w: train(r, w, wrap="none", epochs=1),
    "reinit-after-wrap": lambda r, w: train(r, w, wrap="reinit-after-wrap", epochs=1),
    "nudged-on-one-rank": lambda r, w: train(r, w, before_observe=_nudge_on_rank1, epochs=1),
    "no-sampler": lambda r, w: train(r, w, sampler=False, epochs=1),
    "bn-healthy": lambda r, w: train(r, w, bn=True, epochs=1),
    "bn-unsynced": lambda r, w: train(r, w, bn=True, broadcast_buffers=False, epochs=1),
    "no-set-epoch": lambda r, w: train(r, w, set_epoch=False),
    "allreduce-sum": lambda r, w: train(r, w, grad_hook=_sum_grads, epochs=1),
    "divide-twice": lambda r, w: train(r, w, grad_hook=_divide_again, epochs=1),
    "unused-param": lambda r, w: train(r, w, unused=True, epochs=2),
    "diagnose-ddp": diagnose_ddp,
    "diagnose-raises-on-rank1": diagnose_raises_on_rank1,
    "accelerate": lambda r, w: accelerate_run(r, w, True),
    "accelerate-unsharded-loader": lambda r, w: accelerate_run(r, w, False),
    "hf-trainer": hf_trainer,
    "nan-on-rank1": lambda r, w: train(r, w, batch_hook=_inf_on_rank1, epochs=1),
    "raise-mode": lambda r, w: run_stopping(r, w, sampler=False, epochs=1, on_finding="raise"),
    "nan-stop": lambda r, w: run_stopping(r, w, batch_hook=_inf_on_rank1, epochs=1,
                                          stop_on_nonfinite=True),
    "raise-on-rank1": lambda r, w: run_stopping(r, w, before_observe=_raise_on_rank1, epochs=1,
                                                stop_on_nonfinite=True, timeout=30),
    "stall-on-rank1": lambda r, w: run_stopping(r, w, before_observe=_stall_on_rank1, epochs=1,
                                                every=2, timeout=2),
}
DDP_RUNS = SCENARIOS


def summary(report: ld.Report | None) -> dict[str, Any]:
    if report is None:
        return {}
    return {f.code: {"severity": f.severity, "where": f.where, "summary": f.summary,
                     "evidence": {k: v for k, v in f.evidence.items()
                                  if isinstance(v, (int, float, str, list, type(None)))}}
            for f in report.findings}


def _worker(rank: int, world: int, port: int, names: list[str], out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    results: dict[str, Any] = {}
    for name in names:
        t0 = time.perf_counter()
        report, extra = SCENARIOS[name](rank, world)
        results[name] = {"codes": summary(report), "extra": extra,
                         "seconds": time.perf_counter() - t0}
        Path(out, f"rank{rank}.json").write_text(json.dumps(results, default=str))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(names: list[str], world: int = 2, timeout: float = 120) -> list[dict[str, Any]]:
    """Run the scenarios in one ``world``-process job; per rank, per scenario, its results.

    Raises:
        subprocess.TimeoutExpired: the job did not finish in ``timeout`` seconds (a hang).
        RuntimeError: a rank failed (its stderr is in the message).
    """
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, __file__, "--out", out, "--world", str(world),
                               *names], timeout=timeout, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"distributed job failed:\n{proc.stderr[-4000:]}")
        return [json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(world)]


def main(argv: list[str]) -> None:
    import torch.multiprocessing as mp

    if argv[:1] == ["--out"]:
        out, world, names = argv[1], int(argv[3]), argv[4:]
        mp.start_processes(_worker, args=(world, free_port(), names, out), nprocs=world,
                           start_method="spawn")
        return
    world = 2
    if argv[:1] == ["--world"]:
        world, argv = int(argv[1]), argv[2:]
    results = launch(argv or list(SCENARIOS), world=world, timeout=600)
    print(json.dumps(results[0], indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
