"""The fault benchmark's catalogue: every scenario with its family and expected codes.

Families follow the published taxonomies the scenarios come from: AUTOTRAINER (ICSE'21),
DeepDiagnosis (ICSE'22), TheDeepChecker (TOSEM'22) and the three stories of lossdoctor's design.
A fault counts as detected when any of its expected codes is reported (any severity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import scenarios as s


@dataclass(frozen=True)
class Scenario:
    """One benchmark entry.

    Attributes:
        name: identifier.
        family: where the fault comes from.
        make: builds the diagnosis input.
        expected: codes that count as detecting it (empty for a healthy control).
        repairable: whether a mechanical fix exists for it.
        why_missed: for a known miss, the reason (kept in the benchmark, not dropped).
    """

    name: str
    family: str
    make: Callable[[], dict]
    expected: frozenset[str] = frozenset()
    repairable: bool = True
    why_missed: str = ""


def _f(name: str, family: str, make: Callable[[], dict], *codes: str, repairable: bool = True,
       why_missed: str = "") -> Scenario:
    return Scenario(name, family, make, frozenset(codes), repairable, why_missed)


FAULTS: tuple[Scenario, ...] = (
    # the three stories
    _f("story1-deep-relu-trunc-normal", "story 1", s.story_1, "init-loss-high", "signal-exploding"),
    _f("story2-saturated-neuron-mse", "story 2", s.story_2_quadratic, "mse-on-saturating-output",
       "saturation"),
    _f("story2-half-cross-entropy", "story 2", s.story_2_half_ce, "loss-degenerate",
       repairable=False),
    _f("story3-l2-on-biases", "story 3", s.heavy_l2_in_loss, "weight-decay-on-bias",
       repairable=False),
    _f("story3-l2-dominates", "story 3", s.heavy_l2_in_loss, "regularization-dominates",
       repairable=False),
    _f("story3-sum-reduction", "story 3", s.summed_ce, "sum-reduction"),
    _f("story3-adam-coupled-l2", "story 3", s.adam_with_l2, "adam-coupled-l2"),
    _f("story3-decay-on-bias", "story 3", s.decay_everything, "weight-decay-on-bias"),
    # AUTOTRAINER
    _f("vanishing-grad-default-init-20", "AUTOTRAINER", s.default_mlp(20), "grad-vanishing"),
    _f("vanishing-grad-deep-sigmoid", "AUTOTRAINER", s.deep_sigmoid, "grad-vanishing",
       "saturation", "signal-vanishing"),
    _f("exploding-grad-he-x4", "AUTOTRAINER", s.exploding, "grad-exploding", "signal-exploding"),
    _f("exploding-cnn-x6", "AUTOTRAINER", s.cnn_exploding, "signal-exploding", "init-loss-high",
       "grad-exploding"),
    _f("dying-relu-bias", "AUTOTRAINER", s.dead_layer, "dead-relu"),
    _f("dying-relu-after-bn", "AUTOTRAINER", s.bn_dead, "dead-relu", repairable=False),
    _f("oscillating-loss-sgd", "AUTOTRAINER", s.oscillating_sgd, "lr-too-high",
       "loss-oscillating"),
    _f("slow-convergence-lr-1e-6", "AUTOTRAINER", s.lr_too_low, "lr-too-low"),
    # DeepDiagnosis
    _f("nan-from-sqrt", "DeepDiagnosis", s.nan_sqrt, "nonfinite", repairable=False),
    _f("nan-inputs", "DeepDiagnosis", s.nan_inputs, "nonfinite", repairable=False),
    _f("log-of-relu-features", "DeepDiagnosis", s.log_features, "log-of-zero", "nonfinite",
       repairable=False),
    _f("log-of-underflowing-softmax", "DeepDiagnosis", s.log_of_underflowing_softmax,
       "log-of-zero", repairable=False),
    _f("saturated-tanh-x5", "DeepDiagnosis", s.saturated_tanh, "saturation"),
    _f("unchanged-weights-detached-loss", "DeepDiagnosis", s.detached_loss, "loss-degenerate",
       repairable=False),
    _f("loss-not-decreasing-lr-20", "DeepDiagnosis", s.lr_too_high, "lr-too-high"),
    _f("vanishing-signal-x0.2", "DeepDiagnosis", s.vanishing, "signal-vanishing",
       "grad-vanishing"),
    _f("labels-1-based", "DeepDiagnosis", s.one_based_labels, "labels-out-of-range",
       repairable=False),
    _f("binary-labels-minus-one", "DeepDiagnosis", s.negative_binary_labels,
       "labels-out-of-range", repairable=False),
    _f("bce-on-class-indices", "DeepDiagnosis", s.bce_on_class_indices, "labels-out-of-range",
       repairable=False),
    # TheDeepChecker
    _f("wrong-init-huge-head", "TheDeepChecker", s.huge_head, "init-loss-high"),
    _f("wrong-init-residual-head-x100", "TheDeepChecker", s.residual_huge_head, "init-loss-high",
       repairable=False),
    _f("wrong-init-embedding-x300", "TheDeepChecker", s.embedding_huge, "init-loss-high",
       repairable=False),
    _f("high-lr-adam-1", "TheDeepChecker", s.adam_lr_1, "lr-too-high"),
    _f("redundant-softmax-module", "TheDeepChecker", s.softmax_into_ce, "double-softmax"),
    _f("redundant-sigmoid-bce-logits", "TheDeepChecker", s.sigmoid_into_bce_logits,
       "double-softmax"),
    _f("redundant-softmax-two-heads", "TheDeepChecker", s.two_heads_softmax, "double-softmax",
       repairable=False),
    _f("missing-softmax-nll-on-logits", "TheDeepChecker", s.nll_on_logits, "loss-task-mismatch",
       repairable=False),
    _f("wrong-loss-mse-on-labels", "TheDeepChecker", s.mse_on_class_indices,
       "loss-task-mismatch", repairable=False),
    _f("wrong-loss-ce-single-logit", "TheDeepChecker", s.ce_single_logit, "loss-task-mismatch",
       repairable=False),
    _f("wrong-loss-ce-on-multilabel", "TheDeepChecker", s.multilabel_with_ce,
       "loss-task-mismatch", repairable=False),
    _f("wrong-loss-sigmoid-mse", "TheDeepChecker", s.sigmoid_mse, "mse-on-saturating-output"),
    _f("broadcast-mse-shapes", "TheDeepChecker", s.broadcast_mse, "loss-task-mismatch",
       repairable=False),
    _f("flipped-sign-loss", "TheDeepChecker", s.negated_ce, "loss-maximized", repairable=False),
    _f("sgd-maximize", "PyTorch forum", s.sgd_maximize, "loss-maximized", repairable=False),
    _f("over-scaled-outputs-offset-targets", "TheDeepChecker", s.offset_regression,
       "init-loss-high", repairable=False),
    _f("missing-input-normalisation", "TheDeepChecker", s.raw_pixels, "input-not-normalized"),
    _f("tanh-on-raw-inputs", "TheDeepChecker", s.tanh_raw_inputs, "input-not-normalized",
       "saturation"),
    _f("summed-bce-multilabel", "TheDeepChecker", s.summed_bce_multilabel, "sum-reduction"),
    _f("summed-squares-regression", "TheDeepChecker", s.summed_squares, "sum-reduction"),
    _f("weight-decay-50", "TheDeepChecker", s.huge_weight_decay, "regularization-dominates"),
    _f("optimizer-of-old-model", "TheDeepChecker", s.optimizer_of_old_model, "nothing-trainable",
       repairable=False),
    # valid PyTorch set-ups whose failure has another cause than it seems
    _f("float16-adam", "precision", s.half_precision_adam, "half-precision-overflow",
       repairable=False),
    # real-bug categories (deepmufl, DeepFD)
    _f("relu-output-into-bce", "deepmufl", s.relu_output_into_bce,
       "non-probability-into-prob-loss", repairable=False),
    _f("sigmoid-regression-on-prices", "deepmufl", s.sigmoid_regression_on_prices,
       "output-range-mismatch", repairable=False),
    _f("collapsed-labels", "DeepFD", s.collapsed_labels, "labels-degenerate", repairable=False),
    _f("head-narrower-than-one-hot", "deepmufl", s.head_narrower_than_one_hot,
       "head-label-mismatch", repairable=False),
    _f("lm-padding-counted", "gDefects4DL / HF forum", s.lm_padding_counted, "padding-in-loss",
       repairable=False),
    _f("lm-unshifted-labels", "HF forum", s.lm_unshifted, "labels-copy-inputs", repairable=False),
    # the Keras (y_true, y_pred) / PyTorch (input, target) mix-up (issue 16)
    _f("bce-arguments-swapped", "Keras/PyTorch argument order", s.bce_arguments_swapped,
       "loss-arguments-swapped", repairable=False),
)

CONTROLS: tuple[Scenario, ...] = tuple(
    Scenario(name, "healthy control", make) for name, make in sorted(s.HEALTHY.items())
)
