"""Gaussian moments of activations: E[phi(z)^2], E[phi'(z)^2] and E[phi(z1) phi(z2)].

z ~ N(0, q); (z1, z2) bivariate normal with variances q and covariance q12. ReLU and LeakyReLU
use closed forms (the arc-cosine kernel, Cho & Saul 2009); every other elementwise activation is
PyTorch's own function evaluated at Gauss-Hermite nodes, with an even node count (an odd count
puts a node at z = 0, on a ReLU-like kink), or, for the single-variable moments that the
critical point needs at large scales, on a dense trapezoid grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

NODES = 64

FUNCS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": F.gelu, "silu": F.silu, "elu": F.elu,
    "selu": F.selu, "celu": F.celu, "softplus": F.softplus, "mish": F.mish,
    "hardtanh": F.hardtanh, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid,
    "softsign": F.softsign, "relu6": F.relu6, "identity": lambda z: z,
    "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
    "quick_gelu": lambda z: z * torch.sigmoid(1.702 * z),
}


@lru_cache(maxsize=1)
def _gh() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E[f(u)], u ~ N(0, 1) (probabilists' Hermite)."""
    x, w = np.polynomial.hermite_e.hermegauss(NODES)
    return x, w / math.sqrt(2 * math.pi)


def _slope(op: str) -> float | None:
    if op == "relu":
        return 0.0
    if op.startswith("leaky_relu"):
        return float(op.partition(":")[2] or 0.01)
    return None


def supported(op: str) -> bool:
    """Whether the theory has moments for this activation."""
    return _slope(op) is not None or op in FUNCS


@lru_cache(maxsize=4096)
def moments(op: str, q: float) -> tuple[float, float]:
    """(E[phi(z)^2], E[phi'(z)^2]) for z ~ N(0, q)."""
    a = _slope(op)
    if a is not None:
        return (1 + a * a) * q / 2, (1 + a * a) / 2
    t, wt = _dense(math.sqrt(max(q, 0.0)))
    with torch.enable_grad():
        z = (t * math.sqrt(max(q, 0.0))).requires_grad_(True)
        y = FUNCS[op](z)
        (dy,) = torch.autograd.grad(y.sum(), z)
    return float((wt * y.detach() ** 2).sum()), float((wt * dy**2).sum())


def _dense(sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A trapezoid grid in t (z = sigma t, t ~ N(0, 1)) that also resolves |z| < 10 finely.

    Gauss-Hermite misses an activation's slope when sigma is large (tanh' is a peak of width 1
    in z, i.e. 1/sigma in t); this grid adds 4001 points where |z| < 10.
    """
    t = torch.linspace(-10, 10, 4001, dtype=torch.float64)
    if sigma > 1:
        t = torch.cat([t, torch.linspace(-10 / sigma, 10 / sigma, 4001, dtype=torch.float64)])
        t = torch.unique(t)  # sorted
    dens = torch.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
    dt = torch.diff(t)
    w = torch.zeros_like(t)
    w[:-1] += dt / 2
    w[1:] += dt / 2
    return t, w * dens


def unit_moments(op: str, mu: torch.Tensor, var: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Per unit z_j ~ N(mu_j, var_j): (E[phi(z_j)], Var[phi(z_j)], mean_j E[phi'(z_j)^2])."""
    a = _slope(op)
    if a is not None:
        return _leaky_unit_moments(a, mu, var)
    u, w = _gh()
    nodes = torch.tensor(u, dtype=torch.float64)
    wt = torch.tensor(w, dtype=torch.float64)
    f = FUNCS[op]
    with torch.enable_grad():
        z = (mu[:, None] + var.clamp_min(0).sqrt()[:, None] * nodes[None, :]).requires_grad_(True)
        y = f(z)
        (dy,) = torch.autograd.grad(y.sum(), z)
    y = y.detach()
    mean = (y * wt).sum(1)
    second = (y * y * wt).sum(1)
    return mean, (second - mean * mean).clamp_min(0), float(((dy * dy) * wt).sum(1).mean())


