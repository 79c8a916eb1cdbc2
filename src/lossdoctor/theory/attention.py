"""Attention at initialisation: logits, softmax over keys, and the probability-weighted sum.

Logits ``l = q k^T * scale`` of independent q and k have mean ``m_q m_k`` and, for a fixed query,
variance across keys ``sigma^2 = scale^2 sum_j E[q_j^2] Var[k_j]`` (a shift common to all keys
cancels in the softmax). With per-key means mu_t (a mask adds -inf) and independent Gaussian
fluctuations, E[p_t] and E[p_t^2] follow by quadrature (:func:`softmax_moments`); for sigma = 0
attention is uniform over the n allowed keys and sum p^2 = 1/n. With small logits at init
(Xiong et al. 2020; weights of std 0.02 give sigma^2 ~ 1e-3) each row is close to uniform over
its allowed keys. The output
``o = sum_t p_t V_t`` of values independent across positions then has mean ``sum_t E[p_t] m_V``
and variance ``sum_t E[p_t^2] Var[V_t]``: attention shrinks the fluctuation by sum p^2 (1/(s+1)
at causal position s) and keeps the mean.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from lossdoctor.theory.moments import Lift, Moments, Unsupported, make, pool
from lossdoctor.theory.ops import drop
from lossdoctor.theory.positions import attended


def _full_last2(s: torch.Tensor, rows: int, cols: int, left: bool) -> torch.Tensor:
    """Expand the contracted dim (last of the left operand, -2 of the right) to its size."""
    if left:
        return s.expand(*s.shape[:-1], cols)
    return s.expand(*s.shape[:-2], rows, s.shape[-1])


def product(a: Moments, b: Moments, inner: int, nd: int) -> Moments:
    """a @ b for independent a and b (either may be a constant: zero variance)."""
    if a.m.dim() < 2 or b.m.dim() < 2:
        raise Unsupported("matmul of vectors")
    am, av = _full_last2(a.m, 0, inner, True), _full_last2(a.v, 0, inner, True)
    bm, bv = _full_last2(b.m, inner, 0, False), _full_last2(b.v, inner, 0, False)
    a_s = am * am + av
    mean = am @ bm
    if a.probs:
        # rows of a sum to one: their fluctuation does not move the mean of b
        lead = tuple(range(am.dim() - 2))
        p_m, p_v = am.mean(lead), av.mean(lead)
        v_keys = bv.mean(tuple(d for d in range(bv.dim()) if d != bv.dim() - 2))
        extra, pos = attended(p_m, p_v, b.pos, v_keys)
        feature = bv.mean(-2, keepdim=True) / v_keys.mean().clamp_min(1e-300)
        out = make(mean, a_s @ bv + extra[:, None] * feature, nd, pos=pos)
        if out.m.dim() > 2 and out.m.shape[0] > 1:
            # per-example masks (padding) made the statistics per example: keep their mixture,
            # which has the same second moment, so the cost does not grow with the batch
            pooled = pool(out, (0,))
            out = Moments(pooled.m, pooled.v, pos=out.pos)
        return out
    s = a_s @ (bm * bm + bv) - (am * am) @ (bm * bm) + mean * mean
    return make(mean, s - mean * mean, nd, key_var=a_s @ bv)


def matmul(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """matmul / mm / bmm / @ of independent operands."""
    x, y = args[0], args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("mat2"))
    a, b = lift(x), lift(y)
    if a is None or b is None or not isinstance(y, torch.Tensor) or x.dim() < 2 or y.dim() < 2:
        raise Unsupported("matmul")
    return product(a, b, int(x.shape[-1]), out.dim())


@lru_cache(maxsize=1)
def _hermite(n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights for E[f(u)], u ~ N(0, 1); sigmoid is smooth, 24 nodes suffice."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return torch.tensor(x), torch.tensor(w / math.sqrt(2 * math.pi))


def softmax_moments(mu: torch.Tensor, sigma2: torch.Tensor, nd: int) -> Moments:
    """E[p] and Var[p] of softmax over the last dim for logits N(mu_t, sigma2_t), independent.

    p_t = sigmoid(l_t - log R_t) with R_t = sum_{u != t} e^{l_u}. R_t is a sum of log-normals,
    replaced by the log-normal of the same mean and variance (Fenton-Wilkinson); then
    d = l_t - log R_t is Gaussian and E[p_t], E[p_t^2] are one-dimensional Gauss-Hermite
    integrals of sigmoid(d) and sigmoid(d)^2. Rows are renormalised to sum to one.
    """
    top = mu.amax(-1, keepdim=True)
    mu = torch.nan_to_num(mu - torch.where(torch.isfinite(top), top, 0.0), nan=-torch.inf)
    w = torch.exp(mu + sigma2 / 2)                         # E[e^l]
    a = torch.exp(2 * mu + 2 * sigma2)                     # E[e^{2l}]
    e_r = (w.sum(-1, keepdim=True) - w).clamp_min(0)       # E[R_t]
    v_r = ((a - w * w).sum(-1, keepdim=True) - (a - w * w)).clamp_min(0)
    alone = e_r <= 1e-300
    e_r = torch.where(alone, 1.0, e_r)
    b2 = torch.log1p(v_r / (e_r * e_r))
    d_mean = mu - (torch.log(e_r) - b2 / 2)
    d_sd = (sigma2 + b2).clamp_min(0).sqrt()
    nodes, weights = _hermite()
    p, p2 = torch.zeros_like(mu), torch.zeros_like(mu)
    for node, weight in zip(nodes, weights, strict=True):  # one slice at a time: small memory
        sig = torch.sigmoid(d_mean + d_sd * node)
        p = p + weight * sig
        p2 = p2 + weight * sig * sig
    finite = torch.isfinite(mu)
    p = torch.where(alone & finite, 1.0, torch.where(finite, p, 0.0))
    p2 = torch.where(alone & finite, 1.0, torch.where(finite, p2, 0.0))
    total = p.sum(-1, keepdim=True)
    p = p / torch.where(total > 0, total, 1.0)
    return make(p, (p2 - p * p).clamp_min(0), nd, probs=True)


def softmax(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """softmax over the last dim of attention logits."""
    mo = lift(args[0])
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    if mo is None or dim is None or dim % out.dim() != out.dim() - 1:
        raise Unsupported("softmax")
    n = int(out.shape[-1])
    mu = mo.m.expand(*mo.m.shape[:-1], n)
    kv = mo.key_var if mo.key_var is not None else mo.v
    return softmax_moments(mu, kv.expand_as(mu), out.dim())


def _heads(mo: Moments, heads: int) -> Moments:
    """Repeat key/value statistics to the query heads (grouped-query attention)."""
    h = mo.m.shape[-3]
    if h in (1, heads):
        return mo
    return Moments(mo.m.repeat_interleave(heads // h, -3), mo.v.repeat_interleave(heads // h, -3),
                   pos=mo.pos)


def sdpa(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale)."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
    a = dict(zip(names, args, strict=False)) | kwargs
    q, k, v = a["query"], a["key"], a["value"]
    mq, mk, mv = lift(q), lift(k), lift(v)
    if mq is None or mk is None or mv is None or q.dim() < 3:
        raise Unsupported("sdpa")
    heads = int(q.shape[-3])
    mk, mv = _heads(mk, heads), _heads(mv, heads)
    scale = a.get("scale") or 1.0 / float(q.shape[-1]) ** 0.5
    kt = Moments(mk.m.transpose(-1, -2), mk.v.transpose(-1, -2))
    logits = product(mq, kt, int(q.shape[-1]), q.dim())
    mu = logits.m * scale
    kv = logits.key_var * scale * scale if logits.key_var is not None else logits.v
    rows, cols = int(q.shape[-2]), int(k.shape[-2])
    mask = a.get("attn_mask")
    if isinstance(mask, torch.Tensor):
        if mask.dtype == torch.bool:
            mask = torch.zeros(mask.shape, dtype=torch.float64).masked_fill(~mask, -torch.inf)
        cm = lift(mask)
        if cm is None or bool((cm.v > 0).any()):
            raise Unsupported("random attention mask")
        mu = mu + cm.m
    if a.get("is_causal"):
        causal = torch.ones(rows, cols, dtype=torch.bool).tril()
        mu = mu + torch.zeros(rows, cols, dtype=torch.float64).masked_fill(~causal, -torch.inf)
    mu = mu.expand(*mu.shape[:-2], rows, cols)
    probs = softmax_moments(mu, kv.expand_as(mu), q.dim())
    p = float(a.get("dropout_p") or 0.0)
    probs = drop(probs, p)
    return product(probs, mv, cols, out.dim())

