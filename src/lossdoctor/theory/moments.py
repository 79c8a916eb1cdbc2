"""Per-element first and second moments of a tensor, stored compressed along homogeneous dims.

A :class:`Moments` describes a tensor of shape ``shape`` whose element at index ``i`` has mean
``m[i]`` and variance ``v[i]`` over the randomness of the input (examples, tokens, pixels). ``m``
and ``v`` have the tensor's number of dims; a dim of size 1 is *homogeneous* (every index along it
has the same distribution, e.g. the batch, the positions of i.i.d. tokens, the pixels of a conv
map), a full-size dim is a *feature* dim (units, channels, heads, or positions whose mean differs,
e.g. after a position embedding or a causal mask). Different indices along a homogeneous dim are
independent; that is the mean-field assumption the propagation rules rest on.

The layer-level second moment is ``q = mean(m^2 + v)`` over the feature entries, and the part
every example shares is ``q12 = mean(m^2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from lossdoctor.theory.positions import Pos, reshaped


class Unsupported(Exception):
    """A rule cannot describe this call: the op is measured instead."""


class Lift(Protocol):
    """What a rule sees of its arguments."""

    def __call__(self, x: Any) -> Moments | None:
        """The moments of a tensor argument (a constant if it does not depend on the input)."""

    def random(self, x: Any) -> bool:
        """Whether a tensor argument depends on the input."""


@dataclass(frozen=True)
class Moments:
    """Mean ``m`` and variance ``v`` per element, broadcast along homogeneous dims.

    Attributes:
        m: per-element mean (float64), same number of dims as the tensor.
        v: per-element variance, same shape as ``m``.
        probs: the tensor is softmax output along its last dim (rows sum to one).
        key_var: for attention logits, the variance across keys for a fixed query (the part
            softmax sees; a shift common to every key cancels).
        pos: the correlation between positions of one sequence (None: independent).
        rect: ``(mu_z, var_z, a, b)`` when every element is ``a relu(z) + b`` for a Gaussian z
            (a ReLU output, maybe rescaled by a norm): the next activation then integrates over
            z instead of treating its non-Gaussian input as Gaussian.
    """

    m: torch.Tensor
    v: torch.Tensor
    probs: bool = False
    key_var: torch.Tensor | None = None
    pos: Pos | None = None
    rect: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @property
    def q(self) -> float:
        """Second moment averaged over the tensor."""
        return float((self.m * self.m + self.v).mean())

    @property
    def q12(self) -> float:
        """The shared (mean) part of the second moment."""
        return float((self.m * self.m).mean())

    @property
    def v_mean(self) -> float:
        """Fluctuation variance averaged over the tensor."""
        return float(self.v.mean())

    @property
    def m2_mean(self) -> float:
        """Squared mean averaged over the tensor."""
        return float((self.m * self.m).mean())

    @property
    def s(self) -> torch.Tensor:
        """Per-element second moment m^2 + v."""
        return self.m * self.m + self.v


def make(m: torch.Tensor, v: torch.Tensor, ndim: int | None = None, *, probs: bool = False,
         key_var: torch.Tensor | None = None, pos: Pos | None = None,
         rect: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
         ) -> Moments:
    """Moments with ``m`` and ``v`` broadcast together (and padded on the left to ``ndim``)."""
    m, v = torch.broadcast_tensors(m.double(), v.double())
    if ndim is not None:
        if m.dim() > ndim:
            raise Unsupported("statistics with more dims than the tensor")
        while m.dim() < ndim:
            m, v = m.unsqueeze(0), v.unsqueeze(0)
            key_var = key_var.unsqueeze(0) if key_var is not None else None
    if not bool(torch.isfinite(v).all()):
        raise Unsupported("non-finite variance")
    if rect is not None and (rect[0].dim() != m.dim() or any(
            torch.broadcast_shapes(r.shape, m.shape) != m.shape for r in rect)):
        rect = None
    return Moments(m.contiguous(), v.clamp_min(0).contiguous(), probs, key_var, pos, rect)


def sample_dims(ndim: int) -> tuple[int, ...]:
    """Homogeneous dims of a fresh tensor: batch, plus positions (3-D) or spatial dims (4-D+)."""
    if ndim <= 1:
        return ()
    if ndim == 3:
        return (0, 1)
    return (0, *range(2, ndim))


def measure(t: torch.Tensor, like: Moments | None = None) -> Moments:
    """Moments of a real tensor: mean and variance over its homogeneous dims.

    The homogeneous dims are those of ``like`` (an input of the op) when it fits the shape,
    else :func:`sample_dims`.
    """
    x = t.detach().double()
    if like is not None and like.m.dim() == x.dim() and all(
            a in (1, b) for a, b in zip(like.m.shape, x.shape, strict=True)):
        dims = tuple(d for d in range(x.dim()) if like.m.shape[d] == 1 and x.shape[d] > 1)
    else:
        dims = sample_dims(x.dim())
    if not dims:
        return make(x, torch.zeros_like(x))
    return make(x.mean(dims, keepdim=True), x.var(dims, unbiased=False, keepdim=True))


def constant(t: torch.Tensor) -> Moments:
    """A tensor that does not depend on the input (a parameter, a mask, a rotary table).

    Its moments are its values with zero variance; a dim along which every slice is equal is
    stored once.
    """
    x = t.detach().double()
    for d in range(x.dim()):
        if x.shape[d] > 1:
            first = x.narrow(d, 0, 1)
            if bool(torch.equal(x, first.expand_as(x))):
                x = first
    return Moments(x, torch.zeros_like(x))


def full(s: torch.Tensor, shape: Sequence[int], dims: Sequence[int]) -> torch.Tensor:
    """``s`` expanded to the tensor's size along ``dims`` (others kept)."""
    size = list(s.shape)
    for d in dims:
        size[d] = shape[d]
    return s.expand(size)


