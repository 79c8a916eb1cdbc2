"""``saturation``: sigmoid-like units sitting on their flat tails.

A unit is saturated when its pre-activation is beyond the |z| of :data:`SATURATION_Z` (|z| >= 5
for the sigmoid, where s'(z) is 2.7% of its peak; 2.5 for tanh, the same relative slope). A
layer is flagged when more than half of its pre-activations are saturated (DeepDiagnosis, Wardat
et al., ICSE'22). The unit that produces the model's output is left to the loss-head checks: a
saturated output sigmoid costs nothing with cross-entropy, which cancels s'(z).
"""

from __future__ import annotations

import math

from lossdoctor.checks.base import check
from lossdoctor.checks.fixes import reinit_fix
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace
from lossdoctor.vocab import SATURATION_Z


def slope_ratio(op: str, z: float) -> float:
    """phi'(z) / phi'(0) for the sigmoid and tanh (1 for other ops)."""
    if op == "sigmoid":
        s = 1 / (1 + math.exp(-min(abs(z), 700)))
        return s * (1 - s) / 0.25
    if op == "tanh":
        return 1 - math.tanh(abs(z)) ** 2
    return 1.0


@check("saturation", scope="layers")
def saturation(trace: Trace, th: Thresholds) -> list[Finding]:
    """More than half of a sigmoid/tanh layer's pre-activations on the flat tails."""
    found = []
    for layer in trace.layers:
        if layer.saturated is None or layer.is_output or layer.saturated <= th.saturated_fraction:
            continue
        if layer.inputs is None:
            continue
        z = SATURATION_Z[layer.op]
        rms = layer.inputs.rms
        found.append(Finding(
            code="saturation",
            severity="warning",
            where=layer.name,
            evidence={
                "saturated_fraction": layer.saturated, "abs_z": z,
                "lines": {"saturated_fraction": th.saturated_fraction},
                "pre_activation_rms": rms, "slope_ratio_at_rms": slope_ratio(layer.op, rms),
            },
            summary=(
                f"{g(100 * layer.saturated)}% of the {layer.op} pre-activations in {layer.name} "
                f"have |z| >= {g(z)} (line {g(100 * th.saturated_fraction)}%); pre-activation rms {g(rms)}."
            ),
            explanation=(
                f"The gradient through a {layer.op} unit is multiplied by phi'(z), which at the "
                f"layer's typical |z| = {g(rms)} is {g(slope_ratio(layer.op, rms))} of its value "
                "at 0. Saturated units pass almost no gradient, so the layers below them stop "
                "learning. Keep pre-activations near unit scale: Xavier init, normalised inputs, "
                "or a normalisation layer before the activation."
            ),
            fixes=(
                reinit_fix("tanh" if layer.op in ("tanh", "hardtanh") else "sigmoid"),
                Fix("normalise the pre-activation",
                    "nn.Sequential(nn.Linear(n_in, n_out), nn.LayerNorm(n_out), nn.Tanh())"),
            ),
        ))
    return found
