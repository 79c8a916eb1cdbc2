"""Every line a check draws, in one frozen record that callers can change.

Each field carries, in its metadata, what it means and where the number comes from; the rule
catalogue and ``lossdoctor rules`` print them from here. A finding reports the lines it was
judged against under ``evidence["lines"]``, keyed by these field names, so the number that was
crossed can always be traced to the setting that moves it::

    ld.diagnose(model, x, y, loss_fn, opt, thresholds=ld.Thresholds(dead_fraction=0.9))
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _line(default: float, doc: str, source: str) -> Any:
    return field(default=default, metadata={"doc": doc, "source": source})


@dataclass(frozen=True)
class Thresholds:
    """The lines the checks draw (defaults are the published or derived values)."""

    signal_ratio: float = _line(
        100.0, "pre-activation rms changing this many times along depth (warning)",
        "two orders of magnitude away from the scale the init assumed; healthy inits (He, "
        "Xavier, PyTorch default) change it by a factor 0.4-1 per layer")
    signal_error_ratio: float = _line(
        1e4, "the same change that makes signal-exploding/-vanishing an error",
        "four orders of magnitude: softmax saturated / signal below float32 resolution of the "
        "biases")
    grad_ratio: float = _line(
        1e3, "per-example gradient norm changing this many times from output to input layer",
        "AUTOTRAINER (Zhang et al., ICSE'21): vanishing when |g_first| / |g_last| < 1e-3")
    saturated_fraction: float = _line(
        0.5, "share of a sigmoid/tanh layer's pre-activations on the flat tails",
        "DeepDiagnosis (Wardat et al., ICSE'22): > 50% with |z| >= 5 for the sigmoid")
    dead_fraction: float = _line(
        0.7, "share of a ReLU layer's units that are 0 for the whole batch",
        "AUTOTRAINER and DeepDiagnosis: 70% of a layer dead")
    dead_min_batch: int = _line(
        8, "smallest batch on which dead units are judged",
        "a live unit firing with p = 1/2 looks dead on B examples with probability 2^-B "
        "(0.4% at B = 8)")
    dead_growth: float = _line(
        0.3, "rise of a layer's dead share during a monitored run (with dead_fraction reached)",
        "a third of the layer dying while training is a trend, not batch noise")
    init_loss_scale: float = _line(
        3.0, "first loss above what logits of this std (or outputs this many spreads off) give",
        "Karpathy's recipe ('verify loss @ init': ln K); at logit std 3 the softmax is already "
        "confident (top p > 0.9)")
    init_loss_error_scale: float = _line(
        30.0, "the same construction for the error line",
        "logit std 30: float32 softmax of a wrong class underflows")
    input_rms_low: float = _line(
        0.1, "smallest input rms that counts as normalised",
        "one order of magnitude below the unit second moment every init assumes")
    input_rms_high: float = _line(
        10.0, "largest input rms that counts as normalised",
        "one order of magnitude above the unit second moment every init assumes")
    regularization_ratio: float = _line(
        10.0, "penalty (value or gradient) over the data term",
        "at 10x the step is within 6 degrees of pure weight shrinkage (cos = 1/sqrt(101))")
    update_ratio_high: float = _line(
        1e-1, "update/weight ratio of one optimizer step above which the lr is too high",
        "TheDeepChecker (Ben Braiek & Khomh, TOSEM'22): log10 ratio outside [-4, -1]; "
        "Karpathy (CS231n): healthy ~1e-3")
    update_ratio_low: float = _line(
        1e-4, "update/weight ratio below which the lr is too low (with a still loss)",
        "TheDeepChecker: log10 ratio outside [-4, -1]")
    loss_rise: float = _line(
        1.5, "loss after the probe steps over the loss before them that means the steps diverge",
        "a 50% rise over a few steps on one batch is not noise: SGD on one batch descends")
    loss_still: float = _line(
        0.01, "relative loss change over the probe steps below which the loss did not move",
        "1% over the probe steps: a learning model moves more on the batch it trains on")
    range_excess: float = _line(
        0.1, "share of the targets' span beyond the reach of the output activation",
        "a tenth of the span unreachable puts a floor under the loss that training cannot remove")
    min_label_batch: int = _line(
        16, "smallest batch on which a single label class is judged degenerate",
        "a balanced K >= 3-class dataset gives one class in B = 16 draws with p < 1e-7")
    learning_progress: float = _line(
        0.05, "relative loss decrease over the probe steps that shows the set-up learns",
        "the faults that stall (vanishing signal, default-init depth 20) move < 1% in 20 steps on "
        "their own batch; set-ups that train drop far more than 5% there")
    padding_share: float = _line(
        0.05, "share of the label positions a loss counts that are padding",
        "the same 5% as learning_progress: a constant, trivially predicted pad label on that "
        "share of positions moves the mean loss and its gradient by about as much")
    copied_share: float = _line(
        0.5, "share of the counted token labels equal to the input token at the same position",
        "correctly shifted text repeats its previous token far below 5% of the time, and BERT's "
        "masking leaves 10% of masked positions unchanged: 0.5 is out of reach of both")
    diverge: float = _line(
        2.0, "smoothed loss over its best so far (and rising) that means the run diverges",
        "twice the best smoothed value is beyond mini-batch noise of a moving average")
    plateau: float = _line(
        0.01, "relative improvement of the smoothed loss over two windows below which it is stuck",
        "1% over two windows while still above half the first loss")
    oscillation_swing: float = _line(
        0.5, "peak-to-trough of the loss over a window, relative to its level",
        "a swing of half the level is beyond the noise of a descending run")
    oscillation_turns: float = _line(
        0.6, "share of steps where the loss changes direction",
        "random noise turns 67% of the time, a steady descent far less")
    settled: float = _line(
        0.25, "loss level (over the first) below which rises and swings count as convergence noise",
        "near convergence mini-batch noise alone swings by more than half of a small loss")
    rank_param_ulps: float = _line(
        8.0, "difference of a parameter's float64 sum or norm between ranks, in units of its "
        "dtype's rounding (eps x norm; eps x norm x sqrt(numel) for the sum)",
        "DDP replicas get the same averaged gradient and the same optimizer step, so they are "
        "bit-identical (difference 0); 8 ulps of every element still allows a replica that "
        "differs only by last-bit rounding, while a re-initialised or edited parameter differs by "
        "orders of magnitude more")
    world_size_tolerance: float = _line(
        0.01, "relative distance of the applied-over-averaged gradient factor to N or 1/N",
        "the factor is a linear identity measured on float32 gradients (rounding ~1e-7): 1% is "
        "five orders of margin, and a gradient clip lands within 1% of exactly 1/N only by "
        "coincidence")


def describe() -> dict[str, dict[str, Any]]:
    """``{field: {default, doc, source}}`` for every threshold."""
    return {f.name: {"default": f.default, "doc": f.metadata["doc"], "source": f.metadata["source"]}
            for f in fields(Thresholds)}


DEFAULT = Thresholds()
