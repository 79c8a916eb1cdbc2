"""One module per problem family; importing this package registers every check."""

from lossdoctor.checks import (  # noqa: F401 - imported to register
    data,
    dead_units,
    degenerate,
    dynamics,
    gradients,
    init_loss,
    labels,
    learning_rate,
    loss_head,
    numerics,
    optimizer,
    precision,
    reduction,
    regularization,
    saturation,
    signal,
    stale,
    trainable,
)
from lossdoctor.checks.base import REGISTRY, run_checks

__all__ = ["REGISTRY", "run_checks"]
