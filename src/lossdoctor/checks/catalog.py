"""The rule catalogue: one entry per finding code, the single place that says what a code means.

Each entry says what the rule measures, why it matters, the lines it draws (names of
:class:`~lossdoctor.Thresholds` fields, whose defaults and sources live there), the evidence keys
a finding carries, the mechanical repair that answers it, a bad and a good example, and the
benchmark scenarios that exercise it (a fault that must raise it and a healthy control that must
not). ``lossdoctor rules``, the README table, the repairs registry and the list of findings
that explain a refused loss are derived from here; the tests hold the checks to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lossdoctor.findings import Severity

STEP = {"step": "observed training step the finding refers to"}
LINES = {"lines": "the thresholds this finding was judged against, by Thresholds field name"}
RANKS = {"ranks": "torch.distributed: the ranks the finding holds on"}


@dataclass(frozen=True)
class Rule:
    """One finding code.

    Attributes:
        code: the stable identifier.
        title: one line.
        severities: the severities it can have, most severe first.
        scope: ``batch`` (one-batch diagnosis), ``layers`` (also on monitor steps) or ``run``
            (monitor only).
        measures: what is measured and when it fires.
        why: why training suffers.
        thresholds: the :class:`~lossdoctor.Thresholds` fields it uses.
        evidence: evidence key -> meaning.
        repair: the mechanical repair verified on a copy (None when the fix is advice only).
        fix: the fix in words.
        bad: a minimal example that triggers it.
        good: the same, fixed.
        references: where the measurement or its line comes from.
        fault: ``faults:NAME`` (fault benchmark) or ``runs:NAME`` (monitor run) that raises it.
        control: a healthy scenario (``controls:NAME`` or ``runs:NAME``) that must stay quiet.
        explains_loss_error: whether it explains why the loss function itself raised.

    Under ``torch.distributed`` every finding may also carry ``ranks`` (see :data:`RANKS`).
    """

    code: str
    title: str
    severities: tuple[Severity, ...]
    scope: str
    measures: str
    why: str
    thresholds: tuple[str, ...]
    evidence: dict[str, str]
    repair: str | None
    fix: str
    bad: str
    good: str
    references: tuple[str, ...] = ()
    fault: str = ""
    control: str = ""
    explains_loss_error: bool = False


_DEPTH_REFS = ("Glorot & Bengio, AISTATS 2010", "He et al., ICCV 2015",
               "Poole et al., NeurIPS 2016; Schoenholz et al., ICLR 2017")

_SIGNAL_EVIDENCE = {
    "from_layer": "first layer of the run", "to_layer": "last layer of the run",
    "rms_from": "pre-activation rms there", "rms_to": "and at the end", "ratio": "rms_to / rms_from",
    "gain_per_layer": "geometric mean factor per layer", "pre_activation_rms": "the whole series",
    "weight_gain_median": "median std(w) sqrt(fan_in)",
    "weight_gain_neutral": "the value that keeps the scale for this activation",
    "predicted_gain_per_layer": "mean-field prediction",
    "probe_loss": "loss before and after the probe steps when they still learn", **LINES}
_GRAD_EVIDENCE = {
    "from_layer": "output-side layer", "to_layer": "input-side layer",
    "grad_norm_outer": "per-example gradient norm at the output side",
    "grad_norm_inner": "and at the input side", "ratio_inner_to_outer": "their ratio",
    "factor_per_layer": "geometric mean factor per layer", "grad_norms": "the series", **LINES}
_LR_EVIDENCE = {
    "optimizer": "class", "lr": "largest lr", "loss_first": "loss before the probe steps",
    "loss_last": "loss after them", "steps": "steps run",
    "update_ratio_median": "median ||w1 - w0|| / ||w0||",
    "loss_peak": "monitor: highest loss of the run", "peak_step": "monitor: its step",
    **STEP, **LINES}

RULES: tuple[Rule, ...] = (
    Rule(
        "init-loss-high", "loss at initialisation far above the chance level",
        ("error", "warning", "info"), "batch",
        "The first loss against what an uncertain model gets: ln K for K classes, ln 2 per binary "
        "output, var(y) for MSE. Fires above the loss that logits of std init_loss_scale give "
        "(error at init_loss_error_scale); a penalty inside loss_fn is excluded. A regression "
        "warning whose probe steps already cut the loss by learning_progress is info.",
        "A confidently wrong start spends the first steps undoing the init; with huge logits the "
        "softmax is saturated and the loss can go non-finite within steps.",
        ("init_loss_scale", "init_loss_error_scale", "learning_progress"),
        {"loss": "first loss (per example for sum reduction; data term only)",
         "chance_level": "what a uniform prediction scores", "chance_definition": "how",
         "warning_loss": "loss at the warning line", "error_loss": "loss at the error line",
         "ratio_to_chance": "loss / chance level", "output_rms": "rms of the model output",
         "label_prior_entropy": "entropy of the label distribution (multiclass)",
         "signal_gain_per_layer": "forward growth per layer when the signal explodes",
         "predicted_initial_loss": "mean-field prediction from the weights alone",
         "probe_loss": "loss before and after the probe steps when they learn", **LINES},
        "reinit", "He/Xavier init with zero biases and a small output layer",
        "nn.init.normal_(w, std=0.5) on 750-wide ReLU layers: first loss 6e6",
        "nn.init.kaiming_normal_(w, nonlinearity='relu'); zeros_(b): first loss 2.3 = ln 10",
        ("Karpathy, A Recipe for Training Neural Networks (2019): verify loss @ init",),
        "faults:story1-deep-relu-trunc-normal", "controls:he-mlp-20",
    ),
    Rule(
        "signal-exploding", "forward activations grow geometrically with depth",
        ("error", "warning"), "layers",
        "Pre-activation rms at every nonlinearity; fires when it grows by signal_ratio along a "
        "monotone run of layers (error at signal_error_ratio).",
        "Each layer multiplies the variance by fan_in Var(w) E[phi^2]/Var(z); a factor above 1 "
        "compounds into huge logits and a saturated softmax.",
        ("signal_ratio", "signal_error_ratio"),
        _SIGNAL_EVIDENCE,
        "reinit", "an init with unit gain per layer (He for ReLU, Xavier for tanh), or norm layers",
        "Linear weights 4x He scale in a 10-layer ReLU MLP", "He init", _DEPTH_REFS,
        "faults:exploding-grad-he-x4", "controls:he-mlp-20",
    ),
    Rule(
        "signal-vanishing", "forward activations shrink geometrically with depth",
        ("error", "warning", "info"), "layers",
        "Pre-activation rms at every nonlinearity; fires when it shrinks by signal_ratio along a "
        "monotone run of layers that no normalisation layer resets (error at "
        "signal_error_ratio; info when the probe steps still cut the loss by learning_progress, "
        "or under an Adam-family optimizer, which rescales each step).",
        "Late layers see almost no signal: their outputs are dominated by biases and the "
        "gradients to the weights below are tiny.",
        ("signal_ratio", "signal_error_ratio", "learning_progress"),
        _SIGNAL_EVIDENCE,
        "reinit", "an init with unit gain per layer, or norm layers",
        "Linear weights 0.2x He scale in a deep ReLU MLP", "He init", _DEPTH_REFS,
        "faults:vanishing-signal-x0.2", "controls:he-mlp-20",
    ),
    Rule(
        "grad-exploding", "gradients grow geometrically from the output towards the input",
        ("warning",), "layers",
        "Per-example gradient norm at linear/conv outputs along the path into the output; fires "
        "when it grows by grad_ratio walking back towards the input.",
        "Early layers take steps orders of magnitude larger than late ones; one learning rate "
        "cannot suit both.",
        ("grad_ratio",),
        _GRAD_EVIDENCE,
        "reinit", "an init with chi = 1 (He), normalisation; clipping limits the damage",
        "Linear weights 4x He scale", "He init",
        ("Zhang et al., AUTOTRAINER, ICSE 2021", *_DEPTH_REFS),
        "faults:exploding-grad-he-x4", "controls:he-mlp-20",
    ),
    Rule(
        "grad-vanishing", "gradients shrink geometrically from the output towards the input",
        ("warning", "info"), "layers",
        "Per-example gradient norm at linear/conv outputs along the path into the output; fires "
        "when it shrinks by grad_ratio walking back towards the input (info under Adam, which "
        "rescales each step).",
        "Early layers receive almost no gradient and stop learning while the last layers fit alone.",
        ("grad_ratio",),
        _GRAD_EVIDENCE,
        "reinit", "He init (or normalisation, residual connections)",
        "20-layer ReLU MLP with PyTorch's default init under SGD", "He init",
        ("Zhang et al., AUTOTRAINER, ICSE 2021", *_DEPTH_REFS),
        "faults:vanishing-grad-default-init-20", "controls:he-mlp-20",
    ),
    Rule(
        "saturation", "sigmoid/tanh units on their flat tails", ("warning",), "layers",
        "Share of a hidden sigmoid-like layer's pre-activations beyond |z| = 5 (sigmoid; 2.5 "
        "tanh, same relative slope); fires above saturated_fraction. The output unit is left to "
        "the loss-head rules.",
        "The gradient through the unit carries phi'(z), a few percent of its peak on the tails: "
        "the layers below stop learning.",
        ("saturated_fraction",),
        {"saturated_fraction": "share of saturated pre-activations", "abs_z": "the |z| line used",
         "pre_activation_rms": "typical |z|", "slope_ratio_at_rms": "phi'(rms) / phi'(0)", **LINES},
        "reinit", "Xavier init, normalised inputs, or a norm layer before the activation",
        "tanh MLP with weights 5x Xavier", "Xavier init with tanh gain",
        ("Wardat et al., DeepDiagnosis, ICSE 2022",),
        "faults:saturated-tanh-x5", "controls:xavier-tanh",
    ),
    Rule(
        "dead-relu", "ReLU units that output 0 for the whole batch", ("error", "warning"),
        "layers",
        "Share of a ReLU layer's units that are 0 for every example; fires at dead_fraction "
        "(error when the whole layer is dead) on batches of at least dead_min_batch. In a "
        "monitored run also when the share grew by dead_growth since monitoring began.",
        "A dead unit has zero gradient and never recovers; a dead layer blocks all learning below.",
        ("dead_fraction", "dead_min_batch", "dead_growth"),
        {"dead_fraction": "share of dead units", "dead_units": "count", "units": "layer width",
         "batch_size": "examples judged", "pre_activation_mean": "mean pre-activation",
         "pre_activation_std": "its spread", "first": "dead share when monitoring began", **STEP,
         **LINES},
        "reinit", "re-initialise (zero biases), lower the learning rate, or LeakyReLU/GELU",
        "nn.init.constant_(layer.bias, -10) before a ReLU", "zero biases",
        ("Zhang et al., AUTOTRAINER, ICSE 2021", "Wardat et al., DeepDiagnosis, ICSE 2022"),
        "faults:dying-relu-bias", "controls:he-mlp-20",
    ),
    Rule(
        "nonfinite", "NaN or Inf in activations, loss or gradients", ("error", "info"), "batch",
        "Counts non-finite values in every recorded output, the loss and every gradient; the "
        "batch is replayed with the same RNG state to name the first op that produced one (info "
        "when the loss and every gradient stay finite: the values were masked away). In a "
        "monitored run: the first non-finite loss and its step.",
        "One NaN poisons everything computed from it; one optimizer step writes it into the weights.",
        (),
        {"loss": "the loss value", "first_op": "op that produced the first NaN/Inf",
         "first_where": "its module and op", "first_phase": "inputs/model/loss/backward",
         "layers_with_nonfinite": "recorded layers with NaN/Inf",
         "nonfinite_counts": "how many in each",
         "params_with_nonfinite_grad": "parameters whose gradient is non-finite",
         "masked": "loss and gradients finite: the NaN/Inf never reached them",
         "first_layer": "monitor: first layer whose output was non-finite",
         "input_nonfinite": "monitor: non-finite input values",
         "ranks": "distributed: the ranks whose loss was non-finite",
         "first_rank": "distributed: the rank where it started",
         "rank_steps": "distributed: each rank's first non-finite step (0: none)", **STEP},
        None, "guard the op (log-domain functions, eps in denominators and sqrt), clean the inputs",
        "torch.sqrt(x) where x reaches 0 (gradient 1/(2 sqrt 0) = inf)", "torch.sqrt(x + 1e-12)",
        ("Wardat et al., DeepDiagnosis, ICSE 2022",),
        "faults:nan-from-sqrt", "controls:cnn-bn",
    ),
    Rule(
        "log-of-zero", "a log applied to values that reach 0", ("error", "info"), "batch",
        "Every log op: error when its input has zeros or non-positive values (info when the loss "
        "and every gradient stay finite: the -inf is masked away), info when it is "
        "log(softmax) / log(sigmoid) that is still finite but underflows once a logit gap "
        "exceeds about 104.",
        "log(0) = -inf turns the loss and gradients non-finite; log_softmax never forms p.",
        (),
        {"input_min": "smallest input to the log", "input_zeros": "exact zeros",
         "input_max": "largest input", "producer": "op that produced the input",
         "phase": "model or loss"},
        None, "F.log_softmax / F.logsigmoid / the library loss, or clamp",
        "torch.log(torch.softmax(z, 1))", "F.log_softmax(z, 1)",
        ("Wardat et al., DeepDiagnosis, ICSE 2022",),
        "faults:log-of-relu-features", "controls:log-softmax-nll",
    ),
    Rule(
        "mse-on-saturating-output", "squared error on a sigmoid or softmax output",
        ("warning", "info"), "batch",
        "A squared/absolute error loss on a sigmoid/softmax output with 0/1 or one-hot targets "
        "(info while the output is not saturated, s'(z) above half its peak, and the probe "
        "steps cut the loss by learning_progress).",
        "dC/dz = (a - y) s'(z): the gradient vanishes exactly when the output is confidently "
        "wrong (story 2); cross-entropy's dC/dz = a - y does not.",
        ("learning_progress",),
        {"loss": "loss kind", "output_op": "sigmoid or softmax", "targets": "binary or one-hot",
         "pre_activation_rms": "output |z|", "sigmoid_slope_at_rms": "s'(z) there",
         "saturated_fraction": "share of saturated output units",
         "probe_loss": "loss before and after the probe steps when they learn", **LINES},
        "logits-loss", "return logits and use BCEWithLogitsLoss / CrossEntropyLoss",
        "nn.Sequential(..., nn.Sigmoid()); nn.MSELoss()", "no final Sigmoid; nn.BCEWithLogitsLoss()",
        ("Nielsen, Neural Networks and Deep Learning, ch. 3",),
        "faults:story2-saturated-neuron-mse", "controls:binary-logits",
    ),
    Rule(
        "double-softmax", "probabilities fed to a loss that expects logits", ("error", "warning"),
        "batch",
        "The output entering CrossEntropyLoss / BCEWithLogitsLoss comes from a softmax/sigmoid "
        "(or its rows sum to one), or NLLLoss gets probabilities instead of log-probabilities. "
        "A warning when the backend recovered the logits itself (Keras on TensorFlow reads them "
        "off the softmax and warns): the loss is right there and wrong on Keras' torch backend.",
        "The loss applies its own softmax to values in [0, 1]: predictions can never be confident, "
        "the loss is bounded away from 0 and the gradient is squashed.",
        (),
        {"loss": "loss kind", "output_op": "producer of the output", "output_min": "smallest output",
         "output_max": "largest output", "rows_sum_to_one": "rows are probability vectors",
         "backend": "Keras backend that ran the loss",
         "backend_recovers_logits": "whether that backend computed the loss from the logits"},
        "drop-final-activation", "remove the final softmax/sigmoid; apply it only at inference",
        "nn.Sequential(..., nn.Softmax(1)); nn.CrossEntropyLoss()",
        "nn.Sequential(...); nn.CrossEntropyLoss()",
        ("Ben Braiek & Khomh, TheDeepChecker, TOSEM 2022",),
        "faults:redundant-softmax-module", "controls:log-softmax-nll",
    ),
    Rule(
        "loss-arguments-swapped", "the loss got the output and the targets swapped",
        ("error",), "batch",
        "The library loss called inside loss_fn receives the model output as its target and a "
        "target tensor as its prediction: a wrapper written (y_pred, y_true) around Keras' "
        "(y_true, y_pred), or a PyTorch loss called as loss(target, output).",
        "Clipped logs keep the value finite, so nothing raises; the gradient trains the output "
        "towards making the labels likely under it, not towards the labels.",
        (),
        {"loss": "loss kind", "loss_value": "the loss value"},
        None, "pass (y_true, y_pred) to Keras losses and (output, target) to PyTorch's",
        "loss_fn = lambda out, y: F.binary_cross_entropy(y, out)",
        "loss_fn = lambda out, y: F.binary_cross_entropy(out, y)",
        (),
        "faults:bce-arguments-swapped", "controls:binary-logits", explains_loss_error=True,
    ),
    Rule(
        "loss-task-mismatch", "the loss does not fit the targets or the output",
        ("error", "warning", "info"), "batch",
        "Regression loss on integer labels; elementwise loss broadcasting mismatched shapes; "
        "cross-entropy over one logit or on non-probability float targets; BCE on one-hot "
        "exclusive classes (info when the probe steps still learn); NLL on values above 0.",
        "The model optimises something other than the task: class order treated as distance, "
        "every prediction compared with every target, a constant loss.",
        (),
        {"loss": "loss kind", "output_shape": "model output shape", "target_shape": "target shape",
         "target_dtype": "int/float/bool", "torch_error": "what torch raised, if it did",
         "classes_seen": "distinct labels in the batch"},
        None, "cross-entropy on logits with class indices; matching shapes for elementwise losses",
        "nn.MSELoss()(model(x), y.float()) with y class indices",
        "nn.CrossEntropyLoss()(model(x), y)",
        ("Ben Braiek & Khomh, TheDeepChecker, TOSEM 2022",),
        "faults:wrong-loss-mse-on-labels", "controls:regression", explains_loss_error=True,
    ),
    Rule(
        "labels-out-of-range", "class index outside [0, K) or binary targets outside [0, 1]",
        ("error",), "batch",
        "Integer targets of cross-entropy/NLL against the number of logits; BCE targets against "
        "[0, 1].",
        "torch raises on CPU and reads garbage or asserts on GPU; BCE with y > 1 is unbounded below.",
        (),
        {"n_classes": "logits per example", "target_min": "smallest target",
         "target_max": "largest target", "out_of_range": "how many are outside",
         "values": "the offending values", "torch_error": "what torch raised"},
        None, "shift/remap the labels, or give the head one unit per class",
        "labels 1..10 with nn.Linear(h, 10)", "y - 1",
        ("Wardat et al., DeepDiagnosis, ICSE 2022",),
        "faults:labels-1-based", "controls:he-mlp-20", explains_loss_error=True,
    ),
    Rule(
        "non-probability-into-prob-loss", "outputs that are not probabilities fed to a "
        "log-likelihood", ("error", "warning"), "batch",
        "The prediction entering BCE or a hand-written log-likelihood (a log in loss_fn, class "
        "targets) comes from a ReLU/linear/tanh op or leaves [0, 1] (error); independent "
        "sigmoids over K >= 3 exclusive one-hot classes feed a categorical one (warning). A "
        "loss that applies its own sigmoid/softmax before the log is left alone.",
        "log p is a likelihood only for probabilities: otherwise torch raises, Keras-style "
        "clipping gives a constant with zero gradient, or the loss rewards outputs beyond 1; "
        "sigmoids over exclusive classes are not pushed to rank the right class first.",
        (),
        {"loss": "loss kind", "likelihood": "binary or categorical",
         "output_op": "producer of the prediction", "output_min": "smallest prediction",
         "output_max": "largest prediction", "rows_sum_to_one": "rows are distributions",
         "outputs_per_example": "K", "torch_error": "what torch raised, if it did"},
        None, "logits with BCEWithLogitsLoss / CrossEntropyLoss (or a sigmoid/softmax output)",
        "nn.Sequential(..., nn.Linear(h, 1)); nn.BCELoss()",
        "nn.Sequential(..., nn.Linear(h, 1)); nn.BCEWithLogitsLoss()",
        ("Humbatova et al., Taxonomy of Real Faults in Deep Learning Systems, ICSE 2020",
         "deepmufl (Ghanbari et al., ASE 2023): StackOverflow 41823068, 54282951"),
        "faults:relu-output-into-bce", "controls:binary-logits", explains_loss_error=True,
    ),
    Rule(
        "output-range-mismatch", "a regression output activation that cannot reach the targets",
        ("error", "warning"), "batch",
        "Regression loss on the output of a bounded activation (sigmoid/softmax (0, 1), tanh "
        "(-1, 1), ReLU [0, inf)...): fires when the targets extend beyond that range by more "
        "than range_excess of their span (error when their mean is out of reach).",
        "The loss has a floor training cannot remove; the output is pushed onto the "
        "activation's flat tail or into ReLU's dead zone and stalls.",
        ("range_excess",),
        {"loss": "loss kind", "output_op": "output activation",
         "output_range": "what it can reach", "target_min": "smallest target",
         "target_max": "largest target", "target_mean": "mean target",
         "excess_share": "share of the targets' span out of reach", **LINES},
        None, "a linear output for regression, or targets scaled into the range",
        "nn.Sequential(..., nn.Linear(h, 1), nn.Sigmoid()); MSE on prices 3190..27900",
        "nn.Sequential(..., nn.Linear(h, 1)); MSE on standardised prices",
        ("deepmufl (Ghanbari et al., ASE 2023): StackOverflow 48251943, 60801900",),
        "faults:sigmoid-regression-on-prices", "controls:regression",
    ),
    Rule(
        "labels-degenerate", "labels that carry no information in the batch",
        ("warning", "info"), "batch",
        "Every class label in a batch of at least min_label_batch is the same class (warning for "
        "K >= 3 classes, info for binary), or every regression target is equal.",
        "The model learns a constant: the loss falls without anything about the input being "
        "learned. Usually a label transform that collapsed the classes, or sorted unshuffled data.",
        ("min_label_batch",),
        {"classes_present": "distinct labels", "label": "the one label", "count": "its count",
         "n_classes": "outputs of the head", "batch_size": "B",
         "target_value": "the constant regression target", **LINES},
        None, "fix the label transform; shuffle the data",
        "y = (y / 255).long()  # every label becomes 0", "y = y.long()",
        ("DeepFD (Cao et al., ICSE 2022): StackOverflow 59325381",),
        "faults:collapsed-labels", "controls:he-mlp-20",
    ),
    Rule(
        "padding-in-loss", "padding positions counted by a sequence loss", ("warning",), "batch",
        "Token ids (B, T) with padding (attention_mask 0, or a trailing run of one pad id in "
        "rows of different lengths) whose labels are not the loss's ignore_index, when they are "
        "at least padding_share of the counted label positions. Read on the labels the model "
        "got (Hugging Face labels=) and on an external loss's targets.",
        "Pad labels are trivially predictable after the first pad: they dilute the gradient of "
        "real tokens and deflate the reported loss and perplexity.",
        ("padding_share",),
        {"padding_positions": "positions that are padding", "padding_counted": "of those, "
         "counted by the loss", "label_positions": "label positions the loss counts",
         "share": "padding_counted / label_positions", "pad_id": "the pad token id",
         "padding_from": "attention_mask or trailing run", "ignore_index": "what the loss skips",
         **LINES},
        None, "labels[attention_mask == 0] = -100 (or the collator's label padding)",
        "labels = input_ids.clone()  # pads included", "labels[attention_mask == 0] = -100",
        ("Hugging Face course, 'Causal language modeling' (DataCollatorForLanguageModeling "
         "pads labels with -100)",),
        "faults:lm-padding-counted", "controls:lm-shifted-ignore-padding",
    ),
    Rule(
        "labels-copy-inputs", "token labels equal to the input tokens", ("error",), "batch",
        "Integer labels lined up one to one with the input ids: at least copied_share of the "
        "counted positions hold the input token of the same position (unshifted causal-LM "
        "labels, an MLM scoring unmasked positions). Hugging Face models shift internally, so "
        "labels=input_ids is read after their shift.",
        "The model copies its input through the residual stream: the loss falls to 0 and "
        "nothing is learned.",
        ("copied_share", "min_label_batch"),
        {"label_positions": "label positions counted", "copied": "of those, equal to the input "
         "token", "share": "copied / label_positions", "n_classes": "vocabulary size", **LINES},
        None, "shift the labels by one (causal LM); -100 on unmasked positions (MLM)",
        "F.cross_entropy(logits.view(-1, V), ids.view(-1))",
        "F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))",
        ("Radford et al. 2019 (GPT-2: next-token prediction); Devlin et al. 2019 (BERT: loss "
         "on masked positions only)",),
        "faults:lm-unshifted-labels", "controls:lm-shifted-ignore-padding",
    ),
    Rule(
        "head-label-mismatch", "the loss raised because the head and the labels disagree",
        ("error",), "batch",
        "torch raised inside loss_fn about sizes or shapes; the measured output and target "
        "shapes name the disagreement instead of a refusal.",
        "Nothing can be trained until each prediction is paired with a target of its shape.",
        (),
        {"loss": "loss kind", "output_shape": "prediction shape", "target_shape": "target shape",
         "outputs_per_example": "head width", "targets_per_example": "target width",
         "torch_error": "what torch raised"},
        None, "a head as wide as the label format, or labels converted to it",
        "nn.Linear(h, 1) with one-hot targets of width 3 and BCELoss",
        "nn.Linear(h, 3) with nn.CrossEntropyLoss and y.argmax(1)",
        ("deepmufl (Ghanbari et al., ASE 2023): StackOverflow 70148149",),
        "faults:head-narrower-than-one-hot", "controls:multilabel", explains_loss_error=True,
    ),
    Rule(
        "loss-degenerate", "a loss that cannot teach anything", ("error",), "batch",
        "The loss is not connected to any parameter, its gradient is exactly 0 for every "
        "parameter or for the model output, or it stays bit-identical over the probe steps.",
        "The optimizer has nothing to follow: -mean(y * log(a)) with y = 0 is 0 whatever the "
        "output (story 2).",
        (),
        {"loss": "the loss value", "requires_grad": "connected to the graph",
         "final_op": "last autograd node", "output_grad_rms": "gradient at the model output",
         "params_with_grad": "parameters reached by the gradient",
         "trainable_params": "parameters that require grad",
         "probe_losses": "the loss at every probe step", "steps": "probe steps run"},
        None, "use the library loss (both terms of the cross-entropy); build it from the output tensor",
        "loss = -(y * torch.log(a)).mean() with y = 0", "nn.BCEWithLogitsLoss()(z, y)",
        (), "faults:story2-half-cross-entropy", "controls:binary-logits",
    ),
    Rule(
        "loss-maximized", "training climbs the loss instead of descending it", ("error",),
        "batch",
        "loss_fn returns exactly minus the value of the library loss it called (cross-entropy, "
        "NLL, BCE, MSE, L1, Huber: non-negative by construction), or the optimizer was built "
        "with maximize=True on such a loss (not both: two flips cancel).",
        "Gradient descent on -CE is ascent on CE: it grows without bound while the curve falls "
        "below zero and looks like progress.",
        (),
        {"loss": "the value loss_fn returned", "library_loss": "the library loss's own value",
         "kind": "which loss", "optimizer_maximize": "maximize=True on the optimizer"},
        None, "return the library loss itself; maximize=False",
        "loss = -F.cross_entropy(logits, y)", "loss = F.cross_entropy(logits, y)",
        ("TheDeepChecker (Ben Braiek & Khomh, TOSEM 2022): flipped loss sign",),
        "faults:flipped-sign-loss", "controls:log-softmax-nll",
    ),
    Rule(
        "nothing-trainable", "no parameter can change: nothing can learn", ("error",), "batch",
        "Every parameter is frozen (requires_grad=False), the optimizer holds none of the "
        "model's trainable parameters, or the model has no parameters (and the loss no graph).",
        "An optimizer step changes only the parameters it holds that require grad: the loss "
        "curve stays flat whatever the learning rate, init or loss.",
        (),
        {"parameters": "parameter tensors in the model", "trainable": "those with requires_grad",
         "in_optimizer": "trainable ones the optimizer holds (None without an optimizer)",
         "optimizer_params_not_in_model": "optimizer parameters from elsewhere",
         "frozen": "parameter tensors with requires_grad=False"},
        None, "unfreeze what should learn; build the optimizer over this model's parameters",
        "for p in model.parameters(): p.requires_grad_(False)",
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.01)",
        ("TheDeepChecker (Ben Braiek & Khomh, TOSEM 2022): parameters that never change",),
        "faults:optimizer-of-old-model", "controls:he-mlp-1",
    ),
    Rule(
        "half-precision-overflow", "float16 training that is non-finite where float32 is not",
        ("error",), "batch",
        "A float16/bfloat16 model turns NaN/Inf at initialisation or in the probe steps while "
        "a float32 copy of the same batch and steps stays finite; lr-too-high is then judged "
        "on the float32 steps.",
        "float16 holds magnitudes between about 6e-8 and 65504: squared errors, sums and exps "
        "overflow to Inf, small gradients and Adam's eps flush to 0 and m / (sqrt(v) + eps) "
        "divides by 0, at any learning rate.",
        (),
        {"dtype": "the low-precision dtype", "low_precision_params": "parameters in it",
         "loss": "first loss in it", "fp32_loss": "first loss of the float32 copy",
         "nonfinite_at_step": "probe step where it turned non-finite (None: at init)",
         "fp32_losses": "the float32 copy's losses over the same steps",
         "float16_max": "largest float16", "float16_smallest": "smallest float16 subnormal"},
        None, "train in bfloat16, or keep float32 weights with autocast + GradScaler",
        "model.half(); torch.optim.Adam(model.parameters())",
        "with torch.autocast('cuda', torch.float16): loss = ...; scaler.scale(loss).backward()",
        ("Micikevicius et al., Mixed Precision Training, ICLR 2018",),
        "faults:float16-adam", "controls:he-mlp-1",
    ),
    Rule(
        "weight-decay-on-bias", "weight decay or L2 applied to biases or normalisation parameters",
        ("info",), "batch",
        "Optimizer groups with weight_decay > 0 holding biases or norm scales/shifts; an L2 "
        "penalty inside loss_fn that reads them.",
        "Decay on offsets and norm scales adds no useful regularisation and can switch channels "
        "off; small effect (Bag of Tricks: +0.3% top-1 without it), hence info.",
        (),
        {"weight_decay": "largest decay on such parameters", "params": "their names (first 20)",
         "count": "how many", "norm_params": "how many are norm parameters",
         "penalty": "value of the penalty inside loss_fn"},
        "no-decay-groups", "a parameter group without decay for biases and norm parameters",
        "torch.optim.AdamW(model.parameters(), weight_decay=0.05)",
        "AdamW([{'params': weights, 'weight_decay': 0.05}, {'params': biases, 'weight_decay': 0}])",
        ("Goyal et al. 2017", "He et al., Bag of Tricks, CVPR 2019"),
        "faults:story3-decay-on-bias", "controls:adamw-no-decay-groups",
    ),
    Rule(
        "regularization-dominates", "the regulariser is far larger than the data loss",
        ("warning",), "batch",
        "A penalty inside loss_fn (split from the data term by what it reads) or coupled "
        "weight_decay; fires when its value or gradient norm exceeds regularization_ratio times "
        "the data term's.",
        "The step points almost along pure weight shrinkage; the data is fitted slowly or not at all.",
        ("regularization_ratio",),
        {"data_loss": "data term", "penalty": "penalty value", "data_grad_norm": "data gradient norm",
         "penalty_grad_norm": "penalty gradient norm", "value_ratio": "penalty / data",
         "grad_ratio": "gradient norm ratio", "ratio": "the larger of the two", "basis": "which",
         "weight_decay": "coupled decay", "decay_grad_norm": "|lambda w|", **LINES},
        "lower-weight-decay", "lower the coefficient (1e-5..1e-3 for an L2 sum over weights)",
        "loss = ce + 1.0 * sum(w.pow(2).sum() for w in model.parameters())",
        "loss = ce + 1e-4 * sum(w.pow(2).sum() for w in weights)",
        ("story 3 of lossdoctor's design",),
        "faults:weight-decay-50", "controls:adamw-no-decay-groups",
    ),
    Rule(
        "adam-coupled-l2", "Adam-family optimizer with coupled weight_decay", ("warning",), "batch",
        "Adam/Adamax/NAdam/RAdam (not AdamW) with weight_decay > 0 in some group.",
        "The L2 term is divided by sqrt(v): weights with large gradients are hardly decayed, so "
        "the regularisation is not the weight decay it looks like.",
        (),
        {"optimizer": "class name", "weight_decay": "largest decay", "groups_with_decay": "count"},
        "adamw", "AdamW with the same lr and weight decay",
        "torch.optim.Adam(params, weight_decay=1e-2)", "torch.optim.AdamW(params, weight_decay=1e-2)",
        ("Loshchilov & Hutter, Decoupled Weight Decay Regularization, ICLR 2019",),
        "faults:story3-adam-coupled-l2", "controls:adamw-no-decay-groups",
    ),
    Rule(
        "sum-reduction", "a sum-reduced loss: step size scales with batch size", ("warning",),
        "batch",
        "The loss's reduction is sum (a library loss with reduction='sum' not divided "
        "afterwards, or a hand-written loss whose last op is a sum) over a batch of more than "
        "one example.",
        "d(sum)/dw = B d(mean)/dw: the effective learning rate changes with the batch size.",
        (),
        {"reduction": "sum", "batch_size": "B", "loss": "the summed loss",
         "per_example_loss": "loss / B", "detected_from": "how it was recognised"},
        "mean-reduction", "mean reduction (and lr x B under SGD to keep the step)",
        "nn.CrossEntropyLoss(reduction='sum')", "nn.CrossEntropyLoss()",
        ("story 3 of lossdoctor's design",),
        "faults:story3-sum-reduction", "controls:he-mlp-20",
    ),
    Rule(
        "lr-too-high", "learning rate too high: the probe steps diverge",
        ("error", "warning", "info"), "batch",
        "A few optimizer steps on a copy, on the batch: fires when the loss rises by loss_rise - 1 "
        "of |its start| or turns non-finite (error), or one step moves the weights by more than "
        "update_ratio_high of their norm (info when the loss still falls by learning_progress: "
        "large steps that descend are not hurting). In a monitored run: the loss rose above "
        "diverge x its first value, or the update ratio of measured steps is above the line.",
        "Steps beyond 2 / (largest curvature) overshoot and the loss grows.",
        ("loss_rise", "update_ratio_high", "update_ratio_low", "loss_still", "diverge",
         "learning_progress"),
        _LR_EVIDENCE,
        "lower-lr", "scale the learning rate towards an update/weight ratio of 1e-3",
        "SGD(lr=20) on a small MLP", "SGD(lr=0.05)",
        ("Karpathy, CS231n: babysitting the learning process",
         "Ben Braiek & Khomh, TheDeepChecker, TOSEM 2022"),
        "faults:loss-not-decreasing-lr-20", "controls:he-mlp-20",
    ),
    Rule(
        "lr-too-low", "learning rate too low: steps barely move weights or loss", ("info",),
        "batch",
        "Median update ratio below update_ratio_low and a loss that moved less than loss_still "
        "over the probe steps; in a monitored run only when the loss never blew up (small steps "
        "on huge weights are not a low lr).",
        "Training needs ~1/ratio steps to change anything.",
        ("update_ratio_low", "loss_still", "update_ratio_high", "loss_rise", "diverge",
         "learning_progress"),
        _LR_EVIDENCE,
        "raise-lr", "scale the learning rate towards an update/weight ratio of 1e-3",
        "SGD(lr=1e-6)", "SGD(lr=0.05)",
        ("Karpathy, CS231n", "Ben Braiek & Khomh, TheDeepChecker, TOSEM 2022"),
        "faults:slow-convergence-lr-1e-6", "controls:he-mlp-20",
    ),
    Rule(
        "input-not-normalized", "input features far from unit scale", ("warning",), "batch",
        "rms of the float input batch outside [input_rms_low, input_rms_high], unless the first "
        "layer is a normalisation layer.",
        "Every init assumes unit-scale inputs: rms(z) = rms(x) std(w) sqrt(fan_in); raw inputs "
        "saturate or kill first-layer units.",
        ("input_rms_low", "input_rms_high"),
        {"input_rms": "rms of the batch", "input_mean": "mean", "input_std": "std",
         "feature_std_min": "smallest per-feature std", "feature_std_max": "largest", **LINES},
        "standardize-inputs", "standardise with training-set statistics",
        "raw pixels 0..255", "(x - mean) / std",
        ("LeCun et al., Efficient BackProp, 1998",),
        "faults:missing-input-normalisation", "controls:unit-interval-images",
    ),
    Rule(
        "stale-gradients", "gradients accumulate across steps: never zeroed", ("error",), "run",
        "Monitor: backward reaches a parameter whose .grad is non-zero from before the last "
        "optimizer step. Deliberate accumulation (several backwards per step) is not flagged.",
        "Each step applies the sum of all past gradients; the effective step keeps growing.",
        (),
        {"params": "first 10 stale parameters", "count": "how many", **STEP},
        None, "optimizer.zero_grad(set_to_none=True) every step",
        "loss.backward(); opt.step()  # no zero_grad", "opt.zero_grad(); loss.backward(); opt.step()",
        ("PyTorch docs: torch.optim.Optimizer.zero_grad",),
        "runs:missing-zero-grad", "runs:healthy-sgd",
    ),
    Rule(
        "loss-diverging", "the training loss climbs away from its best", ("error",), "run",
        "Monitor: moving average over `window` steps above diverge x its best, rising, and "
        "above settled x its first value.",
        "The steps are too large for the curvature the run reached.",
        ("diverge", "settled"),
        {"smoothed_loss": "moving average now", "best_smoothed_loss": "its minimum",
         "first": "first smoothed value", **STEP,
         **LINES},
        None, "lower the learning rate; clip the gradient norm",
        "SGD(lr=1.0) where 0.1 trains", "SGD(lr=0.1)", (),
        "runs:diverging", "runs:healthy-sgd",
    ),
    Rule(
        "loss-plateau", "the training loss is stuck near its start", ("warning",), "run",
        "Monitor: the moving average improved by less than `plateau` over two windows while "
        "still above half its first value; withdrawn from the report when the loss later fell "
        "below settled x its level at that step.",
        "The gradient carries no usable signal: vanishing gradients, dead units, tiny lr, a "
        "loss/target mismatch.",
        ("plateau", "settled"),
        {"smoothed_loss": "moving average now", "two_windows_ago": "two windows before",
         "first": "first smoothed value", **STEP, **LINES},
        None, "run a one-batch diagnosis of the current model",
        "a model whose loss stays at ln K for 300 steps", "a model that learns", (),
        "runs:plateau", "runs:healthy-sgd",
    ),
    Rule(
        "loss-oscillating", "the training loss bounces without descending", ("warning",), "run",
        "Monitor: over the last window the loss swings by oscillation_swing of its level, "
        "changes direction at more than oscillation_turns of the steps, is not trending down "
        "and is above settled of its first value.",
        "Steps overshoot the minimum along a steep direction and bounce between its walls.",
        ("oscillation_swing", "oscillation_turns", "settled"),
        {"swing": "peak-to-trough over the level", "turn_share": "share of direction changes",
         "level": "mean loss over the window", **STEP, **LINES},
        None, "halve the learning rate (or add momentum)",
        "SGD at the edge of stability", "SGD(lr / 2)", (),
        "runs:oscillating", "runs:healthy-sgd",
    ),
    Rule(
        "ranks-params-differ", "the ranks' copies of the model differ", ("error",), "run",
        "Monitor under torch.distributed: each replicated parameter's float64 sum and L2 norm on "
        "every rank against rank 0's, after the step; fires when one differs by more than "
        "rank_param_ulps units of its dtype's rounding (sharded FSDP parameters are skipped).",
        "DDP keeps N identical replicas by broadcasting rank 0's weights once and averaging "
        "every gradient; replicas that differ train different models, and rank 0's checkpoint "
        "is not what was trained.",
        ("rank_param_ulps",),
        {"params": "first 10 differing parameters", "count": "how many",
         "max_relative_diff": "largest relative difference", "wrapper": "ddp, fsdp or none",
         **RANKS, **STEP, **LINES},
        None, "wrap the model in DDP once, after initialising it; change weights only through "
        "the optimizer on every rank",
        "a model trained under a process group without DistributedDataParallel",
        "model = DistributedDataParallel(model)",
        ("PyTorch docs: DistributedDataParallel (broadcast at construction, gradient all-reduce)",),
        "ddp:not-wrapped", "ddp:healthy",
    ),
    Rule(
        "ranks-buffers-differ", "the ranks' running statistics differ", ("warning",), "run",
        "Monitor under torch.distributed: float64 L2 norm of every floating-point buffer "
        "(BatchNorm running statistics) as the forward of the measured step begins, after DDP's "
        "broadcast when it broadcasts; fires when one differs from rank 0's by more than "
        "rank_param_ulps units of float32 rounding of that norm.",
        "Each rank then evaluates a different model, and rank 0's checkpoint holds statistics of "
        "1/N of the data (it matters in eval mode, where they replace the batch statistics).",
        ("rank_param_ulps",),
        {"buffers": "first 10 differing buffers", "count": "how many",
         "max_relative_diff": "largest relative difference of the norm",
         "wrapper": "ddp, fsdp or none", **RANKS, **STEP, **LINES},
        None, "DDP's default broadcast_buffers=True, or SyncBatchNorm",
        "DistributedDataParallel(model, broadcast_buffers=False) with BatchNorm",
        "DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(model))",
        ("PyTorch docs: DistributedDataParallel broadcast_buffers; torch.nn.SyncBatchNorm",),
        "ddp:bn-unsynced", "ddp:bn-healthy",
    ),
    Rule(
        "ranks-same-batch", "every rank trains on the same batch", ("warning",), "run",
        "Monitor under torch.distributed: float64 sum and L2 norm of the batch each rank's "
        "forward received at the step; fires when two ranks' are identical (different examples "
        "coincide in both only by accident).",
        "The all-reduced gradient is then the one-rank gradient: N - 1 ranks compute nothing "
        "new and the effective batch is N times smaller than configured.",
        (),
        {"batch_sum": "the shared batch's sum", "batch_norm": "its norm", **RANKS, **STEP},
        None, "DistributedSampler(dataset) as the DataLoader's sampler",
        "DataLoader(dataset, shuffle=True) on every rank with the same seed",
        "DataLoader(dataset, sampler=DistributedSampler(dataset))",
        ("PyTorch docs: torch.utils.data.distributed.DistributedSampler",),
        "ddp:no-sampler", "ddp:healthy",
    ),
    Rule(
        "epochs-same-order", "every epoch repeats the first one's batch order", ("warning",), "run",
        "Monitor under torch.distributed: fingerprints of every training batch; fires when the "
        "run's first two batches come back one after the other later in the run (the epoch "
        "restarted in the same order; a run whose first two batches are equal is not judged).",
        "DistributedSampler's permutation is seeded by seed + epoch; without set_epoch every "
        "epoch is the same permutation and SGD loses the reshuffling noise.",
        (),
        {"batches_per_epoch": "batches between the repeats", **RANKS, **STEP},
        None, "sampler.set_epoch(epoch) at the start of every epoch",
        "DistributedSampler(dataset, shuffle=True) without set_epoch",
        "for epoch in range(E): sampler.set_epoch(epoch); ...",
        ("PyTorch docs: DistributedSampler.set_epoch",),
        "ddp:no-set-epoch", "ddp:healthy",
    ),
    Rule(
        "grad-world-size", "applied gradients are N or 1/N times the ranks' average",
        ("error",), "run",
        "Monitor under torch.distributed: a fixed signed projection (32 entries per parameter, "
        "the same on every rank) of each rank's own gradient in backward and of .grad at the "
        "optimizer step; the least-squares factor between the applied projection and the "
        "average of the ranks' fires within world_size_tolerance of N or 1/N, the same on every "
        "rank (not with stale gradients).",
        "DDP already averages: a manual all_reduce(SUM) on top multiplies the step by N, a "
        "second division by the world size divides it by N; either changes the learning rate "
        "whenever the number of ranks changes.",
        ("world_size_tolerance",),
        {"factor": "applied / averaged on rank 0", "factors": "the same per rank",
         "world": "number of ranks", **RANKS, **STEP, **LINES},
        None, "remove the manual all_reduce / division: DDP averages the gradients",
        "loss.backward(); for p in model.parameters(): dist.all_reduce(p.grad)",
        "loss.backward(); optimizer.step()",
        ("PyTorch docs: DistributedDataParallel (gradients are averaged across processes)",),
        "ddp:allreduce-sum", "ddp:healthy",
    ),
    Rule(
        "params-without-grad", "trainable parameters no backward reaches", ("warning",), "run",
        "Monitor under torch.distributed: trainable parameters whose .grad is None at the "
        "optimizer step on every rank, at every exchange so far (at least two).",
        "They never change; under DDP they make it fail (find_unused_parameters=False) or cost a "
        "graph traversal per step (True).",
        (),
        {"params": "first 10 such parameters", "count": "how many",
         "exchanges": "measured steps that agree", **RANKS, **STEP},
        None, "use the parameter in forward, or requires_grad_(False)",
        "a layer built in __init__ and never called in forward",
        "delete it or freeze it", ("PyTorch docs: DDP find_unused_parameters",),
        "ddp:unused-param", "ddp:healthy",
    ),
)

BY_CODE: dict[str, Rule] = {r.code: r for r in RULES}

# Findings that explain why torch itself refused to compute the loss.
EXPLAINS_LOSS_ERROR: frozenset[str] = frozenset(r.code for r in RULES if r.explains_loss_error)


def codes_for_repair(repair: str) -> frozenset[str]:
    """The codes a mechanical repair answers."""
    return frozenset(r.code for r in RULES if r.repair == repair)


def markdown_table() -> str:
    """The README's code table: code, severity, meaning, lines with their defaults, repair."""
    from lossdoctor.thresholds import describe

    lines = describe()
    rows = ["| code | severity | what it means | lines (`Thresholds` field = default) | repair |",
            "|---|---|---|---|---|"]
    for r in RULES:
        scope = " (monitor)" if r.scope == "run" else ""
        th = ", ".join(f"`{t}` = {lines[t]['default']:g}" for t in r.thresholds) or "-"
        rows.append(f"| `{r.code}` | {' / '.join(r.severities)}{scope} | {r.title} | {th} | "
                    f"{r.repair or '-'} |")
    return "\n".join(rows)
