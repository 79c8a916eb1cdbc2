"""The ranks' exchange: compact statistics, one ``all_gather`` per scheduled step, with a timeout.

Under ``torch.distributed`` every rank packs what it measured into one float64 row of a fixed
length (a header, five numbers per trainable parameter, one per catalogue code); one
``all_gather`` on a private gloo group gives every rank every row, so every rank reaches the same
decision (stop, raise, report) from the same numbers and no rank is left waiting in a collective
the others skipped. Tensors never travel: a parameter is a float64 sum and norm, a batch the same
two numbers, a gradient a signed projection on a few fixed entries.

The group is created with its own timeout: a rank that raised or hangs makes the others' next
exchange fail after ``timeout`` seconds with :class:`RankFailed` instead of blocking forever; a
rank leaving the ``Monitor`` block with an exception first joins the exchange the others are
waiting in with an error flag, so they stop at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from lossdoctor.checks.catalog import RULES
from lossdoctor.errors import LossDoctorError
from lossdoctor.probe.wrappers import clean_name
from lossdoctor.trace import RankStats

CODES: tuple[str, ...] = tuple(r.code for r in RULES)
FLAG_OK, FLAG_NONFINITE, FLAG_RAISED = 0.0, 1.0, 2.0
# header: flag, step, first non-finite step, batch sum, batch norm, repeat period, stale,
# stepped (the optimizer stepped with the hooks on), loss
HEADER = 9
PROJECTION_ENTRIES = 32  # gradient entries per parameter in the signed projection


class RankFailed(LossDoctorError):
    """Another rank stopped (raised, exited or hangs): the exchange failed or carried its flag."""


def active() -> bool:
    """Whether this process is one of several ranks of an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def local(t: torch.Tensor) -> torch.Tensor:
    """The rank's own part of a tensor (a DTensor's local shard; a plain tensor itself)."""
    to_local = getattr(t, "to_local", None)
    return to_local() if callable(to_local) else t


def is_sharded(t: torch.Tensor) -> bool:
    """Whether a parameter is an FSDP2 DTensor (each rank holds a different shard)."""
    return callable(getattr(t, "to_local", None))


class Exchange:
    """This rank's side of the exchange.

    Args:
        timeout: seconds an exchange may wait for the other ranks.
    """

    def __init__(self, timeout: float) -> None:
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.timeout = timeout
        self.group: Any = dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout))
        self.bytes_last = 0  # bytes this rank received in its last exchange
        self.count = 0

    def gather(self, row: Sequence[float], what: str) -> list[list[float]]:
        """Every rank's row (this rank's included), in rank order.

        Raises:
            RankFailed: another rank did not join within the timeout or its process is gone.
        """
        t = torch.tensor(list(row), dtype=torch.float64)
        out = [torch.empty_like(t) for _ in range(self.world)]
        try:
            dist.all_gather(out, t, group=self.group)
        except RuntimeError as e:
            raise RankFailed(
                f"rank {self.rank}: the ranks' exchange at {what} failed: another rank did not "
                f"join within {self.timeout:g} s (it raised, exited or hangs; see its own "
                f"output) [{str(e).splitlines()[0][:160]}]") from e
        self.count += 1
        self.bytes_last = t.numel() * t.element_size() * self.world
        return torch.stack(out).tolist()

    def gather_objects(self, obj: Any, what: str) -> list[Any]:
        """Every rank's picklable ``obj`` (findings, rarely: only when a row says one is needed).

        Raises:
            RankFailed: as :meth:`gather`.
        """
        out: list[Any] = [None] * self.world
        try:
            dist.all_gather_object(out, obj, group=self.group)
        except RuntimeError as e:
            raise RankFailed(f"rank {self.rank}: the ranks' exchange of findings at {what} "
                             f"failed: {str(e).splitlines()[0][:160]}") from e
        return out

    def check_same_model(self, names: Sequence[str]) -> None:
        """All ranks hold the same trainable parameters (the rows must line up).

        Raises:
            LossDoctorError: they do not (on every rank, from the same gathered numbers).
        """
        rows = self.gather((float(len(names)), float(_hash(names))), "attach")
        if any(row != rows[0] for row in rows):
            counts = ", ".join(f"rank {r}: {int(row[0])}" for r, row in enumerate(rows))
            raise LossDoctorError(
                "the ranks monitor different models (their trainable parameters differ; "
                f"parameter tensors {counts}): build the same model on every rank")


