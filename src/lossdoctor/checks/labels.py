"""``labels-out-of-range`` and ``loss-task-mismatch``: the loss does not fit the targets."""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.checks.progress import learns
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

_CE = Fix("multi-class: logits (B, K) and class indices in [0, K)",
          "loss_fn = nn.CrossEntropyLoss()\nloss = loss_fn(logits, y.long())")
_BCE = Fix("binary / multi-label: one logit per output and 0/1 targets of the same shape",
           "loss_fn = nn.BCEWithLogitsLoss()\nloss = loss_fn(logits, y.float())")


@check("labels-out-of-range")
def labels_out_of_range(trace: Trace, th: Thresholds) -> list[Finding]:
    """Class indices outside [0, K) or binary targets outside [0, 1]."""
    tg, loss = trace.targets, trace.loss
    if tg is None:
        return []
    if loss.kind in ("cross_entropy", "nll") and tg.dtype == "int" and trace.n_classes:
        k = trace.n_classes
        bad = {c: n for c, n in tg.class_counts.items() if c < 0 or c >= k}
        if not bad:
            return []
        lo, hi = min(tg.class_counts), max(tg.class_counts)
        one_based = lo >= 1 and hi == k
        return [Finding(
            code="labels-out-of-range",
            severity="error",
            where="targets",
            evidence={"n_classes": k, "target_min": lo, "target_max": hi,
                      "out_of_range": sum(bad.values()), "values": sorted(bad)[:10],
                      "torch_error": loss.error},
            summary=(
                f"{sum(bad.values())} target(s) outside [0, {k}) for {k} output logits "
                f"(targets span {lo}..{hi})" + ("; they look 1-based." if one_based else ".")
            ),
            explanation=(
                "Cross-entropy picks log p[y] for each example, so every class index must name "
                f"one of the K = {k} logits. An index outside makes torch raise on CPU and "
                "reads garbage or asserts on GPU. Either the labels need shifting/remapping, or "
                "the output layer needs as many units as there are classes."
            ),
            fixes=(
                Fix("shift 1-based labels" if one_based else "remap labels to 0..K-1",
                    "y = y - 1" if one_based else
                    "classes, y = torch.unique(y, return_inverse=True)"),
                Fix("or give the output layer one unit per class",
                    f"nn.Linear(hidden, {hi + 1})"),
            ),
        )]
    if loss.kind in ("bce", "bce_logits") and (tg.stats.min < 0 or tg.stats.max > 1):
        return [Finding(
            code="labels-out-of-range",
            severity="error",
            where="targets",
            evidence={"target_min": tg.stats.min, "target_max": tg.stats.max,
                      "torch_error": loss.error},
            summary=(f"binary cross-entropy targets span [{g(tg.stats.min)}, {g(tg.stats.max)}]; "
                     "they must lie in [0, 1]."),
            explanation=(
                "BCE = -[y log p + (1 - y) log(1 - p)] is a cross-entropy only for y in [0, 1]; "
                "for y > 1 it is unbounded below and drives the logits to infinity. Targets "
                "like class indices 0..K-1 need cross-entropy over K logits instead."
            ),
            fixes=(_CE, _BCE),
        )]
    return []


@check("loss-task-mismatch")
def loss_task_mismatch(trace: Trace, th: Thresholds) -> list[Finding]:
    """A loss that does not fit the targets or the output."""
    tg, loss, out = trace.targets, trace.loss, trace.output
    if tg is None or out is None:
        return []

    def finding(summary: str, explanation: str, fixes: tuple[Fix, ...], severity: str = "error",
                **evidence: object) -> list[Finding]:
        evidence.update({"loss": loss.kind, "output_shape": list(out.stats.shape),
                         "target_shape": list(tg.stats.shape), "target_dtype": tg.dtype,
                         "torch_error": loss.error})
        return [Finding("loss-task-mismatch", severity, "loss", evidence, summary,  # type: ignore[arg-type]
                        explanation, fixes)]

    if loss.kind in ("mse", "l1", "huber", "smooth_l1") and tg.dtype == "int":
        return finding(
            f"{loss.kind} on integer class labels (values {g(tg.stats.min)}..{g(tg.stats.max)}).",
            "A regression loss on class indices treats classes as ordered numbers: predicting "
            "class 3 for a 7 costs 16 times more than predicting 6. Classification wants a "
            "probability per class and cross-entropy.",
            (_CE,), classes_seen=len(tg.class_counts),
        )
    if (loss.kind in ("mse", "l1", "huber", "smooth_l1", "bce", "bce_logits") and loss.error is None
            and out.stats.shape != tg.stats.shape):
        return finding(
            f"{loss.kind} broadcasts output {tuple(out.stats.shape)} against targets "
            f"{tuple(tg.stats.shape)}: every output is compared with the wrong targets.",
            "Elementwise losses broadcast mismatched shapes instead of failing: an output of "
            "shape (B, 1) against targets of shape (B,) becomes a (B, B) table that compares "
            "every prediction with every target, so the model learns the mean of the targets.",
            (Fix("make the shapes equal", "loss = loss_fn(output.squeeze(-1), y)   # or y.view_as(output)"),),
        )
    if loss.kind == "cross_entropy" and out.stats.shape[1:2] == (1,):
        return finding(
            "cross-entropy over a single logit: softmax of one value is always 1, the loss is "
            "always 0.",
            "Softmax over K = 1 logits is identically 1, so log p = 0 for every example and "
            "nothing is learned. A binary task needs one logit with BCEWithLogitsLoss, or two "
            "logits with cross-entropy.",
            (_BCE,),
        )
    if loss.kind == "cross_entropy" and tg.dtype == "float" and not tg.prob_rows:
        return finding(
            f"cross-entropy with float targets that are not probabilities (values "
            f"{g(tg.stats.min)}..{g(tg.stats.max)}).",
            "With float targets CrossEntropyLoss reads them as class probabilities per row "
            "(soft labels): each row must be in [0, 1] and sum to 1. Continuous targets need a "
            "regression loss; class indices must be integers.",
            (_CE, Fix("regression targets", "loss_fn = nn.MSELoss()")),
        )
    if loss.kind in ("bce", "bce_logits") and tg.onehot_rows and (trace.n_classes or 0) >= 3:
        steps = learns(trace, th)  # it trains, less well-posed: worth knowing, not a warning
        return finding(
            f"binary cross-entropy on one-hot targets over {trace.n_classes} exclusive classes"
            + (f"; the probe steps still learn (loss {g(steps[0])} -> {g(steps[1])})."
               if steps else "."),
            "Every target row has exactly one 1, so the classes are mutually exclusive. BCE "
            "scores each class independently and lets the probabilities sum to anything; "
            "softmax cross-entropy encodes that exactly one class is right.",
            (Fix("use cross-entropy with class indices",
                 "loss = F.cross_entropy(logits, y.argmax(dim=1))"),),
            severity="info" if steps else "warning",
        )
    if loss.kind == "nll" and out.producer != "log_softmax" and not out.rows_sum_to_one \
            and out.stats.max > 0:
        return finding(
            f"NLLLoss on values up to {g(out.stats.max)}: log-probabilities are never above 0.",
            "NLLLoss returns -input[y] and relies on the input being log_softmax(z). On raw "
            "logits it is unbounded below: the optimizer can lower it forever by inflating the "
            "target logit.",
            (Fix("add log_softmax or use cross-entropy on logits",
                 "loss = F.cross_entropy(logits, y)"),),
        )
    return []