def pool(mo: Moments, dims: Sequence[int]) -> Moments:
    """Merge ``dims`` into homogeneous dims: the mixture's mean and variance."""
    dims = tuple(d for d in dims if mo.m.shape[d] > 1)
    if not dims:
        return mo
    m = mo.m.mean(dims, keepdim=True)
    s = mo.s.mean(dims, keepdim=True)
    return make(m, s - m * m)


def _groups(old: Sequence[int], new: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """Pair runs of dims with equal products (how a view maps old dims onto new ones)."""
    out: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(old) or j < len(new):
        if i < len(old) and old[i] == 1 and (j >= len(new) or new[j] != 1):
            out.append(([i], []))
            i += 1
            continue
        if j < len(new) and new[j] == 1 and (i >= len(old) or old[i] != 1):
            out.append(([], [j]))
            j += 1
            continue
        if i >= len(old) or j >= len(new):
            raise Unsupported("view shapes do not pair up")
        ii, jj, po, pn = [i], [j], old[i], new[j]
        i, j = i + 1, j + 1
        while po != pn:
            if po < pn and i < len(old):
                ii.append(i)
                po *= old[i]
                i += 1
            elif pn < po and j < len(new):
                jj.append(j)
                pn *= new[j]
                j += 1
            else:
                raise Unsupported("view shapes do not pair up")
        out.append((ii, jj))
    return out


def reshape(mo: Moments, old: Sequence[int], new: Sequence[int]) -> Moments:
    """The moments of ``x.reshape(new)`` for x of shape ``old``.

    Each run of old dims that maps onto a run of new dims stays homogeneous when all its dims
    are; otherwise it is expanded to its full size and reshaped along with the data.
    """
    if math.prod(old) != math.prod(new) or 0 in old:
        raise Unsupported("reshape of an empty tensor")
    dst: list[int] = []
    expand = list(mo.m.shape)
    for ii, jj in _groups(old, new):
        feature = any(mo.m.shape[d] > 1 for d in ii)
        for d in ii:
            expand[d] = old[d] if feature else 1
        dst.extend(new[d] if feature else 1 for d in jj)
    m = mo.m.expand(expand).reshape(dst)
    v = mo.v.expand(expand).reshape(dst)
    if len(dst) > 1:
        m, v = compress(m, v)  # (B, S) -> (B*S) -> (B, S): the batch dim is homogeneous again
    return Moments(m, v, pos=reshaped(mo.pos, old, new))


def _same(x: torch.Tensor, first: torch.Tensor) -> bool:
    return float((x - first).abs().max()) <= 1e-9 * float(x.abs().max())


def compress(m: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Store once every dim along which all slices of m and v agree."""
    for d in range(m.dim()):
        if m.shape[d] > 1:
            m0, v0 = m.narrow(d, 0, 1), v.narrow(d, 0, 1)
            if _same(m, m0) and _same(v, v0):
                m, v = m0, v0
    return m, v
