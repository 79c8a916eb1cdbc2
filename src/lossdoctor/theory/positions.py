"""Correlation between the positions of one sequence, created by attention and carried onwards.

Tokens drawn independently give independent positions, but an attention layer mixes them: at
causal position s the output at init is close to the mean of the values at 0..s, so neighbouring
outputs share most of their fluctuation, and that shared part survives the next attention's
averaging instead of shrinking by sum p^2. :class:`Pos` keeps, for one dim of a tensor, the
correlation matrix rho (S x S) of the fluctuation between positions, one matrix for all features
(a linear map over features, a per-token norm and a constant scale leave it unchanged).

Rules for the others, with v the fluctuation variance and m the mean (averaged over features):

- independent sum a + b: Cov = rho_a v_a + rho_b v_b;
- independent product a b: Cov = (rho_a v_a + m_a^2)(rho_b v_b + m_b^2) - m_a^2 m_b^2;
- elementwise phi: Cov(phi(x_s), phi(x_t)) ~ E[phi']^2 Cov(x_s, x_t) (Price's theorem to first
  order; exact for a linear phi, and pre-activations at a transformer's init are small);
- dropout keeps the covariance and raises the variance;
- attention o = p V with probabilities P = E[p]: Cov(o) = P Sigma_V P^T + diag(sum_t Var p_st) v.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Pos:
    """Positions along ``dim`` (counted from the right, < 0): index i is position
    ``(i // inner) % size``; ``rho`` is their correlation matrix."""

    dim: int
    inner: int
    size: int
    rho: torch.Tensor

    def with_rho(self, rho: torch.Tensor) -> Pos:
        """The same location with another correlation matrix."""
        return Pos(self.dim, self.inner, self.size, rho)


def fits(pos: Pos | None, shape: Sequence[int]) -> bool:
    """Whether the positions still describe a tensor of this shape."""
    return pos is not None and -len(shape) <= pos.dim < 0 and \
        shape[pos.dim] % (pos.size * pos.inner) == 0


def reshaped(pos: Pos | None, old: Sequence[int], new: Sequence[int]) -> Pos | None:
    """A view keeps row-major order: find the dim of ``new`` that holds the same stride."""
    if pos is None or not fits(pos, old):
        return None
    stride = math.prod(old[len(old) + pos.dim + 1:]) * pos.inner
    after = 1
    for d in range(len(new) - 1, -1, -1):
        if after <= stride < after * new[d] and stride % after == 0:
            inner = stride // after
            if new[d] % (inner * pos.size) == 0 or (new[d] == inner * pos.size):
                return Pos(d - len(new), inner, pos.size, pos.rho)
            return None
        after *= new[d]
    return None


def permuted(pos: Pos | None, dims: Sequence[int], nd: int) -> Pos | None:
    """Follow a permute: the new dim is where the old one went."""
    if pos is None:
        return None
    old = nd + pos.dim
    dims = [d % nd for d in dims]
    if old not in dims:
        return None
    return Pos(dims.index(old) - nd, pos.inner, pos.size, pos.rho)


def _mean(x: torch.Tensor) -> float:
    return float(x.mean())


def added(a: tuple[Pos | None, float], b: tuple[Pos | None, float]) -> Pos | None:
    """Positions of a + b for independent a, b with fluctuation variances (averages) v."""
    pa, va = a
    pb, vb = b
    p = pa or pb
    if p is None or (pa is not None and pb is not None and pa.size != pb.size) or va + vb <= 0:
        return p
    eye = torch.eye(p.size, dtype=torch.float64)
    ra = pa.rho if pa is not None else eye
    rb = pb.rho if pb is not None else eye
    return p.with_rho((ra * va + rb * vb) / (va + vb))


def multiplied(a: tuple[Pos | None, float, float], b: tuple[Pos | None, float, float],
               v_out: float) -> Pos | None:
    """Positions of a * b for independent a, b given (pos, mean^2, var) averages."""
    pa, ma2, va = a
    pb, mb2, vb = b
    p = pa or pb
    if p is None or v_out <= 0 or (pa is not None and pb is not None and pa.size != pb.size):
        return p
    eye = torch.eye(p.size, dtype=torch.float64)
    ra = pa.rho if pa is not None else eye
    rb = pb.rho if pb is not None else eye
    cov = (ra * va + ma2) * (rb * vb + mb2) - ma2 * mb2
    return p.with_rho(_unit_diag(cov))


def scaled(pos: Pos | None, factor: float) -> Pos | None:
    """Off-diagonal covariance times ``factor`` relative to the variance (phi, dropout)."""
    if pos is None:
        return None
    eye = torch.eye(pos.size, dtype=torch.float64)
    return pos.with_rho((pos.rho * factor) * (1 - eye) + eye)


def _unit_diag(cov: torch.Tensor) -> torch.Tensor:
    d = cov.diagonal().clamp_min(1e-300).sqrt()
    return (cov / d[:, None] / d[None, :]).clamp(-1, 1)


def attended(probs_m: torch.Tensor, probs_v: torch.Tensor, v_pos: Pos | None,
             v_var: torch.Tensor) -> tuple[torch.Tensor, Pos]:
    """Cov of o = p V over query positions; returns the extra variance from correlated values
    (per query, relative to sum_t E[p^2] v) and the output's positions.

    ``probs_m``, ``probs_v``: (S, T) mean and variance of the probabilities (averaged over heads
    and batch); ``v_var``: (T,) the values' average fluctuation variance per key position.
    """
    t = probs_m.shape[-1]
    rho = v_pos.rho if v_pos is not None and v_pos.size == t else torch.eye(t, dtype=torch.float64)
    sd = v_var.clamp_min(0).sqrt()
    sigma = rho * sd[:, None] * sd[None, :]
    cov = probs_m @ sigma @ probs_m.T
    diag_extra = (probs_v * v_var[None, :]).sum(-1)
    independent = (probs_m * probs_m * v_var[None, :]).sum(-1)
    extra = cov.diagonal() - independent
    cov = cov + torch.diag(diag_extra)
    return extra, Pos(-2, 1, probs_m.shape[0], _unit_diag(cov))
