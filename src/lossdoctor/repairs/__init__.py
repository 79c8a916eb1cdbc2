"""Mechanical fixes, applied to copies of the user's objects, and their verification."""

from lossdoctor.case import Case, copy_case
from lossdoctor.repairs.data import standardize_inputs
from lossdoctor.repairs.head import drop_final_activation, logits_loss
from lossdoctor.repairs.init import reinit, relu_activations
from lossdoctor.repairs.optim import (
    adamw,
    lower_weight_decay,
    mean_reduction,
    no_decay_groups,
    scale_lr,
)

__all__ = [
    "Case", "adamw", "copy_case", "drop_final_activation", "logits_loss", "lower_weight_decay",
    "mean_reduction", "no_decay_groups", "reinit", "relu_activations", "scale_lr", "standardize_inputs",
]