def _hash(names: Sequence[str]) -> int:
    """A deterministic 52-bit hash of the names (exact in a float64)."""
    h = 1469598103934665603
    for ch in "\0".join(names).encode():
        h = ((h ^ ch) * 1099511628211) % (1 << 64)
    return h >> 12


def trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The trainable parameters with wrapper-free names, in registration order."""
    return [(clean_name(n), p) for n, p in model.named_parameters() if p.requires_grad]


def float_buffers(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The floating-point buffers (running statistics), with wrapper-free names."""
    return [(clean_name(n), b) for n, b in model.named_buffers() if b.is_floating_point()]


def fingerprints(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """float64 (sum, L2 norm) of each tensor, stacked on the device (NaN rows for shards)."""
    return torch.stack([torch.full((2,), math.nan, dtype=torch.float64) if is_sharded(t)
                        else batch_fingerprint(t).cpu() for t in tensors]) if tensors \
        else torch.zeros(0, 2, dtype=torch.float64)


def param_fingerprints(params: Sequence[torch.Tensor]) -> tuple[list[float], list[float]]:
    """float64 sum and L2 norm of each replicated parameter (NaN for sharded ones), one transfer."""
    vals: list[torch.Tensor] = []
    with torch.no_grad():
        for p in params:
            if is_sharded(p):
                vals.append(torch.full((2,), math.nan, dtype=torch.float64))
                continue
            d = p.detach()
            vals.append(torch.stack([d.sum(dtype=torch.float64),
                                     torch.linalg.vector_norm(d, dtype=torch.float64)]).cpu())
    if not vals:
        return [], []
    both = torch.stack(vals).tolist()
    return [s for s, _ in both], [n for _, n in both]


def batch_fingerprint(x: torch.Tensor) -> torch.Tensor:
    """(sum, L2 norm) of a batch in float64, left on its device (read back on exchange)."""
    with torch.no_grad():
        d = x.detach()
        if not d.is_floating_point():
            d = d.double()
        return torch.stack([d.sum(dtype=torch.float64),
                            torch.linalg.vector_norm(d, dtype=torch.float64)])


@dataclass
class Projection:
    """A fixed signed projection of a gradient: sum_i s_i g[k_i] over up to 32 entries.

    The entries and signs come from a generator seeded with the parameter's index, so every rank
    projects on the same ones. Projection is linear, so the projection of DDP's average is the
    average of the ranks' projections, exactly up to float rounding.
    """

    index: torch.Tensor
    sign: torch.Tensor

    @classmethod
    def for_param(cls, p: torch.Tensor, seed: int) -> Projection:
        n = local(p).numel()
        gen = torch.Generator().manual_seed(seed)
        k = min(n, PROJECTION_ENTRIES)
        index = torch.randperm(n, generator=gen)[:k]
        sign = torch.randint(0, 2, (k,), generator=gen).double() * 2 - 1
        return cls(index.to(p.device), sign.to(p.device))

    def __call__(self, g: torch.Tensor) -> torch.Tensor:
        if g.is_sparse or g.layout != torch.strided:
            return torch.tensor(math.nan, dtype=torch.float64)
        with torch.no_grad():
            return (local(g).detach().reshape(-1)[self.index].double() * self.sign).sum()


def decode(rows: list[list[float]], names: Sequence[str], eps: Sequence[float],
           numel: Sequence[int], wrapper: str, never_grad: Sequence[str],
           exchanges: int, buffers: Sequence[str] = ()) -> RankStats:
    """The gathered rows as a :class:`RankStats`."""
    n, nb = len(names), len(buffers)

    def buf(row: list[float], k: int) -> tuple[float, ...]:
        start = HEADER + 5 * n + k * nb
        return tuple(row[start:start + nb])

    def block(row: list[float], k: int) -> tuple[float, ...]:
        return tuple(row[HEADER + k * n:HEADER + (k + 1) * n])

    def batch(row: list[float]) -> tuple[float, float] | None:
        return None if math.isnan(row[3]) else (row[3], row[4])

    return RankStats(
        world=len(rows), step=int(rows[0][1]), wrapper=wrapper, params=tuple(names),
        param_sums=tuple(block(r, 0) for r in rows), param_norms=tuple(block(r, 1) for r in rows),
        param_eps=tuple(eps), param_numel=tuple(numel), batch=tuple(batch(r) for r in rows),
        repeat_period=tuple(int(r[5]) for r in rows),
        first_nonfinite=tuple(int(r[2]) for r in rows),
        grad_local=tuple(block(r, 2) for r in rows),
        grad_synced=tuple(block(r, 3) if r[7] else (math.nan,) * n for r in rows),
        no_grad=tuple(tuple(nm for nm, f in zip(names, block(r, 4), strict=True) if f == 1.0)
                      if r[7] else () for r in rows),
        never_grad=tuple(never_grad), exchanges=exchanges,
        stale=tuple(bool(r[6]) for r in rows),
        buffers=tuple(buffers), buffer_sums=tuple(buf(r, 0) for r in rows),
        buffer_norms=tuple(buf(r, 1) for r in rows),
    )


def codes_block(severities: dict[str, int]) -> list[float]:
    """One number per catalogue code: 1 + severity rank of the rank's finding, 0 if none."""
    return [float(severities.get(c, -1) + 1) for c in CODES]


def ranks_with(rows: list[list[float]], code: str) -> list[int]:
    """The ranks whose row says they found ``code`` at this step."""
    i = len(rows[0]) - len(CODES) + CODES.index(code)
    return [r for r, row in enumerate(rows) if row[i] > 0]


def merge_findings(findings: Sequence[Any] | BaseException, timeout: float = 60.0) -> list[Any]:
    """One list of findings for all ranks, each with the ranks it holds on (every rank calls it).

    A finding is keyed by (code, where); the lowest rank's copy is kept, with ``ranks``. Used by
    ``diagnose`` on a wrapped model, where each rank diagnosed its own batch; the exchange is one
    pickled list per rank on a private gloo group with ``timeout``. A rank whose diagnosis raised
    passes its exception: the others then raise :class:`RankFailed` naming it, instead of
    waiting for the timeout.

    Raises:
        RankFailed: another rank's diagnosis raised, or it did not join within ``timeout``.
    """
    from dataclasses import replace

    x = Exchange(timeout)
    mine: Any = (f"{type(findings).__name__}: {findings}" if isinstance(findings, BaseException)
                 else list(findings))
    everyone = x.gather_objects(mine, "diagnose")
    failed = [(r, e) for r, e in enumerate(everyone) if isinstance(e, str)]
    if failed and not isinstance(findings, BaseException):
        raise RankFailed("; ".join(f"rank {r}'s diagnosis raised {e}" for r, e in failed))
    if failed:
        return []
    keys: dict[tuple[str, str], list[int]] = {}
    first: dict[tuple[str, str], Any] = {}
    for r, fs in enumerate(everyone):
        for f in fs:
            keys.setdefault((f.code, f.where), []).append(r)
            first.setdefault((f.code, f.where), f)
    return [replace(f, evidence={**f.evidence, "ranks": keys[k]}) for k, f in first.items()]
