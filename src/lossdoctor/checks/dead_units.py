"""``dead-relu``: ReLU units that output 0 for every example of the batch.

A dead unit gets zero gradient and never recovers. DeepDiagnosis (Wardat et al., ICSE'22) and
AUTOTRAINER (Zhang et al., ICSE'21) flag a layer when 70% of it is dead; a fully dead layer is an
error (nothing below it learns). A live unit that fires with probability 1/2 looks dead in a
batch of B examples with probability 2^-B, so on batches under 8 examples (> 0.4%) a partly dead
layer is not judged; a layer whose U units are all dead still is when B * U >= 8, since U live
units all look dead with probability 2^-(B U).
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.checks.fixes import reinit_fix
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


@check("dead-relu", scope="layers")
def dead_relu(trace: Trace, th: Thresholds) -> list[Finding]:
    """At least 70% of a ReLU layer's units dead on the whole batch."""
    small = trace.batch_size < th.dead_min_batch
    found = []
    for layer in trace.layers:
        if layer.dead_units is None or layer.dead_units < th.dead_fraction:
            continue
        if small and (layer.dead_units < 1.0
                      or (layer.units or 0) * trace.batch_size < th.dead_min_batch):
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
                "batch_size": trace.batch_size,
                "lines": {"dead_fraction": th.dead_fraction, "dead_min_batch": th.dead_min_batch},
                "pre_activation_mean": pre.mean if pre else None,
                "pre_activation_std": pre.std if pre else None,
            },
            summary=(
                f"{dead} of {layer.units} units in {layer.name} ({g(100 * layer.dead_units)}%) are "
                f"0 for all {trace.batch_size} examples (line {g(100 * th.dead_fraction)}%)"
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


@check("dead-relu", scope="run")
def dead_growth(trace: Trace, th: Thresholds) -> list[Finding]:
    """ReLU layers that died during a monitored run (dead share up since monitoring began)."""
    if trace.run is None:
        return []
    first = dict(trace.run.dead_first)
    found = []
    step = trace.run.step
    for layer in trace.layers:
        if layer.dead_units is None or layer.name not in first:
            continue
        was = first[layer.name]
        if layer.dead_units >= th.dead_fraction and layer.dead_units - was >= th.dead_growth:
            found.append(Finding(
                "dead-relu", "warning", layer.name,
                {"step": step, "dead_fraction": layer.dead_units, "first": was,
                 "lines": {"dead_fraction": th.dead_fraction, "dead_growth": th.dead_growth}},
                f"step {step}: {g(100 * layer.dead_units)}% of {layer.name}'s units are dead, up "
                f"from {g(100 * was)}% when monitoring started (lines {g(100 * th.dead_fraction)}% "
                f"and +{g(100 * th.dead_growth)} points).",
                "Units die during training when a large step pushes their pre-activation negative "
                "for every input; they then get no gradient and never recover.",
                (Fix("lower the learning rate or use LeakyReLU", "nn.LeakyReLU(0.01)"),),
            ))
    return found
