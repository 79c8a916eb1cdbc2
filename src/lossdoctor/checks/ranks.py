"""Cross-rank checks: the bugs only a ``torch.distributed`` run has, from the ranks' exchanged rows.

Each check reads :class:`~lossdoctor.trace.RankStats` (plain numbers every rank sent at one
step) and names the ranks a finding holds on (``evidence["ranks"]``):

- ``ranks-params-differ``: DDP gives every rank the same averaged gradient and the same
  optimizer, so replicas stay bit-identical; a parameter whose float64 sum or norm differs from
  rank 0's by more than ``rank_param_ulps`` units of its dtype's rounding was changed on one rank
  (not wrapped, re-initialised after wrapping, edited outside the optimizer).
- ``ranks-same-batch``: the step's batch has the same float64 sum and norm on two ranks: the
  ranks read the same examples (no ``DistributedSampler``).
- ``epochs-same-order``: the run's first two batches came back one after the other: every epoch
  repeats the first one's order (``set_epoch`` never called, or no shuffling).
- ``grad-world-size``: the gradient the optimizer applies is N or 1/N times the average of the
  ranks' own gradients (a manual all-reduce SUM on top of DDP, or a second division).
- ``params-without-grad``: trainable parameters whose ``.grad`` is None on every rank at every
  exchange.
- ``nonfinite``: the rank whose loss went non-finite first.
"""

from __future__ import annotations

import math

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import RankStats, Trace


def _ranks(trace: Trace) -> RankStats | None:
    return trace.run.ranks if trace.run is not None else None


def _on(ranks: list[int]) -> str:
    return f"rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))}"


@check("ranks-params-differ", scope="run")
def params_differ(trace: Trace, th: Thresholds) -> list[Finding]:
    """Replicated parameters whose fingerprint differs from rank 0's beyond float rounding."""
    rs = _ranks(trace)
    if rs is None:
        return []
    differ: dict[str, float] = {}
    ranks: set[int] = set()
    for i, name in enumerate(rs.params):
        s0, n0 = rs.param_sums[0][i], rs.param_norms[0][i]
        if math.isnan(s0) or math.isnan(n0):
            continue  # sharded (FSDP): every element lives on one rank only
        tol = th.rank_param_ulps * rs.param_eps[i] * n0
        for r in range(1, rs.world):
            ds = abs(rs.param_sums[r][i] - s0)
            dn = abs(rs.param_norms[r][i] - n0)
            if ds > tol * math.sqrt(rs.param_numel[i]) or dn > tol or math.isnan(ds + dn):
                ranks.add(r)
                rel = dn / n0 if n0 > 0 else math.inf
                differ[name] = max(differ.get(name, 0.0), rel if dn > tol else
                                   ds / (n0 * math.sqrt(rs.param_numel[i]) or 1.0))
    if not differ:
        return []
    names = list(differ)
    share = len(names) / max(1, sum(1 for s in rs.param_sums[0] if not math.isnan(s)))
    if rs.wrapper == "none":
        cause = ("the model is not wrapped in DistributedDataParallel: each rank applies its own "
                 "gradient and trains a different copy")
    elif share < 1:
        cause = (f"only {len(names)} of the parameters differ: they were changed outside the "
                 "optimizer on some ranks (an in-place edit, a reload or a re-init on one rank)")
    else:
        cause = ("every parameter differs: the ranks started from different weights (a "
                 "per-rank initialisation after wrapping, which DDP's broadcast at construction "
                 "does not see) or are not averaged")
    top = max(differ.values())
    return [Finding(
        "ranks-params-differ", "error", ", ".join(names[:3]) + (", ..." if len(names) > 3 else ""),
        {"ranks": [0, *sorted(ranks)], "params": names[:10], "count": len(names),
         "max_relative_diff": top, "wrapper": rs.wrapper, "step": rs.step,
         "lines": {"rank_param_ulps": th.rank_param_ulps}},
        f"step {rs.step}: {len(names)} parameter(s) differ between rank 0 and {_on(sorted(ranks))} "
        f"(largest relative difference {g(top)}, the line is {g(th.rank_param_ulps)} units of "
        f"float rounding): {cause}.",
        "Data-parallel training keeps one model in N copies: DDP broadcasts rank 0's weights at "
        "construction and all-reduces the gradients, so every rank applies the same update to the "
        "same weights and the copies stay bit-identical. Once they differ, each rank computes "
        "gradients of a different model, the averaged step fits none of them, and the checkpoint "
        "saved from rank 0 is not the model that was trained.",
        (Fix("wrap the model once, after initialising it, before any per-rank change",
             "model = DistributedDataParallel(model)  # broadcasts rank 0's weights\n"
             "# change weights only through the optimizer, identically on every rank"),),
    )]


