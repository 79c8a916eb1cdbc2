"""A Keras optimizer as the trace describes it, from its configuration (never its state).

Keras 3's ``weight_decay`` is decoupled for every optimizer (``w -= lr * wd * w`` beside the
gradient step), so it is recorded as decoupled decay per variable (excluding the variables
``exclude_from_weight_decay`` names). L2 from ``kernel_regularizer`` is the coupled kind: it is
part of the loss, and with an Adam-family optimizer Adam's scaling undoes it, which is the
``adam-coupled-l2`` case; the group then records the coupled coefficient 2 * l2 (d/dw l2 w^2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lossdoctor.trace import OptimizerStats

ADAM_FAMILY = frozenset({"Adam", "AdamW", "Adamax", "Nadam", "Lamb", "Lion", "Adafactor",
                         "Muon"})


def learning_rate(optimizer: Any) -> float:
    """The current learning rate (a schedule evaluated at the current iteration)."""
    import keras

    lr = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(lr))


def decay_of(optimizer: Any, variable: Any) -> float:
    """The decoupled weight decay Keras applies to one variable."""
    wd = float(getattr(optimizer, "weight_decay", None) or 0.0)
    if wd == 0.0:
        return 0.0
    use = getattr(optimizer, "_use_weight_decay", None)
    return wd if use is None or use(variable) else 0.0


def optimizer_stats(optimizer: Any, variables: Sequence[tuple[str, Any]],
                    coupled_l2: dict[str, float]) -> OptimizerStats | None:
    """The optimizer record.

    Args:
        optimizer: a Keras optimizer or None.
        variables: (name, variable) of the model's parameters.
        coupled_l2: name -> coefficient of an L2 regulariser on that variable (in the loss).
    """
    if optimizer is None:
        return None
    name = type(optimizer).__name__
    adam = name in ADAM_FAMILY
    lr = learning_rate(optimizer)
    groups: dict[tuple[float, bool], list[str]] = {}
    for n, v in variables:
        wd = decay_of(optimizer, v)
        coupled = adam and wd == 0.0 and n in coupled_l2
        key = (2 * coupled_l2[n] if coupled else wd, coupled)
        groups.setdefault(key, []).append(n)
    decoupled = not any(coupled for _, coupled in groups)
    return OptimizerStats(
        name=name, adam_family=adam, decoupled=decoupled,
        groups=tuple({"lr": lr, "weight_decay": wd, "params": names,
                      **({"coupled_l2": True} if coupled else {})}
                     for (wd, coupled), names in groups.items()))
