"""``init-loss-high``: the first loss far above what an uncertain network would get.

A well-initialised classifier is uncertain: near-equal logits give p = 1/K and a cross-entropy
of ln K (Karpathy, "A Recipe for Training Neural Networks", 2019: "verify loss @ init"). The line
is drawn where the loss is what logits of standard deviation 3 would give: then the softmax is
already confident (top probability typically > 0.9) and confidently wrong. For regression the
same line is an output scale 3x the targets' spread: MSE = var(y) (1 + 3^2). The error line is
the same construction at 30.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from lossdoctor.checks.base import check
from lossdoctor.checks.depth import activation_family, extreme, linear_layers, signal_points
from lossdoctor.checks.fixes import init_name, reinit_fix, small_head_fix
from lossdoctor.checks.progress import learns, record_progress
from lossdoctor.findings import Finding
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


@lru_cache(maxsize=256)
def expected_ce(k: int, scale: float) -> float:
    """E[cross-entropy] when the K logits are i.i.d. N(0, scale^2).

    CE = log(e^z_y + S) - z_y with S the sum of the other K - 1 exponentials. When S is
    concentrated (its squared coefficient of variation (e^scale^2 - 1) / (K - 1) below 1e-3, a
    large vocabulary at a sane scale) the expectation over z_y is a Gauss-Hermite quadrature of
    log(e^z + E[S]) with the second-order correction -Var(S) / (2 (e^z + E[S])^2): no sampling,
    microseconds for 50k classes. Otherwise a seeded Monte Carlo over K-dimensional draws.
    """
    s2 = scale * scale
    if k >= 2 and s2 < 50 and math.expm1(s2) / (k - 1) < 1e-3:
        nodes, weights = np.polynomial.hermite_e.hermegauss(64)  # weight exp(-x^2 / 2)
        z = scale * nodes
        mean_s = (k - 1) * math.exp(s2 / 2)
        var_s = (k - 1) * math.exp(s2) * math.expm1(s2)
        total = np.exp(z) + mean_s
        values = np.log(total) - var_s / (2 * total * total) - z
        return float((weights * values).sum() / math.sqrt(2 * math.pi))
    rng = np.random.default_rng(0)
    n = max(256, min(20_000, 2_000_000 // max(k, 1)))
    z = rng.standard_normal((n, k)) * scale
    m = z.max(axis=1, keepdims=True)
    lse = (m[:, 0] + np.log(np.exp(z - m).sum(axis=1)))
    return float((lse - z[:, 0]).mean())


@lru_cache(maxsize=64)
def expected_bce(scale: float) -> float:
    """E[binary cross-entropy] = E[softplus(z)] for a logit z ~ N(0, scale^2)."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal(200_000) * scale
    return float(np.logaddexp(0.0, z).mean())


def _baseline(trace: Trace, th: Thresholds) -> tuple[float, float, float, str, float] | None:
    """(chance level, warning line, error line, how the chance level is defined, per-example loss)."""
    loss = trace.loss
    if not math.isfinite(loss.value) or loss.error or trace.output is None:
        return None
    n_out = trace.output.stats.numel
    # A penalty added inside loss_fn is not part of the chance level: judge the data term.
    value = loss.data_value if loss.data_value is not None else loss.value
    if loss.reduction == "none" and loss.elementwise_mean is not None:
        # reduced by hand (summed per example, averaged over the batch): judge one element
        value = loss.elementwise_mean
    if loss.kind in ("cross_entropy", "nll") and trace.task == "multiclass":
        k = trace.n_classes or 0
        if k < 2 or (loss.kind == "nll" and trace.output.producer != "log_softmax"):
            return None
        if loss.reduction == "sum":
            counts = trace.targets.class_counts if trace.targets else {}
            value /= max(sum(counts.values()) if counts else trace.batch_size, 1)
        return (math.log(k), expected_ce(k, th.init_loss_scale), expected_ce(k, th.init_loss_error_scale),
                f"ln {k}", value)
    if loss.kind in ("bce", "bce_logits") and trace.task in ("binary", "multilabel"):
        if loss.reduction == "sum":
            value /= max(n_out, 1)
        return (math.log(2), expected_bce(th.init_loss_scale),
                expected_bce(th.init_loss_error_scale), "ln 2 per output",
                value)
    if loss.kind == "mse" and trace.task == "regression" and trace.targets is not None:
        var = trace.targets.var
        if var <= 0:
            return None
        if loss.reduction == "sum":
            value /= max(n_out, 1)
        return (var, var * (1 + th.init_loss_scale**2), var * (1 + th.init_loss_error_scale**2),
                "var(y)", value)
    return None


