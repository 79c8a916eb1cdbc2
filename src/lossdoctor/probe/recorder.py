"""Shared state of one probe: pending layer records whose statistics are still on-device."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch

from lossdoctor.probe.readback import FIELDS, Readback, grad_stats, reduce, rms
from lossdoctor.trace import LayerStats, TensorStats
from lossdoctor.vocab import DYING, SATURATION_Z


@dataclass
class Pending:
    """A layer record before read-back: slices into the :class:`Readback` buffer."""

    index: int
    name: str
    kind: str
    op: str
    phase: str
    inputs: tuple[tuple[int, ...], slice] | None
    output: tuple[tuple[int, ...], slice]
    fan_in: int | None = None
    weight_rms: slice | None = None
    source_op: str | None = None
    saturated: slice | None = None
    dead: slice | None = None
    units: int | None = None
    grad: slice | None = None
    grad_numel: int = 0
    is_output: bool = False
    source_index: int | None = None
    skip_index: int | None = None


def stats_from(shape: tuple[int, ...], values: list[float]) -> TensorStats:
    """Build :class:`TensorStats` from the values of :func:`reduce`."""
    mean, rms, std, lo, hi, nonfinite, zeros = values
    numel = 1
    for s in shape:
        numel *= s
    return TensorStats(
        shape=shape, numel=numel, mean=mean, rms=rms, std=std, min=lo, max=hi,
        nonfinite=int(nonfinite), zeros=int(zeros),
    )


def unit_dim(t: torch.Tensor) -> int | None:
    """Dimension holding the units (features/channels): 1, or the last one for (B, T, D)."""
    if t.dim() < 2:
        return None
    return t.dim() - 1 if t.dim() == 3 else 1


@dataclass
class Recorder:
    """Collects layer records during the forward pass and the loss call."""

    rb: Readback = field(default_factory=Readback)
    pending: list[Pending] = field(default_factory=list)
    phase: str = "model"
    depth: int = 0          # > 0 while inside a recorded module: its internal ops are not re-recorded
    # (data_ptr, shape) -> (record, weak reference to the tensor that holds that memory): a
    # freed tensor's memory is reused by later ones, so an entry counts only while it is alive
    producers: dict[tuple[int, tuple[int, ...]], tuple[Pending, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    enabled: bool = True    # hooks stay registered but record nothing while False (monitor)

    def reset(self) -> None:
        """Forget every record (the monitor reuses one recorder across scheduled steps)."""
        self.rb = Readback()
        self.pending = []
        self.producers = {}
        self.counts = {}
        self.depth = 0

    def fn_name(self, op: str) -> str:
        """Unique name for the n-th call of a functional op."""
        n = self.counts.get(op, 0) + 1
        self.counts[op] = n
        return f"fn:{op}#{n}"

    def producer(self, t: Any) -> Pending | None:
        """The record whose output is ``t`` (same storage and shape), if any."""
        if not isinstance(t, torch.Tensor) or t.numel() == 0:
            return None
        hit = self.producers.get((t.data_ptr(), tuple(t.shape)))
        if hit is None or hit[1]() is None:
            return None
        return hit[0]

    def alias(self, out: torch.Tensor, inp: torch.Tensor) -> None:
        """Let a pass-through op's output (dropout, a view) point at its input's producer."""
        src = self.producer(inp)
        if src is not None and out.numel():
            self.producers[(out.data_ptr(), tuple(out.shape))] = (src, weakref.ref(out))

    def record(
        self,
        name: str,
        kind: str,
        op: str,
        inp: torch.Tensor | None,
        out: torch.Tensor,
        *,
        pre: tuple[tuple[int, ...], slice] | None = None,
        weight: torch.Tensor | None = None,
        fan_in: int | None = None,
        source: Pending | None = None,
        saturated: slice | None = None,
    ) -> Pending:
        """Queue the statistics of one layer or op.

        Args:
            name: module path or functional name.
            kind: record kind (see :class:`LayerStats`).
            op: module class or function name.
            inp: its first input (None when ``pre`` holds statistics taken before an in-place op).
            out: its output.
            pre: input statistics already queued (in-place activations).
            weight: the layer's weight, for its rms.
            fan_in: inputs per unit.
            source: the record that produced ``inp``.
            saturated: saturated fraction already queued (in-place activations).
        """
        if pre is None and inp is not None and inp.is_floating_point():
            pre, saturated = self.pre_stats(inp, op)
        p = Pending(
            index=len(self.pending), name=name, kind=kind, op=op, phase=self.phase,
            inputs=pre, output=(tuple(out.shape), self.rb.add(reduce(out))),
            fan_in=fan_in, source_op=source.op if source is not None else None,
            saturated=saturated,
            source_index=source.index if source is not None else None,
        )
        if weight is not None:
            p.weight_rms = self.rb.add([rms(weight)])
        if op in DYING:
            d = unit_dim(out)
            if d is not None:
                with torch._C.DisableTorchFunction():
                    x = out.detach()
                    others = [i for i in range(x.dim()) if i != d]
                    dead = (x.amax(dim=others) <= 0).sum() if x.numel() else torch.zeros(())
                p.units = int(out.shape[d])
                p.dead = self.rb.add([float(dead) / max(p.units, 1)])
        if out.requires_grad and out.grad_fn is not None:
            self._watch_grad(p, out)
        self.pending.append(p)
        if out.numel():
            self.producers[(out.data_ptr(), tuple(out.shape))] = (p, weakref.ref(out))
        return p

    def pre_stats(self, t: torch.Tensor, op: str
                  ) -> tuple[tuple[tuple[int, ...], slice], slice | None]:
        """Queue input statistics (and the saturated fraction for a saturating ``op``) ahead of
        an op that may overwrite its input."""
        z = SATURATION_Z.get(op) if t.is_floating_point() else None
        where = self.rb.add(reduce(t, z))
        n = len(FIELDS)
        stats = slice(where.start, where.start + n)
        sat = slice(where.start + n, where.stop) if z is not None else None
        return (tuple(t.shape), stats), sat

    def _watch_grad(self, p: Pending, out: torch.Tensor) -> None:
        def hook(g: torch.Tensor) -> None:
            if g.is_floating_point():
                p.grad = self.rb.add(grad_stats(g))
                p.grad_numel = g.numel()

        out.register_hook(hook)

    def layers(self) -> tuple[LayerStats, ...]:
        """Read everything back and freeze it into :class:`LayerStats`."""
        get = self.rb.get
        out: list[LayerStats] = []
        for p in self.pending:
            grad_rms = None
            grad_nonfinite = 0
            if p.grad is not None and p.grad_numel:
                sq, nf = get(p.grad)
                grad_rms = (sq / p.grad_numel) ** 0.5
                grad_nonfinite = int(nf)
            out.append(
                LayerStats(
                    index=p.index, name=p.name, kind=p.kind, op=p.op, phase=p.phase,
                    inputs=stats_from(p.inputs[0], get(p.inputs[1])) if p.inputs else None,
                    output=stats_from(p.output[0], get(p.output[1])),
                    fan_in=p.fan_in,
                    weight_rms=get(p.weight_rms)[0] if p.weight_rms else None,
                    source_op=p.source_op,
                    saturated=get(p.saturated)[0] if p.saturated else None,
                    dead_units=get(p.dead)[0] if p.dead else None,
                    units=p.units,
                    grad_rms=grad_rms,
                    grad_nonfinite=grad_nonfinite,
                    is_output=p.is_output,
                    source_index=p.source_index,
                    skip_index=p.skip_index,
                )
            )
        return tuple(out)
