"""``nonfinite`` and ``log-of-zero``: NaN/Inf and the logs that produce them."""

from __future__ import annotations

import math

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

_FIX_BY_OP = {
    "log": Fix("take logs of probabilities through log_softmax / logsigmoid, or clamp",
               "torch.log(p.clamp_min(1e-7))  # better: F.log_softmax(logits, dim=1)"),
    "div": Fix("guard the denominator", "x / (d + 1e-8)"),
    "sqrt": Fix("keep sqrt away from 0 (its gradient is 1/(2 sqrt x))", "torch.sqrt(x + 1e-12)"),
    "exp": Fix("compute with logsumexp instead of exp", "torch.logsumexp(z, dim=1)"),
    "parameter": Fix("reload the weights from a finite checkpoint or re-initialise them; find the "
                     "step that wrote NaN/Inf (a diverged update, a bad load)",
                     "bad = [n for n, p in model.named_parameters() if not p.isfinite().all()]"),
    "inputs": Fix("drop or impute non-finite values before training",
                  "x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)"),
}
_DEFAULT_FIX = Fix(
    "find the op with anomaly detection and guard it",
    "with torch.autograd.detect_anomaly():\n    loss_fn(model(x), y).backward()",
)


@check("nonfinite")
def nonfinite(trace: Trace, th: Thresholds) -> list[Finding]:
    """NaN or Inf in the loss, activations or gradients, naming the first op that made it."""
    bad_layers = [layer for layer in trace.layers if layer.output.nonfinite]
    bad_grads = [p for p in trace.params if p.grad_nonfinite]
    loss_bad = trace.loss.error is None and not math.isfinite(trace.loss.value)
    origin = trace.nonfinite_origin
    bad_output = trace.output is not None and trace.output.stats.nonfinite > 0
    if not (bad_layers or bad_grads or loss_bad or origin or bad_output):
        return []
    # without a replay (masked values are not chased), the first layer or the output names it
    where = origin.where if origin else (bad_layers[0].name if bad_layers else
                                         "output" if bad_output else "loss")
    op = origin.op if origin else (bad_layers[0].op if bad_layers else
                                   (trace.output.producer if trace.output else None) or "unknown")
    masked = _masked(trace) and not bad_grads and not loss_bad
    evidence = {
        "loss": trace.loss.value,
        "first_op": op,
        "first_where": where,
        "first_phase": origin.phase if origin else None,
        "layers_with_nonfinite": [layer.name for layer in bad_layers],
        "nonfinite_counts": [layer.output.nonfinite for layer in bad_layers],
        "params_with_nonfinite_grad": [p.name for p in bad_grads],
        "masked": masked,
    }
    detail = f" ({origin.detail})" if origin and origin.detail else ""
    if masked:
        return [Finding(
            code="nonfinite", severity="info", where=where, evidence=evidence,
            summary=(f"NaN/Inf {'in' if op == 'unknown' else f'produced by {op} at'} "
                     f"{where}{detail} never reach the loss "
                     f"({g(trace.loss.value)}) or any gradient: they are masked away (e.g. "
                     "torch.where, masked_fill(-inf) before softmax)."),
            explanation=(
                "An intermediate -inf that a later op discards is a common idiom (attention "
                "masks, the diagonal of a contrastive similarity matrix, log(0) in a branch "
                "torch.where does not take). Training only suffers when a non-finite value "
                "reaches the loss or a gradient; here both are finite."),
            fixes=(),
        )]
    return [Finding(
        code="nonfinite",
        severity="error",
        where=where,
        evidence=evidence,
        summary=(
            f"NaN/Inf first produced by {op} at {where}{detail}; loss = {g(trace.loss.value)}, "
            f"{len(bad_layers)} recorded layer(s) and {len(bad_grads)} gradient(s) non-finite."
        ),
        explanation=(
            "One non-finite value poisons every value computed from it: the loss becomes NaN and "
            "so does every gradient, and a single optimizer step writes NaN into the weights. The "
            "usual producers are log(0), x/0, sqrt(0) in the backward pass, exp overflow "
            "(float32 overflows above e^88) and non-finite inputs."
        ),
        fixes=(_FIX_BY_OP.get(op, _DEFAULT_FIX),),
    )]