def _dropout_off(trace: Trace, value: float) -> float | None:
    """The loss with dropout off, normalised like ``value`` (penalty out, per element)."""
    loss = trace.loss
    if loss.dropout_off_value is None:
        return None
    raw = loss.data_value if loss.data_value is not None else loss.value
    if not math.isfinite(raw) or raw <= 0:
        return None
    return (loss.dropout_off_value - (loss.penalty_value or 0.0)) * value / raw


def _prior_entropy(trace: Trace) -> float | None:
    counts = trace.targets.class_counts if trace.targets else {}
    total = sum(counts.values())
    if not total:
        return None
    return -sum(c / total * math.log(c / total) for c in counts.values() if c)


@check("init-loss-high")
def init_loss_high(trace: Trace, th: Thresholds) -> list[Finding]:
    """Loss at initialisation far above the chance level."""
    base = _baseline(trace, th)
    if base is None:
        return []
    chance, warn, err, label, value = base
    if value <= warn:
        return []
    out = trace.output
    assert out is not None
    evidence: dict[str, object] = {
        "loss": value, "chance_level": chance, "chance_definition": label,
        "warning_loss": warn, "error_loss": err,
        "lines": {"init_loss_scale": th.init_loss_scale,
                  "init_loss_error_scale": th.init_loss_error_scale},
        "ratio_to_chance": value / chance,
        "output_rms": out.stats.rms,
    }
    prior = _prior_entropy(trace) if trace.task == "multiclass" else None
    if prior is not None:
        evidence["label_prior_entropy"] = prior
    parts = [f"loss at init {g(value)}, chance level {label} = {g(chance)} ({g(value / chance)}x)"]
    run = extreme(signal_points(trace), grow=True)
    if run is not None and run.ratio >= 10:
        pts = signal_points(trace)
        parts.append(
            f"the signal grows {g(run.per_layer)}x per layer from layer {pts[run.start][0]} to "
            f"{pts[run.end][0]}"
        )
        evidence["signal_gain_per_layer"] = run.per_layer
    if trace.predicted_initial_loss is not None and trace.task == "multiclass":
        evidence["predicted_initial_loss"] = trace.predicted_initial_loss
        parts.append(f"mean-field theory predicts {g(trace.predicted_initial_loss)} from the "
                     "weights alone")
    family = activation_family(trace)
    lin = linear_layers(trace)
    if trace.task == "regression":
        explanation = (
            f"Predicting the mean of the targets gives MSE = var(y) = {g(chance)}; a loss of "
            f"{g(value)} means the outputs (rms {g(out.stats.rms)}) are far from the targets' "
            "scale, so the first steps are spent shrinking the outputs instead of fitting. "
            "Standardise the targets or initialise the output bias to mean(y)."
        )
    else:
        explanation = (
            f"At initialisation the network should be uncertain: equal logits give "
            f"p = 1/K and a loss of {label} = {g(chance)}. Cross-entropy of a confidently wrong "
            "answer grows linearly with the logit gap (about 1.54 std(logits) for K = 10), so "
            f"{g(value)} means logits of rms {g(out.stats.rms)} and a softmax that is already "
            "saturated: the early gradients only undo the init. Scale the init so each layer "
            f"keeps the signal's variance ({init_name(family)}) and start the output layer small."
        )
    fixes = [reinit_fix(family)]
    if lin:
        fixes.append(small_head_fix(lin[-1].name))
    severity = "error" if value > err else "warning"
    off = _dropout_off(trace, value)
    if off is not None and off <= warn:
        # inverted dropout scales kept units by 1/(1-p): the second moment grows 1/(1-p) per
        # dropout layer in training mode, so the logits are larger than the network's own
        evidence["dropout_off_loss"] = off
        parts.append(f"with dropout off the loss is {g(off)} (under the line {g(warn)}): the "
                     "excess is dropout's training-mode variance, 1/(1-p) per dropout layer, "
                     "not the init")
        return [Finding(code="init-loss-high", severity="info", where="loss", evidence=evidence,
                        summary="; ".join(parts) + ".", explanation=(
                            "Inverted dropout keeps the mean of each unit and multiplies its "
                            "second moment by 1/(1-p), so in training mode the logits of a net "
                            "with several dropout layers are larger than in evaluation; the "
                            "network itself starts near the chance level. Worth knowing when "
                            "reading the first losses; not an initialisation to change."))]
    steps = learns(trace, th) if trace.task == "regression" else None
    if severity == "warning" and steps is not None:
        # offset targets the output bias is already catching up with: worth knowing, not hurting
        severity = "info"
        parts.append(f"the probe steps already bring it down "
                     f"({record_progress(evidence, steps, th)})")
    return [Finding(
        code="init-loss-high",
        severity=severity,  # type: ignore[arg-type]
        where="loss",
        evidence=evidence,
        summary="; ".join(parts) + ".",
        explanation=explanation,
        fixes=tuple(fixes),
    )]
