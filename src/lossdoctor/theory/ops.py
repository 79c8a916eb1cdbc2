"""Rules for ops that change values: sums, products, linear maps, convolutions, activations.

Sums and products of independent tensors (a residual branch and its input are uncorrelated at
init: E[x W phi(x)] = 0 over zero-mean weights; He et al. 2016):

    E[a + b] = E[a] + E[b]            Var[a + b] = Var[a] + Var[b]
    E[a b]   = E[a] E[b]              E[(a b)^2] = E[a^2] E[b^2]

(a SwiGLU gate silu(x W_g) * (x W_u) is such a product). A linear map through the realised weights
moves the mean exactly and the independent fluctuations through the squared weights:
``m' = m W^T + b``, ``v' = v (W*W)^T``. A convolution does the same with its kernel summed over
the taps, each tap weighted by the share of output positions where it lands inside the input
(zero padding). Elementwise activations use the Gaussian moments of
:mod:`~lossdoctor.theory.activations` (closed forms for ReLU, Gauss-Hermite quadrature of
PyTorch's own function otherwise). Inverted dropout with keep probability p divides the second
moment by p and keeps the mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from lossdoctor.theory import positions
from lossdoctor.theory.activations import FUNCS, _gh, elementwise_moments, supported
from lossdoctor.theory.moments import Lift, Moments, Unsupported, make, pool


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    return kwargs[name] if name in kwargs else (args[i] if len(args) > i else default)


def _operand(lift: Lift, x: Any) -> Moments | float:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    mo = lift(x)
    if mo is None:
        raise Unsupported("operand")
    return mo


def _add(a: Moments | float, b: Moments | float, sign: float, nd: int) -> Moments:
    if isinstance(a, float) and isinstance(b, float):
        raise Unsupported("two scalars")
    if isinstance(b, float):
        assert isinstance(a, Moments)
        rect = (*a.rect[:3], a.rect[3] + sign * b) if a.rect is not None else None
        return make(a.m + sign * b, a.v, nd, key_var=a.key_var, pos=a.pos, rect=rect)
    if isinstance(a, float):
        return make(a + sign * b.m, b.v, nd, pos=b.pos)
    kv = a.key_var if a.key_var is not None and not bool((b.v > 0).any()) else None
    pos = positions.added((a.pos, a.v_mean), (b.pos, b.v_mean))
    return make(a.m + sign * b.m, a.v + b.v, nd, key_var=kv, pos=pos)


def add(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """add / sub (with alpha) of independent tensors or scalars."""
    a, b = args[0], _arg(args, kwargs, 1, "other", None)
    alpha = float(kwargs.get("alpha", 1.0))
    if a is b and isinstance(a, torch.Tensor):
        mo = _operand(lift, a)
        assert isinstance(mo, Moments)
        return make((1 + alpha) * mo.m, (1 + alpha) ** 2 * mo.v, out.dim(), pos=mo.pos)
    return _add(_operand(lift, a), _scaled(_operand(lift, b), alpha), 1.0, out.dim())


def sub(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """a - alpha b."""
    a, b = args[0], _arg(args, kwargs, 1, "other", None)
    alpha = float(kwargs.get("alpha", 1.0))
    return _add(_operand(lift, a), _scaled(_operand(lift, b), alpha), -1.0, out.dim())


def rsub(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """other - self."""
    return _add(_operand(lift, args[1]), _operand(lift, args[0]), -1.0, out.dim())


def neg(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """-x."""
    mo = _operand(lift, args[0])
    assert isinstance(mo, Moments)
    return Moments(-mo.m, mo.v, pos=mo.pos)


def _scaled(x: Moments | float, c: float) -> Moments | float:
    if c == 1.0:
        return x
    if isinstance(x, float):
        return x * c
    kv = x.key_var * c * c if x.key_var is not None else None
    rect = (x.rect[0], x.rect[1], x.rect[2] * c, x.rect[3] * c) if x.rect is not None else None
    return Moments(x.m * c, x.v * c * c, x.probs, kv, x.pos, rect)


def _mul(a: Moments | float, b: Moments | float, nd: int) -> Moments:
    if isinstance(a, float):
        a, b = b, a
    if isinstance(a, float):
        raise Unsupported("two scalars")
    if isinstance(b, float):
        out = _scaled(a, b)
        assert isinstance(out, Moments)
        return make(out.m, out.v, nd, probs=out.probs, key_var=out.key_var, pos=out.pos,
                    rect=out.rect)
    m = a.m * b.m
    v = a.s * b.s - m * m
    if not bool((b.v > 0).any()):  # times a constant: the correlation is kept
        return make(m, v, nd, pos=a.pos)
    if not bool((a.v > 0).any()):
        return make(m, v, nd, pos=b.pos)
    pos = positions.multiplied((a.pos, a.m2_mean, a.v_mean), (b.pos, b.m2_mean, b.v_mean),
                               float(v.mean()))
    return make(m, v, nd, pos=pos)


def mul(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """a * b for independent a, b; x * x uses the Gaussian fourth moment."""
    a, b = args[0], _arg(args, kwargs, 1, "other", None)
    if a is b and isinstance(a, torch.Tensor):
        mo = _operand(lift, a)
        assert isinstance(mo, Moments)
        m, v = mo.m, mo.v
        mean = m * m + v
        fourth = m**4 + 6 * m * m * v + 3 * v * v
        return make(mean, fourth - mean * mean, out.dim(),
                    pos=positions.multiplied((mo.pos, mo.m2_mean, mo.v_mean),
                                             (mo.pos, mo.m2_mean, mo.v_mean),
                                             float((fourth - mean * mean).mean())))
    return _mul(_operand(lift, a), _operand(lift, b), out.dim())


def div(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """a / c for a constant or scalar c."""
    if kwargs.get("rounding_mode") is not None:
        raise Unsupported("rounding division")
    a, b = _operand(lift, args[0]), _operand(lift, _arg(args, kwargs, 1, "other", None))
    if isinstance(b, float):
        return _mul(a, 1.0 / b, out.dim())
    if bool((b.v > 0).any()):
        raise Unsupported("division by a random tensor")
    return _mul(a, Moments(1.0 / b.m, torch.zeros_like(b.m)), out.dim())


def _affine(mo: Moments, w: torch.Tensor, b: torch.Tensor | None, nd: int) -> Moments:
    """x W^T + b on the last dim: exact mean, fluctuations through W*W."""
    w = w.detach().double()
    m = mo.m.expand(*mo.m.shape[:-1], w.shape[1])
    v = mo.v.expand(*mo.v.shape[:-1], w.shape[1])
    mean = m @ w.T
    if b is not None:
        mean = mean + b.detach().double()
    pos = mo.pos if mo.pos is not None and mo.pos.dim < -1 else None
    return make(mean, v @ (w * w).T, nd, pos=pos)


def linear(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """F.linear(x, W, b)."""
    mo = lift(args[0])
    w, b = _arg(args, kwargs, 1, "weight", None), _arg(args, kwargs, 2, "bias", None)
    if mo is None or not isinstance(w, torch.Tensor) or not _fixed(lift, w, b):
        raise Unsupported("linear")
    return _affine(mo, w, b, out.dim())


def addmm(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """addmm(b, x, W) = b + x @ W (Hugging Face's Conv1D: weight stored (in, out))."""
    b, x, w = args[0], _arg(args, kwargs, 1, "mat1", None), _arg(args, kwargs, 2, "mat2", None)
    if float(kwargs.get("beta", 1)) != 1 or float(kwargs.get("alpha", 1)) != 1:
        raise Unsupported("scaled addmm")
    mo = lift(x)
    if mo is None or not _fixed(lift, w, b):
        raise Unsupported("addmm")
    return _affine(mo, w.T, b, out.dim())


def _fixed(lift: Lift, *ts: Any) -> bool:
    """Every tensor given is a constant (weights), not input-dependent."""
    return not any(isinstance(t, torch.Tensor) and lift.random(t) for t in ts)


def conv(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """conv1d/2d/3d: the mean map through the kernel, the variance map through kernel^2.

    Statistics keep their spatial dims: zero padding gives the border fewer taps (and in a
    residual stream the deficit accumulates), which the same convolution applied to the moment
    maps reproduces exactly; pixels are taken as independent fluctuations.
    """
    x = args[0]
    mo = lift(x)
    w, b = _arg(args, kwargs, 1, "weight", None), _arg(args, kwargs, 2, "bias", None)
    if mo is None or not isinstance(w, torch.Tensor) or not _fixed(lift, w, b):
        raise Unsupported("conv")
    n = w.dim() - 2
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    rest = [_arg(args, kwargs, i, k, d) for i, k, d in
            ((3, "stride", 1), (4, "padding", 0), (5, "dilation", 1), (6, "groups", 1))]
    pooled = pool(mo, (0,))
    size = (1, pooled.m.shape[1], *x.shape[2:])
    m_in, v_in = pooled.m.expand(size), pooled.v.expand(size)
    wd = w.detach().double()
    bias = b.detach().double() if isinstance(b, torch.Tensor) else None
    mean = fn(m_in, wd, bias, *rest)
    var = fn(v_in, wd * wd, None, *rest)
    return make(mean, var, out.dim())


def layer_norm(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """Per token: y = g (x - mean) / sqrt(var + eps) + b over the normalised dims.

    Across D features the token's own mean and variance are the averages of the feature means
    and second moments (law of large numbers), so each feature is centred and rescaled by them.
    """
    mo = lift(args[0])
    shape = tuple(_arg(args, kwargs, 1, "normalized_shape", ()))
    w, b = _arg(args, kwargs, 2, "weight", None), _arg(args, kwargs, 3, "bias", None)
    eps = float(_arg(args, kwargs, 4, "eps", 1e-5))
    return _norm(lift, mo, len(shape), w, b, eps, centre=True, nd=out.dim(), shape=out.shape)


def rms_norm(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """y = g x / sqrt(mean(x^2) + eps) over the normalised dims."""
    mo = lift(args[0])
    shape = tuple(_arg(args, kwargs, 1, "normalized_shape", ()))
    w = _arg(args, kwargs, 2, "weight", None)
    eps = _arg(args, kwargs, 3, "eps", None)
    eps = float(eps) if eps is not None else float(torch.finfo(out.dtype).eps)
    return _norm(lift, mo, len(shape), w, None, eps, centre=False, nd=out.dim(), shape=out.shape)


def _norm(lift: Lift, mo: Moments | None, k: int, w: Any, b: Any, eps: float, *, centre: bool,
          nd: int, shape: Any) -> Moments:
    if mo is None or not _fixed(lift, w, b):
        raise Unsupported("norm")
    dims = tuple(range(mo.m.dim() - k, mo.m.dim()))
    size = [int(s) for s in shape[-k:]] if k else []
    m = mo.m.expand(*mo.m.shape[:-k], *size) if k else mo.m
    v = mo.v.expand(*mo.v.shape[:-k], *size) if k else mo.v
    if centre:
        m = m - m.mean(dims, keepdim=True)
    scale2 = (m * m + v).mean(dims, keepdim=True) + eps
    gain = w.detach().double() if isinstance(w, torch.Tensor) else torch.ones(())
    mean = gain * m / scale2.sqrt()
    if isinstance(b, torch.Tensor):
        mean = mean + b.detach().double()
    pos = mo.pos if mo.pos is not None and mo.pos.dim < -k else None
    return make(mean, gain * gain * v / scale2, nd, pos=pos)


def batch_norm(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """Train mode: each channel standardised by its batch mean and variance (pooled over the
    positions' moments); eval mode: the affine map of the running statistics."""
    mo = lift(args[0])
    rm, rv = _arg(args, kwargs, 1, "running_mean", None), _arg(args, kwargs, 2, "running_var", None)
    w, b = _arg(args, kwargs, 3, "weight", None), _arg(args, kwargs, 4, "bias", None)
    training = bool(_arg(args, kwargs, 5, "training", False))
    eps = float(_arg(args, kwargs, 7, "eps", 1e-5))
    if mo is None or not _fixed(lift, w, b):
        raise Unsupported("batch_norm")
    nd = out.dim()
    shape = (1, -1) + (1,) * (nd - 2)
    g = w.detach().double().reshape(shape) if isinstance(w, torch.Tensor) else torch.ones(())
    beta = b.detach().double().reshape(shape) if isinstance(b, torch.Tensor) else 0.0
    if training or rm is None:
        channel = pool(mo, tuple(d for d in range(nd) if d != 1))
        centre, var = channel.m, channel.v
    else:
        centre, var = rm.detach().double().reshape(shape), rv.detach().double().reshape(shape)
    scale = g / (var + eps).sqrt()
    rect = None
    if mo.rect is not None:  # a per-channel affine map keeps the a relu(z) + b form
        rect = (mo.rect[0], mo.rect[1], mo.rect[2] * scale, (mo.rect[3] - centre) * scale + beta)
    return make((mo.m - centre) * scale + beta, mo.v * scale * scale, nd, rect=rect)


def embedding_rows(ids: torch.Tensor, weight: torch.Tensor, nd: int) -> Moments:
    """Moments of table rows looked up by i.i.d. token ids: the mixture over the ids seen."""
    uniq, counts = torch.unique(ids, return_counts=True)
    rows = weight.detach()[uniq].double()
    c = counts.double() / counts.sum()
    m = c @ rows
    s = c @ (rows * rows)
    return make(m, s - m * m, nd)


def dropout(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """F.dropout(x, p, training)."""
    mo = lift(args[0])
    if mo is None:
        raise Unsupported("dropout")
    training = bool(_arg(args, kwargs, 2, "training", True))
    return drop(mo, float(_arg(args, kwargs, 1, "p", 0.5)) if training else 0.0)


def drop(mo: Moments, p: float) -> Moments:
    """Inverted dropout: E[(mask x / keep)^2] = E[x^2] / keep, the mean kept."""
    if p == 0:
        return mo
    s = mo.s / (1 - p)
    v = s - mo.m * mo.m
    pos = positions.scaled(mo.pos, mo.v_mean / float(v.mean())) if float(v.mean()) > 0 else None
    return Moments(mo.m, v, mo.probs, pos=pos)


ACT_ARGS = {"leaky_relu": (1, "negative_slope", 0.01)}


def activation(op: str) -> Callable[[Lift, tuple[Any, ...], dict[str, Any], Any], Moments]:
    """The rule of one elementwise activation."""

    def rule(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
        mo = lift(args[0])
        if mo is None:
            raise Unsupported(op)
        name = op
        if op == "leaky_relu":
            name = f"leaky_relu:{_arg(args, kwargs, 1, 'negative_slope', 0.01)}"
        if op == "gelu" and kwargs.get("approximate", "none") == "tanh":
            name = "gelu_tanh"
        if not supported(name):
            raise Unsupported(op)
        return apply(mo, name, out.dim())

    return rule


def apply(mo: Moments, name: str, nd: int) -> Moments:
    """phi(x) elementwise for x ~ N(m, v) per element, or x = a relu(z) + b (``rect``)."""
    if mo.rect is not None:
        mean, var = rectified(mo.rect, name, mo.m.shape)
        return make(mean, var, nd)
    mean, var, slope = elementwise_moments(name, mo.m, mo.v)
    pos = None
    if mo.pos is not None and float(var.mean()) > 0:
        pos = positions.scaled(mo.pos, float((slope * slope * mo.v).mean() / var.mean()))
    rect = (mo.m, mo.v, torch.ones(()), torch.zeros(())) if name == "relu" else None
    return make(mean, var, nd, pos=pos, rect=rect)


def rectified(rect: tuple[torch.Tensor, ...], name: str, shape: Any
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of phi(a relu(z) + b), z ~ N(mu, var), by Gauss-Hermite over z."""
    mu, var, a, b = (t.expand(shape).reshape(-1) for t in rect)
    nodes, weights = _gh()
    u = torch.tensor(nodes, dtype=torch.float64)
    w = torch.tensor(weights, dtype=torch.float64)
    z = mu[:, None] + var.clamp_min(0).sqrt()[:, None] * u[None, :]
    x = a[:, None] * torch.relu(z) + b[:, None]
    y = torch.relu(x) if name == "relu" else FUNCS[name](x) if name in FUNCS else None
    if y is None:
        raise Unsupported(name)
    mean = (y * w).sum(1)
    second = (y * y * w).sum(1)
    return mean.reshape(shape), (second - mean * mean).clamp_min(0).reshape(shape)


ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "sigmoid", "elu", "leaky_relu", "softplus",
               "mish", "hardtanh", "relu6", "hardswish", "selu", "celu", "hardsigmoid",
               "softsign")
