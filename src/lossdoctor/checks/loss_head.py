"""How the output head meets the loss: ``mse-on-saturating-output`` and ``double-softmax``."""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.checks.progress import learns, record_progress
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

SQUARED = ("mse", "l1", "huber", "smooth_l1")
LOGIT_LOSSES = {"cross_entropy": "softmax", "bce_logits": "sigmoid"}


@check("mse-on-saturating-output")
def mse_on_saturating_output(trace: Trace, th: Thresholds) -> list[Finding]:
    """Squared error on a sigmoid or softmax output with class targets (story 2)."""
    out, tg, loss = trace.output, trace.targets, trace.loss
    if out is None or tg is None or loss.kind not in SQUARED:
        return []
    if out.producer not in ("sigmoid", "softmax") or not (tg.binary or tg.onehot_rows):
        return []
    head = next((layer for layer in reversed(trace.layers)
                 if layer.op == out.producer and layer.inputs is not None), None)
    z = head.inputs.rms if head and head.inputs else None
    evidence: dict[str, object] = {"loss": loss.kind, "output_op": out.producer,
                                   "targets": "one-hot" if tg.onehot_rows else "binary"}
    slope = ""
    if z is not None:
        s = 1 / (1 + 2.718281828459045 ** (-z))
        evidence["pre_activation_rms"] = z
        evidence["sigmoid_slope_at_rms"] = s * (1 - s)
        evidence["saturated_fraction"] = head.saturated if head else None
        slope = f"; at the output's |z| = {g(z)}, s'(z) = {g(s * (1 - s))} (peak 0.25)"
    fix = (
        Fix("drop the sigmoid and use BCE on logits",
            "# model returns logits (no final nn.Sigmoid)\nloss_fn = nn.BCEWithLogitsLoss()")
        if out.producer == "sigmoid" else
        Fix("drop the softmax and use cross-entropy on logits",
            "# model returns logits (no final nn.Softmax)\n"
            "loss_fn = nn.CrossEntropyLoss()   # targets as class indices: y.argmax(1)")
    )
    severity = "warning"
    steps = learns(trace, th)
    if z is not None and s * (1 - s) >= 0.125 and steps is not None:
        # not saturated yet (|z| < 1.76: slope above half its peak) and the probe steps learn
        severity = "info"
        slope += (f"; the output is not saturated yet and the probe steps learn "
                  f"({record_progress(evidence, steps, th)}): it slows down once outputs grow "
                  "confident")
    return [Finding(
        code="mse-on-saturating-output",
        severity=severity,  # type: ignore[arg-type]
        where="loss",
        evidence=evidence,
        summary=f"{loss.kind} on a {out.producer} output with {evidence['targets']} targets{slope}.",
        explanation=(
            "With a = s(z) and C = (a - y)^2 / 2, dC/dz = (a - y) s'(z): the gradient carries "
            "the sigmoid's slope, which vanishes exactly when the output is confidently wrong, "
            "so learning stalls where it should be fastest. Cross-entropy gives dC/dz = a - y, "
            "with no s'(z) factor."
        ),
        fixes=(fix,),
    )]


@check("double-softmax")
def double_softmax(trace: Trace, th: Thresholds) -> list[Finding]:
    """Probabilities fed to a loss that expects logits (or log-probabilities)."""
    out, loss = trace.output, trace.loss
    if out is None:
        return []
    if loss.kind in LOGIT_LOSSES:
        looks_like_probs = out.producer in ("softmax", "sigmoid") or (
            loss.kind == "cross_entropy" and out.rows_sum_to_one
        )
        if not looks_like_probs:
            return []
        expected = LOGIT_LOSSES[loss.kind]
        name = "CrossEntropyLoss" if loss.kind == "cross_entropy" else "BCEWithLogitsLoss"
        return [Finding(
            code="double-softmax",
            severity="error",
            where="loss",
            evidence={"loss": loss.kind, "output_op": out.producer or "probabilities",
                      "output_min": out.stats.min, "output_max": out.stats.max,
                      "rows_sum_to_one": out.rows_sum_to_one},
            summary=(
                f"{name} applies its own {expected}, but it receives "
                f"{out.producer or 'probabilities'} output in [{g(out.stats.min)}, "
                f"{g(out.stats.max)}]."
            ),
            explanation=(
                f"{name} computes log {expected}(z) from logits z. Given p = {expected}(z) instead, "
                f"it computes {expected}(p) with every input in [0, 1], so its predictions can never "
                "be confident: the loss is bounded away from 0 and its gradient is squashed by the "
                "extra Jacobian. Return logits from the model and keep the probabilities for "
                "inference."
            ),
            fixes=(Fix(f"remove the final {expected} from the model (apply it only at inference)",
                       "probs = torch.softmax(model(x), dim=1)  # inference only"
                       if expected == "softmax" else "probs = torch.sigmoid(model(x))  # inference"),),
        )]
    if loss.kind == "nll" and (out.producer in ("softmax", "sigmoid") or out.rows_sum_to_one):
        return [Finding(
            code="double-softmax",
            severity="error",
            where="loss",
            evidence={"loss": "nll", "output_op": out.producer or "probabilities",
                      "output_min": out.stats.min, "output_max": out.stats.max},
            summary=(f"NLLLoss expects log-probabilities but receives probabilities in "
                     f"[{g(out.stats.min)}, {g(out.stats.max)}]; the loss is -mean(p_y), not "
                     "-mean(log p_y)."),
            explanation=(
                "NLLLoss only picks -input[y]; the log must already be applied. On probabilities "
                "the loss is -p_y, bounded in [-1, 0], and its gradient does not grow for wrong "
                "answers the way -log p_y does."
            ),
            fixes=(Fix("use log_softmax in the model (or CrossEntropyLoss on logits)",
                       "log_p = F.log_softmax(logits, dim=1)\nloss = F.nll_loss(log_p, y)"),),
        )]
    return []