@check("ranks-buffers-differ", scope="run")
def buffers_differ(trace: Trace, th: Thresholds) -> list[Finding]:
    """Floating-point buffers (running statistics) that differ between ranks as forward begins."""
    rs = _ranks(trace)
    if rs is None or not rs.buffers or not rs.buffer_sums:
        return []
    differ: dict[str, float] = {}
    ranks: set[int] = set()
    for i, name in enumerate(rs.buffers):
        s0, n0 = rs.buffer_sums[0][i], rs.buffer_norms[0][i]
        if math.isnan(s0) or math.isnan(n0):
            continue
        tol = th.rank_param_ulps * 2.0 ** -23 * n0  # float32 rounding (running stats are fp32)
        for r in range(1, rs.world):
            dn = abs(rs.buffer_norms[r][i] - n0)
            if dn > tol or math.isnan(dn):
                ranks.add(r)
                differ[name] = max(differ.get(name, 0.0), dn / n0 if n0 > 0 else math.inf)
    if not differ:
        return []
    names = list(differ)
    top = max(differ.values())
    return [Finding(
        "ranks-buffers-differ", "warning", ", ".join(names[:3]) + (", ..." if len(names) > 3 else ""),
        {"ranks": [0, *sorted(ranks)], "buffers": names[:10], "count": len(names),
         "max_relative_diff": top, "wrapper": rs.wrapper, "step": rs.step,
         "lines": {"rank_param_ulps": th.rank_param_ulps}},
        f"step {rs.step}: {len(names)} buffer(s) ({', '.join(names[:3])}) differ between rank 0 "
        f"and {_on(sorted(ranks))} as the forward begins (largest relative difference {g(top)}): "
        "the running statistics are not synchronised.",
        "DDP broadcasts rank 0's buffers before every forward unless broadcast_buffers=False; "
        "without it each rank's BatchNorm keeps running statistics of its own shard, so each "
        "rank evaluates a different model and rank 0's checkpoint holds statistics of 1/N of "
        "the data. It matters in eval mode, where the running statistics replace the batch's.",
        (Fix("synchronise the statistics",
             "model = nn.SyncBatchNorm.convert_sync_batchnorm(model)\n"
             "model = DistributedDataParallel(model)  # broadcast_buffers=True (the default)"),),
    )]


@check("ranks-same-batch", scope="run")
def same_batch(trace: Trace, th: Thresholds) -> list[Finding]:
    """Two or more ranks fed the same batch at the same step."""
    rs = _ranks(trace)
    if rs is None or any(b is None for b in rs.batch):
        return []
    groups: dict[tuple[float, float] | None, list[int]] = {}
    for r, b in enumerate(rs.batch):
        groups.setdefault(b, []).append(r)
    same = sorted(r for grp in groups.values() if len(grp) > 1 for r in grp)
    if not same:
        return []
    b0 = rs.batch[same[0]]
    assert b0 is not None
    return [Finding(
        "ranks-same-batch", "warning", "data loader",
        {"ranks": same, "batch_sum": b0[0], "batch_norm": b0[1], "step": rs.step},
        f"step {rs.step}: {_on(same)} trained on the identical batch (float64 sum {g(b0[0])}, "
        f"norm {g(b0[1])} on each): the data is not split between the ranks.",
        "Data parallelism speeds training up only when each rank sees different examples; with "
        "the same batch everywhere the all-reduced gradient is the one-rank gradient, the "
        "effective batch is N times smaller than configured and N - 1 ranks compute nothing new.",
        (Fix("give each rank its own shard",
             "sampler = DistributedSampler(dataset, shuffle=True)\n"
             "loader = DataLoader(dataset, batch_size=B, sampler=sampler)"),),
    )]


@check("epochs-same-order", scope="run")
def same_order(trace: Trace, th: Thresholds) -> list[Finding]:
    """Every epoch replays the first one's batch order."""
    rs = _ranks(trace)
    if rs is None:
        return []
    ranks = [r for r, p in enumerate(rs.repeat_period) if p > 0]
    if not ranks:
        return []
    period = rs.repeat_period[ranks[0]]
    return [Finding(
        "epochs-same-order", "warning", "data loader",
        {"ranks": ranks, "batches_per_epoch": period, "step": rs.step},
        f"step {rs.step}: the first two batches came back after {period} batches, in the same "
        f"order, on {_on(ranks)}: every epoch repeats the first one's order.",
        "DistributedSampler shuffles with seed + epoch: without sampler.set_epoch(epoch) the "
        "epoch stays 0 and every epoch draws the identical permutation, so the batches and their "
        "order repeat and SGD loses the noise reshuffling gives it.",
        (Fix("reshuffle every epoch",
             "for epoch in range(epochs):\n    sampler.set_epoch(epoch)\n"
             "    for x, y in loader: ..."),),
    )]


