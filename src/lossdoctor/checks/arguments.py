"""``loss-arguments-swapped``: the library loss got the model output and the targets swapped.

Keras losses take ``(y_true, y_pred)`` and PyTorch's ``(input, target)``: a hand-written wrapper
that forwards its arguments in the other framework's order hands the labels to the loss as the
prediction. The loss still returns a number (one-hot labels clipped to 1e-7 give -log(1e-7) = 16.1
per wrong class, a BCE on 0/1 "predictions" is clamped at 100), so nothing raises: the model is
trained towards a target it produces itself. No threshold: which tensor went where decides.
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


@check("loss-arguments-swapped")
def loss_arguments_swapped(trace: Trace, th: Thresholds) -> list[Finding]:
    """The model output passed as the loss's target and the targets as its prediction."""
    loss = trace.loss
    if not loss.arguments_swapped:
        return []
    return [Finding(
        code="loss-arguments-swapped",
        severity="error",
        where="loss",
        evidence={"loss": loss.kind, "loss_value": loss.value},
        summary=(f"the {loss.kind} loss inside loss_fn receives the targets as its prediction and "
                 "the model output as its target: the arguments are swapped."),
        explanation=(
            "Keras losses are called loss(y_true, y_pred), PyTorch's loss(input, target). A "
            "wrapper that passes them on in the other order computes the likelihood of the labels "
            "under the model's output: the value is finite (clipped logs), so nothing raises, but "
            "the gradient pushes the output towards what makes the labels likely, not towards the "
            "labels."
        ),
        fixes=(Fix("pass the arguments in the loss's own order",
                   "def loss_fn(y_true, y_pred):            # Keras order\n"
                   "    return keras.losses.categorical_crossentropy(y_true, y_pred)\n"
                   "# PyTorch: F.binary_cross_entropy(output, target)"),),
    )]
