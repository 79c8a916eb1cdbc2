"""``padding-in-loss`` and ``labels-copy-inputs``: token labels that do not line up with the ids."""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


@check("padding-in-loss")
def padding_in_loss(trace: Trace, th: Thresholds) -> list[Finding]:
    """Padding positions whose labels the loss counts."""
    tk = trace.tokens
    if tk is None or not tk.padded_counted or trace.loss.kind not in ("cross_entropy", "nll"):
        return []
    share = tk.padded_counted / (tk.positions + tk.padded_counted)
    if share < th.padding_share:
        return []
    return [Finding(
        code="padding-in-loss",
        severity="warning",
        where="targets",
        evidence={"padding_positions": tk.padded, "padding_counted": tk.padded_counted,
                  "label_positions": tk.positions, "share": share, "pad_id": tk.pad_id,
                  "padding_from": tk.pad_source, "ignore_index": tk.ignore_index,
                  "lines": {"padding_share": th.padding_share}},
        summary=(f"the loss counts {tk.padded_counted} of {tk.padded} padding positions (pad id "
                 f"{tk.pad_id}, from the {tk.pad_source}): {g(100 * share)}% of the label "
                 f"positions it averages over (line {g(100 * th.padding_share)}%)."),
        explanation=(
            "After the first pad token every later one is trivially predictable, so the model "
            "spends capacity learning to emit padding, the gradient of the real tokens is "
            "diluted by that share, and the reported loss and perplexity are deflated (they "
            "improve as the model learns the padding). Labels at padding positions must be the "
            f"loss's ignore index ({tk.ignore_index})."),
        fixes=(Fix("set the labels of padding positions to the ignore index",
                   "labels = input_ids.clone()\nlabels[attention_mask == 0] = -100"),
               Fix("or let the collator do it (Hugging Face)",
                   "DataCollatorForLanguageModeling(tokenizer, mlm=False)  # pads labels with "
                   "-100")),
    )]


@check("labels-copy-inputs")
def labels_copy_inputs(trace: Trace, th: Thresholds) -> list[Finding]:
    """Token labels equal to the input token at the same position: nothing to predict."""
    tk = trace.tokens
    if tk is None or tk.positions < th.min_label_batch or (trace.n_classes or 0) <= 2:
        return []
    share = tk.copied / tk.positions
    if share < th.copied_share:
        return []
    return [Finding(
        code="labels-copy-inputs",
        severity="error",
        where="targets",
        evidence={"label_positions": tk.positions, "copied": tk.copied, "share": share,
                  "n_classes": trace.n_classes,
                  "lines": {"copied_share": th.copied_share, "min_label_batch": th.min_label_batch}},
        summary=(f"{g(100 * share)}% of the {tk.positions} token labels the loss counts equal "
                 f"the input token at the same position (line {g(100 * th.copied_share)}%): the "
                 "model is asked to copy its input."),
        explanation=(
            "A causal language model predicts token t+1 from tokens up to t, so its labels are "
            "the inputs shifted by one; a masked LM predicts only the masked positions. When the "
            "label at a position is the token the model reads there, the loss falls to 0 by "
            "copying the input through the residual stream and nothing about language is "
            "learned. Hugging Face models shift labels themselves (pass labels=input_ids); a "
            "hand-written loss must shift, and an MLM must set unmasked labels to -100."),
        fixes=(Fix("shift: predict the next token",
                   "loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), input_ids[:, 1:].reshape(-1))"),
               Fix("masked LM: count only the masked positions",
                   "labels[~masked] = -100")),
    )]
