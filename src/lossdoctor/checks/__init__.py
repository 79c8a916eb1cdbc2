"""One module per problem family; importing this package registers every check."""

from lossdoctor.checks import (  # noqa: F401 - imported to register
    arguments,
    data,
    dead_units,
    degenerate,
    direction,
    dynamics,
    gradients,
    head_labels,
    init_loss,
    label_content,
    labels,
    learning_rate,
    loss_head,
    numerics,
    optimizer,
    output_range,
    precision,
    prob_loss,
    ranks,
    reduction,
    regularization,
    saturation,
    signal,
    stale,
    tokens,
    trainable,
)
from lossdoctor.checks.base import REGISTRY, run_checks

__all__ = ["REGISTRY", "run_checks"]
