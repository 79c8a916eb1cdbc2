"""Mean-field signal propagation through a chain of layers (Poole et al. 2016; Schoenholz et al.
2017), with the cross-example covariance so the spread of the first loss is predicted too.

For a linear layer with zero-mean weights of variance s_w^2 and biases of variance s_b^2, over the
weight ensemble ``E[z_a z_b] = s_w^2 fan_in E[x_a x_b] + s_b^2`` for examples a, b (a = b gives
the second moment q, a != b the covariance q12). An activation maps (q, q12) to
(E[phi(z)^2], E[phi(z1) phi(z2)]); inverted dropout with keep probability p divides the second
moment by p and leaves the covariance; a normalisation layer resets the scale. The per-layer
gradient gain is chi = s_w^2 fan_in E[phi'(z)^2] / p. Layers outside the theory are named and,
when a batch is given, the measured value takes over from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from lossdoctor.probe.kinds import fan_in, is_norm, module_kind
from lossdoctor.theory.activations import cross, moments, supported, unit_moments


@dataclass(frozen=True)
class LayerPrediction:
    """Predicted statistics after one layer.

    Attributes:
        name: module path.
        op: module class or activation name.
        q: predicted second moment of the layer's output (pre-activation for linear layers).
        rms: sqrt(q).
        q12: predicted covariance of the output between two different examples.
        chi: gradient gain of an activation layer (None for others).
        in_theory: False when the layer is outside the theory (then q is measured, if possible).
    """

    name: str
    op: str
    q: float
    rms: float
    q12: float
    chi: float | None = None
    in_theory: bool = True


@dataclass(frozen=True)
class Prediction:
    """What the architecture and its init predict for the first batch.

    Attributes:
        layers: per-layer predictions in order.
        logit_std: standard deviation of the output over the weight ensemble.
        classes: number of classes the loss was predicted for.
        initial_loss: expected cross-entropy of the first batch.
        band: 5% and 95% quantiles of the first batch's cross-entropy.
        activation: the hidden activation.
        recommended_gain: g with Var(w) = g^2 / fan_in that preserves the second moment at the
            first hidden layer's scale.
        critical_gain: g at which chi = 1 at the fixed point (zero biases).
        notes: layers outside the theory and what was done about them.
        network_loss: expected first cross-entropy of this particular network (its realised
            per-class output means and variances), as opposed to ``initial_loss`` over all
            draws of the init.
    """

    layers: tuple[LayerPrediction, ...]
    logit_std: float
    classes: int | None
    initial_loss: float | None
    band: tuple[float, float] | None
    activation: str | None
    recommended_gain: float | None
    critical_gain: float | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    network_loss: float | None = None

    def compare(self, measured: Any) -> list[dict[str, Any]]:
        """Prediction next to measurement for every layer both have.

        Args:
            measured: a :class:`~lossdoctor.Report` or :class:`~lossdoctor.trace.Trace` from
                ``diagnose`` on the same model.
        """
        trace = getattr(measured, "trace", measured)
        by_name: dict[str, float] = {}
        for layer in trace.layers:
            if layer.phase != "model":
                continue
            by_name.setdefault(layer.name, layer.output.rms)
        rows = []
        for p in self.layers:
            m = by_name.get(p.name)
            rows.append({"layer": p.name, "op": p.op, "predicted_rms": p.rms, "measured_rms": m,
                         "ratio": p.rms / m if m else None, "in_theory": p.in_theory})
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        from dataclasses import asdict

        return asdict(self)


def activation_op(m: nn.Module) -> str | None:
    """Theory name of an activation module (``leaky_relu:0.01`` carries its slope)."""
    kind = module_kind(m)
    if kind is None or kind[0] != "activation":
        return None
    op = kind[1]
    if op == "leaky_relu":
        return f"leaky_relu:{getattr(m, 'negative_slope', 0.01)}"
    return op


def _chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n or type(m).__name__, m) for n, m in model.named_modules() if not list(m.children())]


def _mean_sq(t: torch.Tensor | None) -> float:
    return 0.0 if t is None or t.numel() == 0 else float(t.detach().double().pow(2).mean())


def input_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature (dim 1) mean and variance of an input batch."""
    units = x.detach().double().movedim(1, 0).reshape(x.shape[1], -1)
    return units.mean(1), units.var(1, unbiased=False)


