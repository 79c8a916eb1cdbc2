"""``dead-relu``: ReLU units that output 0 for every example of the batch.

A dead unit gets zero gradient and never recovers. DeepDiagnosis (Wardat et al., ICSE'22) and
AUTOTRAINER (Zhang et al., ICSE'21) flag a layer when 70% of it is dead; a fully dead layer is an
error (nothing below it learns). A live unit that fires with probability 1/2 looks dead in a
batch of B examples with probability 2^-B, so batches under 8 examples (> 0.4%) are not judged.
"""

from __future__ import annotations

from lossdoctor.checks.base import check, g
from lossdoctor.checks.fixes import reinit_fix
from lossdoctor.findings import Finding, Fix
from lossdoctor.trace import Trace

FRACTION = 0.7
MIN_BATCH = 8


@check
def dead_relu(trace: Trace) -> list[Finding]:
    """At least 70% of a ReLU layer's units dead on the whole batch."""
    if trace.batch_size < MIN_BATCH:
        return []
    found = []
    for layer in trace.layers:
        if layer.dead_units is None or layer.dead_units < FRACTION:
            continue
        if layer.output.nonfinite or (layer.inputs is not None and layer.inputs.nonfinite):
            continue  # NaN compares false everywhere: the fraction says nothing (see nonfinite)
        pre = layer.inputs
        dead = round(layer.dead_units * (layer.units or 0))
        found.append(Finding(
            code="dead-relu",
            severity="error" if layer.dead_units >= 1.0 else "warning",
            where=layer.name,
            evidence={
                "dead_fraction": layer.dead_units, "dead_units": dead, "units": layer.units,
                "line": FRACTION, "batch_size": trace.batch_size,
                "pre_activation_mean": pre.mean if pre else None,
                "pre_activation_std": pre.std if pre else None,
            },
            summary=(
                f"{dead} of {layer.units} units in {layer.name} ({g(100 * layer.dead_units)}%) are "
                f"0 for all {trace.batch_size} examples (line {g(100 * FRACTION)}%)"
                + (f"; pre-activation mean {g(pre.mean)}, std {g(pre.std)}." if pre else ".")
            ),
            explanation=(
                "ReLU(z) = max(0, z) has zero gradient for z < 0: a unit whose pre-activation is "
                "negative for every input neither outputs nor learns anything. Large negative "
                "biases, a too-large learning rate step, or an init whose scale is far off push "
                "units there. Re-initialise, or use LeakyReLU/GELU whose slope is never 0."
            ),
            fixes=(
                reinit_fix("relu"),
                Fix("use an activation that never has a zero slope", "nn.LeakyReLU(0.01)"),
            ),
        ))
    return found
