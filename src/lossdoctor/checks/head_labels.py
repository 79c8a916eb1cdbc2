"""``head-label-mismatch``: the loss refused the batch because the head and the labels disagree.

When torch raises inside ``loss_fn`` about sizes or shapes, the output the model produced and the
targets it was given are both measured; the finding says which dimension disagrees instead of
refusing the diagnosis. Inputs and targets of different batch sizes stay a refusal: that is a
data-loading mistake, not a head that disagrees with its labels. (Class indices beyond the head
are ``labels-out-of-range``; probabilities refused by BCE are ``non-probability-into-prob-loss``.)
No threshold: the loss raised.
"""

from __future__ import annotations

import math

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

_SHAPE_WORDS = ("size", "shape", "dimension", "match", "expected")


@check("head-label-mismatch")
def head_label_mismatch(trace: Trace, th: Thresholds) -> list[Finding]:
    """The loss raised on a shape disagreement between the output and the targets."""
    out, tg, err = trace.output, trace.targets, trace.loss.error
    if out is None or tg is None or err is None:
        return []
    if not any(w in err.lower() for w in _SHAPE_WORDS):
        return []
    o, t = tuple(out.stats.shape), tuple(tg.stats.shape)
    per_out = math.prod(o[1:]) if len(o) > 1 else 1
    per_tgt = math.prod(t[1:]) if len(t) > 1 else 1
    if not o or not t or o[0] != t[0] or per_out == per_tgt:
        return []  # a batch of inputs and targets that do not match is bad input, not a head bug
    what = f"the head gives {per_out} value(s) per example and the targets have {per_tgt}"
    return [Finding(
        "head-label-mismatch", "error", "loss",
        {"loss": trace.loss.kind, "output_shape": list(o), "target_shape": list(t),
         "outputs_per_example": per_out, "targets_per_example": per_tgt,
         "torch_error": err},
        f"the loss raised because {what} (output {o}, targets {t}).",
        "The last layer decides what the model predicts per example; the loss pairs each "
        "prediction with a target. Class indices need a head of K logits and targets of shape "
        "(B,); one-hot or multi-label targets need a head as wide as the target rows; a single "
        "binary output needs targets of shape (B, 1).",
        (Fix("make the head as wide as the label format (or convert the labels)",
             "nn.Linear(hidden, n_classes)              # K logits for K classes\n"
             "y = y.argmax(1) if y.dim() == 2 else y    # one-hot -> class indices"),),
    )]
