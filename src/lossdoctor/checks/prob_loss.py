"""``non-probability-into-prob-loss``: outputs that are not probabilities fed to a log-likelihood.

BCE = -[y log p + (1 - y) log(1 - p)] and a categorical -sum(y log p) are likelihoods only when p
is a probability: p in (0, 1) for each binary output (a sigmoid), and a distribution over the
classes when they are exclusive (a softmax). A ReLU or linear output is neither: torch's BCE
raises on values outside [0, 1], Keras-style clipping turns them into log(1e-7) = -16 with zero
gradient, and values that happen to fall inside [0, 1] at init leave it after a few steps.
Independent sigmoids over exclusive classes (one-hot rows or class indices) do not sum to 1:
renormalising them (as Keras' categorical cross-entropy does) or taking log p_y alone leaves the
other classes' scores free, so the model is not pushed to rank the right class first. When the
loss clips or renormalises on the way to the log, the model's own output is judged. No threshold:
the producer of the output, its range and the target structure decide.
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace
from lossdoctor.vocab import LOGS

PROBABILITIES = frozenset({"sigmoid", "softmax", "hardsigmoid"})


def _likelihood(trace: Trace) -> str | None:
    """``binary`` / ``categorical`` when the loss is a log-likelihood of probabilities."""
    loss, tg = trace.loss, trace.targets
    if tg is None:
        return None
    if loss.kind == "bce":
        return "binary"
    logs = [layer for layer in trace.layers if layer.kind == "log" and layer.phase == "loss"]
    if loss.kind not in ("custom", "nll") or not logs:
        return None
    if any(layer.source_op in PROBABILITIES for layer in logs):
        return None  # the loss applies its own sigmoid/softmax before the log
    if tg.onehot_rows or (tg.dtype == "int" and loss.kind == "nll"):
        return "categorical"
    if tg.binary:
        return "binary"
    return None


@check("non-probability-into-prob-loss")
def non_probability_into_prob_loss(trace: Trace, th: Thresholds) -> list[Finding]:
    """ReLU/linear outputs into BCE or a hand-written log-likelihood; sigmoids over exclusive
    classes into a categorical one."""
    out, tg = trace.output, trace.targets
    kind = _likelihood(trace)
    if out is None or tg is None or kind is None:
        return []
    k = out.stats.shape[1] if len(out.stats.shape) >= 2 else 1
    producer, lo, hi, unit = out.producer, out.stats.min, out.stats.max, out.in_unit_interval
    if producer in LOGS:
        # NLL on log(p): p is what must be a probability -- the log's input
        log = next((layer for layer in reversed(trace.layers)
                    if layer.kind == "log" and layer.phase == "loss" and layer.inputs), None)
        if log is None or log.inputs is None:
            return []
        producer, lo, hi = log.source_op, log.inputs.min, log.inputs.max
        returned = next((layer for layer in reversed(trace.layers)
                         if layer.is_output and layer.phase == "model"), None)
        if producer is None and returned is not None:
            # clipped / renormalised on the way (Keras' sparse CE): judge what the model returned
            producer, lo, hi = returned.op, returned.output.min, returned.output.max
        unit = lo >= 0 and hi <= 1
    evidence: dict[str, object] = {
        "loss": trace.loss.kind, "likelihood": kind, "output_op": producer or "linear",
        "output_min": lo, "output_max": hi,
        "rows_sum_to_one": out.rows_sum_to_one, "outputs_per_example": k,
        "torch_error": trace.loss.error}
    # a known non-probability op (ReLU, a Linear/Conv layer, tanh...), or values outside [0, 1]
    if producer not in PROBABILITIES and (producer is not None or not unit):
        head = "sigmoid" if kind == "binary" else "softmax"
        return [Finding(
            "non-probability-into-prob-loss", "error", "loss", evidence,
            f"a {kind} log-likelihood ({trace.loss.kind}) receives {producer or 'linear'} outputs "
            f"in [{g(lo)}, {g(hi)}], not probabilities"
            + (" (torch refused them)." if trace.loss.error else "."),
            "log p is a likelihood only for p in (0, 1): a "
            f"{producer or 'linear'} output can be 0, negative or above 1, so the loss is undefined "
            "(torch raises), clipped to a constant with zero gradient (Keras clips to 1e-7), or "
            f"rewards pushing outputs past 1. A {head} output, or the logits with the matching "
            "library loss, makes it a proper likelihood.",
            (Fix(f"return logits and use the loss that applies the {head} itself",
                 "loss_fn = nn.BCEWithLogitsLoss()   # one logit per binary output"
                 if kind == "binary" else
                 "loss_fn = nn.CrossEntropyLoss()   # logits (B, K), class indices y.argmax(1)"),),
        )]
    k = k if k > 1 else max(trace.n_classes or 0, 1)
    if producer == "sigmoid" and kind == "categorical" and k >= 2 and not out.rows_sum_to_one:
        return [Finding(
            "non-probability-into-prob-loss", "warning", "loss", evidence,
            f"{k} independent sigmoid outputs feed a categorical log-likelihood over exclusive "
            "classes; they are not a distribution (rows do not sum to 1).",
            "With exclusive classes the model must say which one is right: softmax couples the "
            "scores so raising one lowers the others. Independent sigmoids are scored one at a "
            "time (or renormalised after the fact), so nothing pushes the wrong classes down and "
            "training is slower and less accurate.",
            (Fix("use a softmax over the classes (logits + cross-entropy)",
                 "# last layer: nn.Linear(hidden, K), no sigmoid\n"
                 "loss_fn = nn.CrossEntropyLoss()   # targets y.argmax(1)"),),
        )]
    return []