@lru_cache(maxsize=4096)
def cross(op: str, q: float, q12: float) -> float:
    """E[phi(z1) phi(z2)] for variances q and covariance q12."""
    if q <= 0:
        return 0.0
    c = max(-1.0, min(1.0, q12 / q))
    a = _slope(op)
    if a is not None:
        theta = math.acos(c)
        relu = q / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * c)
        # leaky(z) = relu(z) - a relu(-z): the cross terms follow from the same kernel.
        neg = q / (2 * math.pi) * (math.sin(theta) - theta * c)  # E[relu(z1) relu(-z2)]
        return (1 + a * a) * relu - 2 * a * neg
    u, w = _gh()
    s = math.sqrt(q)
    z1 = torch.tensor(u, dtype=torch.float64)[:, None] * s
    z2 = s * (c * torch.tensor(u, dtype=torch.float64)[:, None]
              + math.sqrt(max(1 - c * c, 0.0)) * torch.tensor(u, dtype=torch.float64)[None, :])
    f = FUNCS[op]
    ww = torch.tensor(w, dtype=torch.float64)
    return float((ww[:, None] * ww[None, :] * f(z1) * f(z2)).sum())


def _leaky_unit_moments(a: float, mu: torch.Tensor, var: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Closed forms for leaky(z) = relu(z) - a relu(-z), z ~ N(mu, s^2) (a = 0: ReLU).

    E[relu(z)] = mu Phi(t) + s phi(t) and E[relu(z)^2] = (mu^2 + s^2) Phi(t) + mu s phi(t),
    with t = mu / s; relu(-z) is the same with -mu, and relu(z) relu(-z) = 0.
    """
    s = var.clamp_min(1e-300).sqrt()
    t = mu / s
    cdf = torch.special.ndtr(t)
    pdf = torch.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
    pos1 = mu * cdf + s * pdf
    neg1 = -mu * (1 - cdf) + s * pdf  # E[relu(-z)]
    pos2 = (mu * mu + var) * cdf + mu * s * pdf
    neg2 = (mu * mu + var) * (1 - cdf) - mu * s * pdf
    mean = pos1 - a * neg1
    second = pos2 + a * a * neg2
    slope2 = float((cdf + a * a * (1 - cdf)).mean())
    return mean, (second - mean * mean).clamp_min(0), slope2


@lru_cache(maxsize=4)
def _hermite(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return torch.tensor(x), torch.tensor(w / math.sqrt(2 * math.pi))


def elementwise_moments(op: str, mu: torch.Tensor, var: torch.Tensor, nodes: int = 24
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per element (E[phi(z)], Var[phi(z)], E[phi'(z)]) for z ~ N(mu, var), any shape.

    ReLU/LeakyReLU in closed form; smooth activations by Gauss-Hermite with ``nodes`` points,
    one node at a time (memory of one tensor), and the slope by Stein's lemma,
    E[phi'(z)] = E[phi(z) (z - mu)] / var, so no autograd is needed.
    """
    a = _slope(op)
    if a is not None:
        mean, v, _ = _leaky_unit_moments(a, mu.reshape(-1), var.reshape(-1))
        cdf = torch.special.ndtr(mu / var.clamp_min(1e-300).sqrt())
        return mean.reshape(mu.shape), v.reshape(mu.shape), cdf + (1 - cdf) * a
    f = FUNCS[op]
    u, w = _hermite(nodes)
    sd = var.clamp_min(0).sqrt()
    m1, m2, st = torch.zeros_like(mu), torch.zeros_like(mu), torch.zeros_like(mu)
    for node, weight in zip(u.tolist(), w.tolist(), strict=True):
        y = f(mu + sd * node)
        m1 += weight * y
        m2 += weight * y * y
        st += weight * y * node
    slope = torch.where(sd > 0, st / sd.clamp_min(1e-300), 0.0)
    return m1, (m2 - m1 * m1).clamp_min(0), slope