@check("grad-world-size", scope="run")
def grad_world_size(trace: Trace, th: Thresholds) -> list[Finding]:
    """The applied gradient is N or 1/N times the average of the ranks' own gradients."""
    rs = _ranks(trace)
    if rs is None or any(rs.stale) or rs.world < 2:
        return []
    n = len(rs.params)
    mean = [math.fsum(rs.grad_local[r][i] for r in range(rs.world)) / rs.world for i in range(n)]
    factors: list[float] = []
    for r in range(rs.world):
        pairs = [(s, m) for s, m in zip(rs.grad_synced[r], mean, strict=True)
                 if math.isfinite(s) and math.isfinite(m)]
        den = math.fsum(m * m for _, m in pairs)
        if not pairs or den <= 0:
            return []
        factors.append(math.fsum(s * m for s, m in pairs) / den)
    tol, w = th.world_size_tolerance, rs.world
    if max(factors) > min(factors) * (1 + tol):
        return []  # the ranks disagree: not one consistent factor (ranks-params-differ's job)
    k = factors[0]
    if abs(k / w - 1) <= tol:
        kind = (f"N = {w} times the average: the gradients are summed over the ranks on top of "
                "DDP's average (a manual all_reduce with SUM)")
    elif abs(k * w - 1) <= tol:
        kind = (f"1/N = 1/{w} of the average: the gradients are divided by the world size a "
                "second time (DDP already averages)")
    else:
        return []
    return [Finding(
        "grad-world-size", "error", "gradients",
        {"ranks": list(range(w)), "factor": k, "factors": factors, "world": w, "step": rs.step,
         "lines": {"world_size_tolerance": tol}},
        f"step {rs.step}: the gradient the optimizer applied is {g(k)}x the average of the "
        f"ranks' own gradients, {kind}.",
        "DDP all-reduces each gradient and divides by N, so the optimizer applies the mean of the "
        "ranks' gradients; measured on a fixed signed projection of 32 entries per parameter, "
        "that mean is reproduced exactly (projection is linear). A factor of N multiplies the "
        "learning rate by the world size (and changes it when N changes); 1/N divides it.",
        (Fix("let DDP average, and nothing else",
             "loss.backward()   # DDP averages the gradients here\n"
             "optimizer.step()  # no dist.all_reduce(p.grad) and no p.grad /= world_size"),),
    )]


@check("params-without-grad", scope="run")
def params_without_grad(trace: Trace, th: Thresholds) -> list[Finding]:
    """Trainable parameters that no backward reaches, on any rank."""
    rs = _ranks(trace)
    if rs is None or not rs.never_grad or rs.exchanges < 2:
        return []
    names = list(rs.never_grad)
    return [Finding(
        "params-without-grad", "warning", ", ".join(names[:3]) + (", ..." if len(names) > 3 else ""),
        {"ranks": list(range(rs.world)), "params": names[:10], "count": len(names),
         "exchanges": rs.exchanges, "step": rs.step},
        f"step {rs.step}: {len(names)} trainable parameter(s) had no gradient on any rank at any "
        f"of {rs.exchanges} measured steps ({', '.join(names[:3])}).",
        "A parameter outside the graph of the loss never changes; under DDP it also makes every "
        "step fail (find_unused_parameters=False) or costs an extra graph traversal per step "
        "(find_unused_parameters=True).",
        (Fix("use it in forward, or freeze it", "param.requires_grad_(False)  # or remove it"),),
    )]


@check("nonfinite", scope="run")
def nonfinite_rank(trace: Trace, th: Thresholds) -> list[Finding]:
    """The rank whose loss went non-finite first."""
    rs = _ranks(trace)
    if rs is None or not any(rs.first_nonfinite):
        return []
    bad = [(s, r) for r, s in enumerate(rs.first_nonfinite) if s > 0]
    step, first = min(bad)
    ranks = sorted(r for _, r in bad)
    others = ", ".join(f"rank {r} at step {s}" for s, r in sorted(bad) if r != first)
    return [Finding(
        "nonfinite", "error", f"rank {first}",
        {"ranks": ranks, "first_rank": first, "rank_steps": list(rs.first_nonfinite),
         "step": step},
        f"step {step}: the loss became non-finite on rank {first} first"
        + (f" (then {others})" if others else "") + ".",
        "One non-finite value poisons every value computed from it; DDP's all-reduce carries a "
        "NaN gradient from one rank into every rank's weights at the next step. The rank where "
        "it started holds the batch or the op that produced it.",
        (Fix("stop every rank at the first NaN and name its layer",
             "Monitor(model, optimizer, stop_on_nonfinite=True)"),),
    )]