def _masked(trace: Trace) -> bool:
    """The loss and every gradient are finite: non-finite intermediates were discarded."""
    return (trace.loss.error is None and math.isfinite(trace.loss.value)
            and not any(p.grad_nonfinite for p in trace.params)
            and not any(layer.grad_nonfinite for layer in trace.layers))


@check("log-of-zero")
def log_of_zero(trace: Trace, th: Thresholds) -> list[Finding]:
    """A log applied to values that reach 0, or to probabilities instead of log_softmax."""
    found = []
    for layer in trace.layers:
        if layer.kind != "log" or layer.inputs is None:
            continue
        x = layer.inputs
        from_probs = layer.source_op in ("softmax", "sigmoid")
        if x.min > 0 and not from_probs:
            continue
        reaches_zero = x.zeros > 0 or x.min <= 0
        if reaches_zero and _masked(trace):
            severity = "info"
            summary = (f"{layer.name} takes log of values that reach 0 ({x.zeros} exact zeros, "
                       f"min {g(x.min)}), but the -inf never reaches the loss or a gradient "
                       "(masked away).")
        elif not reaches_zero and x.min > 0:
            severity = "info"
            summary = (f"{layer.name} takes log of {layer.source_op} output (smallest value "
                       f"{g(x.min)}); it becomes -inf once a probability underflows to 0.")
        else:
            severity = "error"
            summary = (f"{layer.name} takes log of values that reach 0 ({x.zeros} exact zeros, "
                       f"min {g(x.min)}): the result holds -inf/NaN.")
        found.append(Finding(
            code="log-of-zero",
            severity=severity,  # type: ignore[arg-type]
            where=layer.name,
            evidence={"input_min": x.min, "input_zeros": x.zeros, "input_max": x.max,
                      "producer": layer.source_op, "phase": layer.phase},
            summary=summary,
            explanation=(
                "log(p) -> -inf as p -> 0, and float32 softmax/sigmoid outputs underflow to "
                "exactly 0 once a logit gap exceeds about 104. log_softmax(z) = z - logsumexp(z) "
                "and F.logsigmoid never form p, so they stay finite; F.cross_entropy and "
                "BCEWithLogitsLoss use them internally."
            ),
            fixes=(
                Fix("use the log-domain op instead of log(softmax(z))",
                    "log_p = F.log_softmax(logits, dim=1)   # or F.cross_entropy(logits, y)"),
                _FIX_BY_OP["log"],
            ),
        ))
    return found


@check("nonfinite", scope="run")
def run_nonfinite(trace: Trace, th: Thresholds) -> list[Finding]:
    """The first non-finite loss of a training run, with the layer and inputs when known."""
    run = trace.run
    if run is None:
        return []
    bad = next((i for i, v in enumerate(run.losses) if not math.isfinite(v)), None)
    if bad is None:
        return []
    step, value = bad + 1, run.losses[bad]
    where = f"layer {run.nonfinite_layer}" if run.nonfinite_layer else f"step {step}"
    detail = ""
    if run.inputs is not None:
        x = run.inputs
        detail = (f"; inputs: mean {g(x.mean)}, rms {g(x.rms)}, range [{g(x.min)}, {g(x.max)}], "
                  f"{x.nonfinite} non-finite")
    produced = (f", first produced by layer {run.nonfinite_layer}" if run.nonfinite_layer else "")
    return [Finding(
        "nonfinite", "error", where,
        {"step": step, "loss": value, "first_layer": run.nonfinite_layer,
         "input_nonfinite": run.inputs.nonfinite if run.inputs else None},
        f"step {step}: the loss became {g(value)}{produced}{detail}.",
        "One non-finite value poisons every value computed from it; after the next optimizer "
        "step the weights are NaN too. Run the monitor with stop_on_nonfinite=True to stop at "
        "that step and name the layer.",
        (Fix("find the op with anomaly detection",
             "with torch.autograd.detect_anomaly():\n    loss_fn(model(x), y).backward()"),
         Fix("stop at the first NaN", "Monitor(model, optimizer, stop_on_nonfinite=True)")),
    )]