@lru_cache(maxsize=64)
def critical_gain(op: str) -> float | None:
    """g with chi = g^2 E[phi'(z)^2] = 1 at the fixed point q* = g^2 E[phi(z)^2], zero biases."""
    if not supported(op):
        return None

    def chi(g: float) -> float:
        q = 1.0
        for _ in range(60):
            q = max(g * g * moments(op, q)[0], 1e-12)
        return g * g * moments(op, q)[1]

    lo, hi = 0.1, 5.0
    if (chi(lo) - 1) * (chi(hi) - 1) > 0:
        return None
    for _ in range(40):
        mid = (lo + hi) / 2
        if (chi(mid) - 1) * (chi(lo) - 1) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def network_cross_entropy(mu: torch.Tensor, var: torch.Tensor, draws: int = 4000) -> float:
    """E[cross-entropy] for logits z_k ~ N(mu_k, var_k) independent (this network's output)."""
    rng = np.random.default_rng(0)
    m, s = mu.double().numpy(), var.double().clamp_min(0).sqrt().numpy()
    z = m + s * rng.standard_normal((draws, m.size))
    y = rng.integers(0, m.size, size=draws)
    mx = z.max(axis=1, keepdims=True)
    lse = mx[:, 0] + np.log(np.exp(z - mx).sum(axis=1))
    return float((lse - z[np.arange(draws), y]).mean())


