"""``sum-reduction``: a loss summed over the batch.

With ``sum`` the gradient is B times the per-example mean, so the effective learning rate grows
with the batch size B and a learning rate tuned at one batch size is wrong at another.
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


@check("sum-reduction")
def sum_reduction(trace: Trace, th: Thresholds) -> list[Finding]:
    """A ``sum``-reduced loss over a batch of more than one example."""
    loss = trace.loss
    if loss.reduction != "sum" or trace.batch_size <= 1 or loss.error:
        return []
    if loss.kind != "custom" and (loss.final_op or "").startswith("DivBackward"):
        return []  # a library sum divided afterwards (by the batch size, usually): a mean
    b = trace.batch_size
    hand = loss.kind == "custom"
    return [Finding(
        code="sum-reduction",
        severity="warning",
        where="loss",
        evidence={"reduction": "sum", "batch_size": b, "loss": loss.value,
                  "per_example_loss": loss.value / b, "detected_from": "final op "
                  + str(loss.final_op) if hand else f"{loss.kind}(reduction='sum')"},
        summary=(f"the loss is summed over the batch of {b} ({g(loss.value)}; per example "
                 f"{g(loss.value / b)}): the gradient and step size scale with the batch size."),
        explanation=(
            f"d(sum_i l_i)/dw = B * d(mean_i l_i)/dw, so with B = {b} each SGD step is {b}x the "
            "step of a mean-reduced loss at the same learning rate. Changing the batch size "
            "silently changes the effective learning rate, and the loss value is not comparable "
            "across batch sizes. With Adam the scale mostly cancels, but not against weight decay "
            "or epsilon."
        ),
        fixes=(Fix(f"use the mean and scale the learning rate by {b} to keep the same step",
                   "loss_fn = nn.CrossEntropyLoss(reduction=\"mean\")   # or loss.sum() / len(y)\n"
                   f"for group in optimizer.param_groups:\n    group[\"lr\"] *= {b}"),),
    )]
