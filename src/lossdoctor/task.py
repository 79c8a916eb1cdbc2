"""Which learning task the loss and targets describe."""

from __future__ import annotations

from lossdoctor.trace import TargetStats, Task

TASKS: tuple[str, ...] = ("multiclass", "binary", "multilabel", "regression")


def infer_task(
    loss_kind: str,
    pred_shape: tuple[int, ...],
    targets: TargetStats | None,
    given: Task | None = None,
) -> tuple[Task, int | None]:
    """Infer the task and its number of classes/outputs.

    Args:
        loss_kind: loss kind from :class:`~lossdoctor.trace.LossStats`.
        pred_shape: shape of the prediction the loss receives.
        targets: target statistics.
        given: a task the user stated; it wins over inference.

    Returns:
        (task, n_classes): classes for multiclass, outputs per example otherwise.
    """
    batch = pred_shape[0] if pred_shape else 1
    numel = 1
    for s in pred_shape:
        numel *= s
    per_example = numel // batch if batch else numel
    classes = pred_shape[1] if len(pred_shape) >= 2 else (pred_shape[0] if pred_shape else 1)
    if given is not None:
        return given, classes if given == "multiclass" else per_example
    if loss_kind in ("cross_entropy", "nll"):
        return "multiclass", classes
    if loss_kind in ("bce", "bce_logits"):
        return ("binary" if per_example == 1 else "multilabel"), per_example
    if loss_kind in ("mse", "l1", "huber", "smooth_l1"):
        return "regression", per_example
    if targets is None or loss_kind == "kl_div":
        return "unknown", None
    if targets.dtype == "int" and len(pred_shape) >= 2 and classes > 1:
        return "multiclass", classes
    if targets.binary and targets.stats.numel == numel:
        return ("binary" if per_example == 1 else "multilabel"), per_example
    if targets.dtype == "float":
        return "regression", per_example
    return "unknown", None