def cross_entropy_band(q: float, q12: float, classes: int, batch: int,
                       draws: int = 200) -> tuple[float, tuple[float, float]]:
    """Mean and 5-95% band of a batch's mean cross-entropy for logits with these moments.

    Per example the K logits are i.i.d. N(0, q); two examples share a per-class offset of
    variance q12 (the part of the logits every input has in common).
    """
    rng = np.random.default_rng(0)
    shared = math.sqrt(max(q12, 0.0))
    own = math.sqrt(max(q - max(q12, 0.0), 0.0))
    batch = max(1, min(batch, max(1, 400_000 // (classes * draws))))
    o = rng.standard_normal((draws, 1, classes)) * shared
    e = rng.standard_normal((draws, batch, classes)) * own
    z = o + e
    y = rng.integers(0, classes, size=(draws, batch))
    mx = z.max(axis=2, keepdims=True)
    lse = mx[..., 0] + np.log(np.exp(z - mx).sum(axis=2))
    ce = (lse - np.take_along_axis(z, y[..., None], axis=2)[..., 0]).mean(axis=1)
    return float(ce.mean()), (float(np.quantile(ce, 0.05)), float(np.quantile(ce, 0.95)))


def _linear_moments(m: nn.Module, mu: torch.Tensor, var: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, float, float] | None:
    """Per-unit mean and variance after a linear or (groups = 1) conv layer, None if unsupported.

    The mean goes through the realised weights exactly (W mu + b); the per-example fluctuation,
    independent across units, adds (W * W) var. A conv sums its kernel: spatial positions are
    treated alike (borders ignored). Also returns mean(W^2) fan_in and mean(b^2).
    """
    weight = m.weight
    assert isinstance(weight, torch.Tensor)
    w = weight.detach()  # kept in its own dtype: the products below are matrix-vector only
    b = getattr(m, "bias", None)
    sq = w * w
    if isinstance(m, nn.Linear):
        w_mean, w_sq = w, sq
    elif isinstance(m, nn.modules.conv._ConvNd) and not isinstance(
            m, nn.modules.conv._ConvTransposeNd) and m.groups == 1:
        dims = tuple(range(2, w.dim()))
        w_mean, w_sq = w.sum(dims), sq.sum(dims)
    else:
        return None
    if w_mean.shape[1] != mu.shape[0]:
        return None
    bias = b.detach().double() if b is not None else None
    out_mu = (w_mean @ mu.to(w.dtype)).double() + (bias if bias is not None else 0.0)
    out_var = (w_sq @ var.to(w.dtype)).double()
    gain2 = float(sq.mean()) * (fan_in(m) or 0)
    b2 = float((bias * bias).mean()) if bias is not None and bias.numel() else 0.0
    return out_mu, out_var, gain2, b2


def _norm_moments(m: nn.Module, mu: torch.Tensor, var: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor] | None:
    gamma = getattr(m, "weight", None)
    beta = getattr(m, "bias", None)
    n = mu.shape[0]
    g = gamma.detach().double().reshape(-1) if gamma is not None else torch.ones(n, dtype=torch.float64)
    bb = beta.detach().double().reshape(-1) if beta is not None else torch.zeros(n, dtype=torch.float64)
    if g.numel() != n:
        return None
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        if not m.training:
            return None  # running statistics: outside the theory
        return bb.clone(), g * g  # each unit standardised over the batch
    if isinstance(m, nn.LayerNorm):
        centred = mu - mu.mean()
        scale2 = float(centred.pow(2).mean() + var.mean()) + float(m.eps)
        return g * centred / math.sqrt(scale2) + bb, g * g * var / scale2
    return None


def propagate(
    model: nn.Module,
    mu: torch.Tensor,
    var: torch.Tensor,
    classes: int | None = None,
    batch: int = 128,
    inputs: Any = None,
    draws: int = 200,
) -> Prediction:
    """Predict every layer of a chain model from its weights and the input feature moments.

    Args:
        model: a chain of layers (``nn.Sequential`` style: leaf modules run in registration
            order).
        mu: per-feature mean of the input (channels for a conv input).
        var: per-feature variance of the input.
        classes: classes of a softmax cross-entropy on the output (None: no loss prediction).
        batch: batch size the loss band is predicted for.
        inputs: an optional batch; layers outside the theory are then measured on it.
        draws: simulated batches for the loss band (0: no loss prediction).
    """
    mu, var = mu.double().reshape(-1), var.double().reshape(-1)
    # The ensemble (scalar) recursion, over all weight draws, predicts the first loss and its
    # spread across seeds; the per-unit recursion through the realised weights predicts this
    # network's layers.
    qs, q12s = float((mu * mu + var).mean()), float((mu * mu).mean())
    out: list[LayerPrediction] = []
    notes: list[str] = []
    last_gain2: float | None = None
    act_name = None
    first_hidden_q = None
    measured: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
    lost = False
    containers = [type(m).__name__ for m in model.modules()
                  if list(m.children()) and not isinstance(m, nn.Sequential)]
    if containers:
        notes.append(f"{containers[0]} is not an nn.Sequential chain: the prediction follows the "
                     "registration order of its layers and cannot see functional ops in forward()")
    for name, m in _chain(model):
        kind = (module_kind(m) or ("other", ""))[0]
        op = activation_op(m) if kind == "activation" else None
        if isinstance(m, (nn.Identity,)):
            continue
        if isinstance(m, nn.Dropout):
            if m.training and m.p > 0:
                keep = 1 - m.p
                var = (var + mu * mu) / keep - mu * mu  # E[(mask a / keep)^2] = E[a^2] / keep
                qs = qs / keep
            continue
        if op in ("softmax", "log_softmax"):
            break
        chi = None
        in_theory = not lost
        label = type(m).__name__
        result: tuple[torch.Tensor, torch.Tensor] | None = None
        if lost:
            result = None
        elif kind in ("linear", "conv") and fan_in(m) is not None:
            lin = _linear_moments(m, mu, var)
            if lin is not None:
                result = (lin[0], lin[1])
                last_gain2, b2 = lin[2], lin[3]
                qs, q12s = last_gain2 * qs + b2, last_gain2 * q12s + b2
        elif op is not None and supported(op):
            mean, v, slope2 = unit_moments(op, mu, var)
            result = (mean, v)
            qs, q12s = moments(op, qs)[0], cross(op, qs, q12s)
            chi = (last_gain2 or 1.0) * slope2
            label = op
            act_name = act_name or op
        elif is_norm(m):
            result = _norm_moments(m, mu, var)
            if result is not None:
                c = q12s / qs if qs else 0.0
                qs = float((result[0] ** 2 + result[1]).mean())
                q12s = float((result[0] ** 2).mean()) if isinstance(
                    m, nn.modules.batchnorm._BatchNorm) else c * qs
        if result is None:
            in_theory = False
            if measured is None and inputs is not None:  # only now: run the model once
                measured = _measure(model, inputs)
            if measured is not None and name in measured:
                mu, var = measured[name]
                qs, q12s = float((mu * mu + var).mean()), float((mu * mu).mean())
                lost = False
                notes.append(f"{name} ({label}) is outside the theory: measured from there on")
            else:
                lost = True
                notes.append(f"{name} ({label}) is outside the theory: no prediction after it "
                             "(give a batch to measure through it)")
        else:
            mu, var = result
        if lost:
            q = q12 = math.nan
        else:
            q12 = float((mu * mu).mean())
            q = q12 + float(var.mean())
        if first_hidden_q is None and kind in ("linear", "conv"):
            first_hidden_q = q
        out.append(LayerPrediction(name, label, q, math.sqrt(q) if q == q else math.nan, q12,
                                   chi, in_theory))
    q_out = qs if out and not lost else math.nan
    initial = band = network = None
    if classes and classes >= 2 and math.isfinite(q_out) and draws:
        initial, band = cross_entropy_band(q_out, q12s, classes, batch, draws)
        if mu.numel() == classes:
            network = network_cross_entropy(mu, var)
    gain = None
    if act_name is not None and first_hidden_q:
        mm, _ = moments(act_name, first_hidden_q)
        gain = math.sqrt(first_hidden_q / mm) if mm > 0 else None
    return Prediction(tuple(out), math.sqrt(q_out) if q_out == q_out else math.nan, classes,
                      initial, band, act_name, gain,
                      critical_gain(act_name) if act_name else None, tuple(notes), network)


def _covered(m: nn.Module) -> bool:
    """Whether the chain recursion has a rule for this leaf (the others are measured)."""
    kind = (module_kind(m) or ("other", ""))[0]
    op = activation_op(m) if kind == "activation" else None
    if isinstance(m, (nn.Identity, nn.Dropout)) or (op is not None and supported(op)):
        return True
    if kind in ("linear", "conv"):
        return isinstance(m, nn.Linear) or getattr(m, "groups", 0) == 1 and not isinstance(
            m, nn.modules.conv._ConvTransposeNd)
    return isinstance(m, nn.LayerNorm) or (
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training)


def forward_once(model: nn.Module, inputs: Any, handles: list[Any],
                 mode: Any = None) -> None:
    """One forward pass without grad, the model left untouched, the hooks removed afterwards.

    Raises:
        ModelError: the model raised.
    """
    from contextlib import nullcontext

    from lossdoctor.errors import ModelError
    from lossdoctor.probe.guard import untouched
    from lossdoctor.probe.run import call_model

    try:
        with untouched(model), torch.no_grad(), (mode if mode is not None else nullcontext()):
            try:
                call_model(model, inputs)
            except Exception as e:
                raise ModelError(f"the model raised {type(e).__name__}: {e}") from e
    finally:
        for h in handles:
            h.remove()


def _measure(model: nn.Module, inputs: Any) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Measured per-unit mean and variance after every leaf the recursion does not cover.

    One forward pass in the model's own dtype, with hooks on those leaves only (the model is
    left untouched)."""
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for name, m in _chain(model):
        if _covered(m):
            continue

        def hook(mod: nn.Module, args: Any, output: Any, _n: str = name) -> None:
            if isinstance(output, torch.Tensor) and output.is_floating_point() \
                    and output.dim() >= 2:
                units = output.detach().movedim(1, 0).reshape(output.shape[1], -1)
                seen[_n] = (units.mean(1).double(), units.var(1, unbiased=False).double())
        handles.append(m.register_forward_hook(hook))
    forward_once(model, inputs, handles)
    return seen
