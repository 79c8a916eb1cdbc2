"""``grad-exploding`` / ``grad-vanishing``: gradient scale changing from the output inwards.

Backpropagation multiplies the gradient by chi = fan_out Var(w) E[phi'(z)^2] per layer (Poole et
al. 2016; Schoenholz et al. 2017), so chi != 1 compounds over depth. The series is the per-example
gradient norm at every linear/conv output, from the input side to the output side. AUTOTRAINER
(Zhang et al., ICSE'21) calls gradients vanishing when the first layer's gradient is below 1e-3
of the last one's; we use the same factor, 1e3, for exploding (AUTOTRAINER's 70 is reached by
healthy nets whose head is much narrower than their body). With an Adam-family optimizer a
vanishing gradient is info only: Adam divides each step by the gradient's own scale.
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.checks.depth import activation_family, extreme, grad_points
from lossdoctor.checks.fixes import init_name, reinit_fix
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

_CLIP = Fix(
    title="clip the gradient norm before the optimizer step",
    code="torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\noptimizer.step()",
)


@check("grad-exploding", "grad-vanishing", scope="layers")
def gradient_scale(trace: Trace, th: Thresholds) -> list[Finding]:
    """Gradient norm changing by >= 1e3 between the input-side and output-side layers."""
    pts = grad_points(trace)
    findings = []
    family = activation_family(trace)
    adam = trace.optimizer is not None and trace.optimizer.adam_family
    for explode in (True, False):
        # Walking from the output towards the input: exploding means larger near the input.
        run = extreme(pts, grow=not explode)
        if run is None:
            continue
        factor = 1 / run.ratio if explode else run.ratio
        if factor < th.grad_ratio:
            continue
        inner, outer = pts[run.start], pts[run.end]
        per_layer = 1 / run.per_layer if explode else run.per_layer
        severity = "warning"
        if not explode and adam:
            severity = "info"
        findings.append(Finding(
            code="grad-exploding" if explode else "grad-vanishing",
            severity=severity,  # type: ignore[arg-type]
            where=f"layer {outer[0]} -> {inner[0]}",
            evidence={
                "from_layer": outer[0], "to_layer": inner[0], "grad_norm_outer": outer[1],
                "grad_norm_inner": inner[1], "ratio_inner_to_outer": inner[1] / max(outer[1], 1e-30),
                "factor_per_layer": per_layer, "lines": {"grad_ratio": th.grad_ratio},
                "grad_norms": [p[1] for p in pts],
            },
            summary=(
                f"the gradient {'grows' if explode else 'shrinks'} {g(per_layer)}x per layer from "
                f"layer {outer[0]} back to {inner[0]} (per-example norm {g(outer[1])} -> {g(inner[1])}, "
                f"{g(factor)}x; line {g(th.grad_ratio)}x)."
            ),
            explanation=(
                "Going backwards, each layer multiplies the gradient by "
                "chi = fan_out * Var(w) * E[phi'(z)^2]; over depth this compounds to chi^depth. "
                + ("Early layers then take steps orders of magnitude larger than late ones and "
                   "one learning rate cannot suit both. " if explode else
                   "Early layers then receive almost no gradient and stop learning while the last "
                   "layers fit alone. ")
                + f"An init with chi = 1 ({init_name(family)}) or normalisation layers fix the "
                "cause" + ("; clipping limits the damage." if explode else "."
                           + (" Adam rescales each step, so this costs less here." if adam else ""))
            ),
            fixes=(reinit_fix(family), _CLIP) if explode else (reinit_fix(family),),
        ))
    return findings
