"""``labels-degenerate``: labels that carry no information in this batch.

A classifier trained on a batch where every label is the same class learns a constant; a
regression whose targets are all equal has var(y) = 0 and nothing to fit. Both come from a wrong
transform (labels divided by 255 and truncated to 0, a column of constants) or from unshuffled,
sorted data. A balanced dataset of K >= 3 classes puts a single class into a batch of B examples
with probability K (1/K)^B, below 1e-7 for B >= 16, so ``min_label_batch`` is 16. A binary
or heavily imbalanced task can give single-class batches legitimately: there it is info.
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


@check("labels-degenerate")
def labels_degenerate(trace: Trace, th: Thresholds) -> list[Finding]:
    """Every label the same class (classification) or every target equal (regression)."""
    tg = trace.targets
    if tg is None or trace.batch_size < th.min_label_batch or tg.stats.nonfinite:
        return []
    lines = {"min_label_batch": th.min_label_batch}
    fix = Fix("check the label transform and shuffle the data",
              "print(torch.unique(y, return_counts=True))   # every class should appear\n"
              "loader = DataLoader(dataset, batch_size=32, shuffle=True)")
    if trace.task == "multiclass" and tg.class_counts and len(tg.class_counts) == 1:
        (label, count), = tg.class_counts.items()
        k = trace.n_classes or 0
        return [Finding(
            "labels-degenerate", "warning" if k >= 3 else "info", "targets",
            {"classes_present": 1, "label": label, "count": count, "n_classes": k,
             "batch_size": trace.batch_size, "lines": lines},
            f"all {count} labels in the batch are class {label} (of {k} outputs).",
            "A batch of one class teaches the model to always answer that class: the loss falls "
            "to 0 without learning anything about the input. Either a label transform collapsed "
            "the classes or the data is sorted and not shuffled.",
            (fix,),
        )]
    if trace.task == "regression" and tg.dtype == "float" and tg.stats.std == 0:
        return [Finding(
            "labels-degenerate", "warning", "targets",
            {"target_value": tg.stats.mean, "batch_size": trace.batch_size, "lines": lines},
            f"every target in the batch equals {g(tg.stats.mean)}: var(y) = 0.",
            "With constant targets the best model ignores its input and outputs the constant; "
            "nothing about the data can be learned.",
            (fix,),
        )]
    return []
