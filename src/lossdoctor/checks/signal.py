"""``signal-exploding`` / ``signal-vanishing``: forward scale changing geometrically with depth.

For a linear layer followed by a ReLU, Var(z_(l+1)) = fan_in Var(w) Var(z_l) / 2, so the
pre-activation scale is multiplied by std(w) sqrt(fan_in / 2) at every layer (He et al. 2015);
any factor other than 1 compounds over depth. The line is two orders of magnitude between two
pre-activations of the same forward pass: the later layers then work at a scale 100x away from
the one their init assumed. Above 1e4 it is an error. A single step can cross it, but a healthy
init (He, Xavier, PyTorch's default) stays well inside: its factor per layer is between 0.4 and 1
and its fixed point is set by the biases.
"""

from __future__ import annotations

import statistics

from lossdoctor.checks.base import check
from lossdoctor.checks.depth import (
    activation_family,
    extreme,
    linear_layers,
    norm_breaks,
    signal_points,
    weight_gain,
)
from lossdoctor.checks.fixes import init_name, reinit_fix
from lossdoctor.checks.progress import learns, record_progress
from lossdoctor.findings import Finding
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

# std(w) * sqrt(fan_in) that keeps the pre-activation scale, per activation family.
NEUTRAL_GAIN = {"relu": 2**0.5, "tanh": 1.0, "sigmoid": 1.0, "linear": 1.0}


@check("signal-exploding", "signal-vanishing", scope="layers")
def signal_scale(trace: Trace, th: Thresholds) -> list[Finding]:
    """Forward signal growing or shrinking by >= 100x across depth."""
    pts = signal_points(trace)
    findings = []
    family = activation_family(trace)
    lin = linear_layers(trace)
    gains = [weight_gain(layer) for layer in lin]
    for grow in (True, False):
        run = extreme(pts, grow, norm_breaks(trace))
        if run is None:
            continue
        factor = run.ratio if grow else 1 / run.ratio
        if factor < th.signal_ratio:
            continue
        word = "grows" if grow else "shrinks"
        a, b = pts[run.start], pts[run.end]
        evidence: dict[str, object] = {
            "from_layer": a[0], "to_layer": b[0], "rms_from": a[1], "rms_to": b[1],
            "ratio": run.ratio, "gain_per_layer": run.per_layer,
            "lines": {"signal_ratio": th.signal_ratio, "signal_error_ratio": th.signal_error_ratio},
            "pre_activation_rms": [p[1] for p in pts],
        }
        summary = (
            f"the signal {word} {g(run.per_layer)}x per layer from layer {a[0]} to {b[0]} "
            f"(pre-activation rms {g(a[1])} -> {g(b[1])}, {g(factor)}x; line {g(th.signal_ratio)}x)"
        )
        if gains:
            mean_gain = statistics.median(gains)
            neutral = NEUTRAL_GAIN[family]
            evidence["weight_gain_median"] = mean_gain
            evidence["weight_gain_neutral"] = neutral
            summary += (
                f"; std(w)*sqrt(fan_in) = {g(mean_gain)} where {init_name(family)} gives "
                f"{g(neutral)}"
            )
        if trace.predicted_gain is not None:
            evidence["predicted_gain_per_layer"] = trace.predicted_gain
            summary += (f"; mean-field theory predicts {g(trace.predicted_gain)}x per layer for "
                        f"this init, {init_name(family)} 1.0x")
        severity = "error" if factor >= th.signal_error_ratio else "warning"
        steps = learns(trace, th)
        adam = trace.optimizer is not None and trace.optimizer.adam_family
        if not grow and severity == "warning" and adam and steps is None:
            severity = "info"  # Adam divides each step by the gradient's own scale
            summary += f"; {trace.optimizer.name} rescales each step, so this costs less here"  # type: ignore[union-attr]
        if not grow and severity == "warning" and steps is not None:
            severity = "info"  # the consequence decides: the set-up still learns
            summary += (f"; the probe steps still learn ({record_progress(evidence, steps, th)}), "
                        "so this costs little here")
        findings.append(Finding(
            code="signal-exploding" if grow else "signal-vanishing",
            severity=severity,  # type: ignore[arg-type]
            where=f"layer {a[0]} -> {b[0]}",
            evidence=evidence,
            summary=summary + ".",
            explanation=(
                "Each layer multiplies the pre-activation variance by fan_in * Var(w) * "
                "E[phi(z)^2]/Var(z) (1/2 for ReLU), so a per-layer factor g gives g^depth at the "
                f"top. Here g = {g(run.per_layer)}: "
                + ("logits blow up, softmax saturates and the loss is huge. " if grow else
                   "late layers see almost no signal and their outputs are dominated by biases. ")
                + f"Choosing Var(w) so the factor is 1 ({init_name(family)}) keeps every layer "
                "at unit scale; normalisation layers reset it too."
            ),
            fixes=(reinit_fix(family),),
        ))
    return findings
