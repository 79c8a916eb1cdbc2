"""The causes graph: which finding explains which, and the measured condition for it.

Each :class:`Link` says that a finding with code ``cause`` explains a finding with code
``symptom`` *on this batch* only when its ``condition`` holds on the measured evidence: the codes
alone never decide. ``holds`` returns the evidence sentence that linked the two (with the
numbers), or None. The links form a DAG over codes (``tests/test_causes.py``); ``docs/causes.md``
is generated from this table (``markdown_table``).

Only findings and the trace are read: no framework import (``tests/test_layering.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lossdoctor.findings import Finding
from lossdoctor.fmt import g
from lossdoctor.trace import Trace

# optimizers whose step size does not scale with the gradient's magnitude
ADAPTIVE = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop",
            "SparseAdam", "Adafactor")


@dataclass(frozen=True)
class Context:
    """What a condition may read besides the two findings.

    Attributes:
        findings: every finding of the report.
        trace: the measured trace (None for a bare list of findings).
    """

    findings: Sequence[Finding]
    trace: Trace | None

    def has(self, *codes: str) -> bool:
        """Whether a finding with one of these codes exists."""
        return any(f.code in codes for f in self.findings)


Holds = Callable[[Finding, Finding, Context], "str | None"]


@dataclass(frozen=True)
class Link:
    """One edge of the graph.

    Attributes:
        cause: the explaining code.
        symptom: the explained code.
        mechanism: why the first produces the second, in one sentence.
        condition: the evidence that must hold on this batch, in words.
        holds: the condition as code: the linking evidence with its numbers, or None.
    """

    cause: str
    symptom: str
    mechanism: str
    condition: str
    holds: Holds


def _ev(f: Finding, key: str, default: Any = None) -> Any:
    return f.evidence.get(key, default)


def _num(f: Finding, key: str) -> float | None:
    v = f.evidence.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _signal_grows(c: Finding, s: Finding, ctx: Context) -> str | None:
    gain = _num(c, "gain_per_layer")
    if gain is None or gain <= 1:
        return None
    return f"the signal grows {g(gain)}x per layer from layer {_ev(c, 'from_layer')} to " \
           f"{_ev(c, 'to_layer')} (pre-activation rms {g(_num(c, 'rms_from'))} -> " \
           f"{g(_num(c, 'rms_to'))})"


def _signal_explodes_into_loss(c: Finding, s: Finding, ctx: Context) -> str | None:
    grows = _signal_grows(c, s, ctx)
    ratio = _num(s, "ratio_to_chance")
    if grows is None or ratio is None or ratio <= 1:
        return None
    out = _num(s, "output_rms")
    return grows + (f", so the outputs reach rms {g(out)}" if out is not None else "") + \
        f" and the first loss is {g(ratio)}x the chance level"


def _grows(f: Finding) -> bool | None:
    """Whether a signal/gradient run grows (True) or shrinks (False) across depth."""
    ratio = _num(f, "ratio") if f.code.startswith("signal") else _num(f, "ratio_inner_to_outer")
    return None if ratio is None or ratio == 1 else ratio > 1


def _same_weights(c: Finding, s: Finding, ctx: Context) -> str | None:
    if _grows(c) is None or _grows(c) != _grows(s):
        return None
    return f"the backward pass runs through the same weights: the signal changes " \
           f"{g(_num(c, 'ratio'))}x from layer {_ev(c, 'from_layer')} to {_ev(c, 'to_layer')}, " \
           f"the gradient {g(_num(s, 'ratio_inner_to_outer'))}x from layer " \
           f"{_ev(s, 'from_layer')} back to {_ev(s, 'to_layer')}"


def _lr_on_exploding_net(c: Finding, s: Finding, ctx: Context) -> str | None:
    grows = _signal_grows(c, s, ctx)
    if grows is None:
        return None
    return f"the learning rate was measured on this net: {grows}; its steps went " \
           f"{g(_num(s, 'loss_first'))} -> {g(_num(s, 'loss_last'))}"


def _steps_from_huge_loss(c: Finding, s: Finding, ctx: Context) -> str | None:
    error_loss, first = _num(c, "error_loss"), _num(s, "loss_first")
    if c.severity != "error" or error_loss is None or first is None or not first >= error_loss:
        return None
    return f"the steps started from loss {g(first)}, above the init error line " \
           f"{g(error_loss)}: the step is judged on a broken initialisation"


def _vanishing_explains(c: Finding, s: Finding, ctx: Context) -> str | None:
    if _grows(c) is not False:
        return None
    ratio = _num(c, "ratio") if c.code.startswith("signal") else _num(c, "ratio_inner_to_outer")
    return f"the {'signal' if c.code.startswith('signal') else 'gradient'} shrinks {g(ratio)}x " \
           f"from layer {_ev(c, 'from_layer')} to {_ev(c, 'to_layer')}: the updates are small " \
           f"because the gradients are (loss {g(_num(s, 'loss_first'))} -> " \
           f"{g(_num(s, 'loss_last'))} over the steps)"


def _signal_to_grad_vanishing(c: Finding, s: Finding, ctx: Context) -> str | None:
    return _same_weights(c, s, ctx)


def _dead_units(c: Finding, s: Finding, ctx: Context) -> str | None:
    dead = _num(c, "dead_fraction")
    if dead is None or dead <= 0:
        return None
    return f"{g(100 * dead)}% of the units of {c.where} output exactly 0 on the batch: no signal " \
           "passes them forward and no gradient backward"


def _saturated_slope(c: Finding, s: Finding, ctx: Context) -> str | None:
    frac, slope = _num(c, "saturated_fraction"), _num(c, "slope_ratio_at_rms")
    if frac is None:
        return None
    return f"{g(100 * frac)}% of the pre-activations of {c.where} sit on the flat part of the " \
           f"curve" + (f" (slope {g(slope)} of the slope at 0)" if slope is not None else "") + \
           ": the gradient through them is multiplied by that slope"


def _big_inputs(c: Finding) -> float | None:
    rms = _num(c, "input_rms")
    high = (_ev(c, "lines") or {}).get("input_rms_high")
    if rms is None or high is None or not rms > float(high):
        return None
    return rms


def _first_nonlinearity(layer: str, trace: Trace | None) -> bool:
    if trace is None:
        return True
    first = next((x.name for x in trace.layers if x.saturated is not None), None)
    return first is None or first == layer


def _inputs_saturate(c: Finding, s: Finding, ctx: Context) -> str | None:
    rms = _big_inputs(c)
    if rms is None or not _first_nonlinearity(s.where, ctx.trace):
        return None
    return f"inputs of rms {g(rms)} reach the first nonlinearity ({s.where}) unscaled: its " \
           f"pre-activations have rms {g(_num(s, 'pre_activation_rms') or 0.0)}" \
        if _num(s, "pre_activation_rms") is not None else \
        f"inputs of rms {g(rms)} reach the first nonlinearity ({s.where}) unscaled"


def _inputs_inflate_loss(c: Finding, s: Finding, ctx: Context) -> str | None:
    rms = _big_inputs(c)
    if rms is None or ctx.has("signal-exploding", "signal-vanishing"):
        return None
    return f"the layers keep their scale (no signal-exploding/vanishing) but the inputs have rms " \
           f"{g(rms)}: the outputs are that much too large and the first loss is " \
           f"{g(_num(s, 'ratio_to_chance'))}x the chance level"


def _inputs_inflate_steps(c: Finding, s: Finding, ctx: Context) -> str | None:
    rms = _big_inputs(c)
    if rms is None:
        return None
    return f"a weight step moves the first layer's output in proportion to the inputs' rms " \
           f"{g(rms)}: the same lr is {g(rms)}x too large for them"


def _inputs_zero_gradient(c: Finding, s: Finding, ctx: Context) -> str | None:
    rms, grad, loss = _big_inputs(c), _num(s, "output_grad_rms"), _num(s, "loss")
    if rms is None or grad != 0 or not loss:
        return None
    return f"the loss is {g(loss)} yet the gradient at the output is exactly 0: inputs of rms " \
           f"{g(rms)} push the head so far into saturation that its gradient underflows"


def _vanishing_at_head(c: Finding, s: Finding, ctx: Context) -> str | None:
    if ctx.trace is None:
        return None
    measured = [x.name for x in ctx.trace.layers if x.grad_rms is not None]
    head = measured[-2:] if len(measured) >= 2 else measured
    if str(_ev(s, "from_layer")) not in head:
        return None
    return f"the gradient starts shrinking at the head (layer {_ev(s, 'from_layer')}): " \
           f"{c.summary.rstrip('.')}"


def _present(text: str) -> Holds:
    def holds(c: Finding, s: Finding, ctx: Context) -> str | None:
        return text.format(c=c, s=s, cw=c.where, sw=s.where)
    return holds


def _squashed_gradient(c: Finding, s: Finding, ctx: Context) -> str | None:
    return f"{c.summary.rstrip('.')}: the softmax Jacobian is applied twice and every gradient " \
           f"is damped (loss {g(_num(s, 'loss_first'))} -> {g(_num(s, 'loss_last'))})"


def _single_column(c: Finding, s: Finding, ctx: Context) -> str | None:
    k = _num(s, "n_classes")
    if k != 1:
        return None
    return f"the model has one output column, so cross-entropy sees a single class (index 0) " \
           f"while the labels reach {g(_num(s, 'target_max'))}"


def _softmax_regression(c: Finding, s: Finding, ctx: Context) -> str | None:
    share, loss = _num(c, "excess_share"), _num(s, "loss")
    if _ev(c, "output_op") != "softmax" or share is None or share < 0.5 or not loss:
        return None
    return f"softmax rows sum to 1, and with {g(100 * share)}% of the targets out of its reach " \
           f"the loss pushes every output the same way: that direction has no gradient " \
           f"through the softmax, so the loss stays at {g(loss)}"


def _sum_scales_step(c: Finding, s: Finding, ctx: Context) -> str | None:
    opt = str(_ev(s, "optimizer") or "")
    if not opt or opt in ADAPTIVE:
        return None
    return f"with {opt} a summed loss multiplies every step by the batch size " \
           f"{_ev(c, 'batch_size')}: lr {g(_num(s, 'lr'))} acts like " \
           f"{g((_num(s, 'lr') or 0) * float(_ev(c, 'batch_size') or 1))} on the mean loss"


def _sum_inflates_loss(c: Finding, s: Finding, ctx: Context) -> str | None:
    per, warn = _num(c, "per_example_loss"), _num(s, "warning_loss")
    if per is None or warn is None or per > warn:
        return None
    return f"the loss is summed over {_ev(c, 'batch_size')} examples: per example it is " \
           f"{g(per)}, inside the init line {g(warn)}"


def _log_origin(c: Finding, s: Finding, ctx: Context) -> str | None:
    op = str(_ev(s, "first_op") or "")
    if "log" not in op.lower() or _ev(s, "input_nonfinite"):
        return None
    return f"the first non-finite value appears at {op} ({_ev(s, 'first_where')}), which " \
           f"receives zeros (min {g(_num(c, 'input_min'))})"


def _infinite_loss(c: Finding, s: Finding, ctx: Context) -> str | None:
    loss = _num(s, "loss")
    if loss is None or math.isfinite(loss):
        return None
    return f"the loss is {loss}, and an infinite loss equals minus itself: the sign comparison " \
           f"reads the non-finite value, not a flipped sign"


def _nonprob_log(c: Finding, s: Finding, ctx: Context) -> str | None:
    low = _num(c, "output_min")
    if low is None or low > 0:
        return None
    return f"{_ev(c, 'output_op')} outputs reach {g(low)} and the likelihood takes their log"


def _nonprob_nonfinite(c: Finding, s: Finding, ctx: Context) -> str | None:
    low = _num(c, "output_min")
    op = str(_ev(s, "first_op") or "")
    if low is None or low > 0 or _ev(s, "input_nonfinite") or not (
            "log" in op.lower() or _ev(s, "first_phase") == "loss"):
        return None
    return f"{_ev(c, 'output_op')} outputs reach {g(low)}: the log-likelihood of a value <= 0 " \
           f"is not finite (first at {op or 'the loss'})"


def _nonprob_loss(c: Finding, s: Finding, ctx: Context) -> str | None:
    ratio = _num(s, "ratio_to_chance")
    if ratio is None or ratio <= 1:
        return None
    return f"{_ev(c, 'output_op')} outputs in [{g(_num(c, 'output_min'))}, " \
           f"{g(_num(c, 'output_max'))}] are read as probabilities: the first loss is " \
           f"{g(ratio)}x the chance level"


GRAPH: tuple[Link, ...] = (
    # a loss head that does not match its outputs
    Link("output-range-mismatch", "loss-degenerate",
         "softmax outputs sum to one: a loss that pushes them all the same way has no gradient",
         "output op is softmax, >= 50% of the targets' span is out of reach, the loss is not 0",
         _softmax_regression),
    Link("loss-task-mismatch", "labels-out-of-range",
         "cross-entropy over one output column knows only class 0",
         "labels-out-of-range measured n_classes == 1", _single_column),
    Link("non-probability-into-prob-loss", "init-loss-high",
         "a likelihood of values that are not probabilities is far from its chance level",
         "the first loss is above the chance level", _nonprob_loss),
    Link("non-probability-into-prob-loss", "log-of-zero",
         "the likelihood takes the log of outputs that reach 0",
         "the output's minimum is <= 0", _nonprob_log),
    Link("non-probability-into-prob-loss", "nonfinite",
         "the log-likelihood of an output <= 0 is -inf",
         "output minimum <= 0, the first non-finite op is a log or in the loss, inputs finite",
         _nonprob_nonfinite),
    Link("nonfinite", "loss-maximized",
         "an infinite loss compares equal to minus the library loss",
         "the loss value is not finite", _infinite_loss),
    Link("log-of-zero", "nonfinite", "log(0) = -inf, and inf - inf or 0 * inf give NaN",
         "the first non-finite op is a log, the inputs are finite", _log_origin),
    Link("double-softmax", "grad-vanishing",
         "a second softmax multiplies the gradient by its Jacobian (entries <= 1/4)",
         "the vanishing run starts at one of the last two layers with a gradient (the head)",
         _vanishing_at_head),
    Link("double-softmax", "lr-too-low",
         "the doubled softmax damps every gradient, so the steps look too small",
         "both found", _squashed_gradient),
    Link("mse-on-saturating-output", "saturation",
         "MSE through a sigmoid/tanh output multiplies the gradient by the output's slope",
         "both found", _present("the saturated output feeds MSE ({cw})")),
    Link("mse-on-saturating-output", "grad-vanishing",
         "the output's slope damps the gradient at the head",
         "the vanishing run starts at the head", _vanishing_at_head),
    Link("mse-on-saturating-output", "loss-plateau",
         "a saturated output under MSE learns slowly", "both found",
         _present("MSE through a saturating output ({cw}) has a vanishing gradient")),
    Link("nothing-trainable", "loss-degenerate", "no parameter is stepped, so nothing learns",
         "both found", _present("no trainable parameter reaches the optimizer")),
    Link("nothing-trainable", "loss-plateau", "no parameter is stepped, so the loss is flat",
         "both found", _present("no trainable parameter reaches the optimizer")),
    Link("half-precision-overflow", "nonfinite",
         "float16 overflows above 65504 where float32 stays finite",
         "both found", _present("float16 overflows where the float32 replay stays finite")),
    Link("half-precision-overflow", "lr-too-high",
         "steps that overflow in float16 look like a learning rate that is too high",
         "both found", _present("the steps overflowed in float16, not because of the lr")),
    Link("half-precision-overflow", "loss-diverging", "float16 overflow ends the run as NaN",
         "both found", _present("float16 overflow")),
    # the loss's reduction
    Link("sum-reduction", "lr-too-high",
         "a summed loss multiplies the gradient by the batch size; SGD-like steps follow it",
         "the optimizer is not adaptive (not Adam/RMSprop/Adagrad...)", _sum_scales_step),
    Link("sum-reduction", "init-loss-high",
         "a summed loss is the batch size times the mean loss",
         "the per-example loss is inside the init warning line", _sum_inflates_loss),
    # unscaled inputs
    Link("input-not-normalized", "saturation",
         "large inputs push the first nonlinearity onto its flat part",
         "input rms above its line and the saturated layer is the first nonlinearity",
         _inputs_saturate),
    Link("input-not-normalized", "loss-degenerate",
         "large inputs saturate the head until its gradient underflows to 0",
         "input rms above its line, output gradient exactly 0 while the loss is not 0",
         _inputs_zero_gradient),
    Link("input-not-normalized", "init-loss-high",
         "the output scales with the input scale in a net that keeps its scale",
         "input rms above its line and no signal-exploding/-vanishing finding",
         _inputs_inflate_loss),
    Link("input-not-normalized", "lr-too-high",
         "the first layer's change per step scales with the inputs", "input rms above its line",
         _inputs_inflate_steps),
    # the initialisation's scale
    Link("dead-relu", "signal-vanishing", "dead units pass no signal forward",
         "dead fraction > 0", _dead_units),
    Link("dead-relu", "grad-vanishing", "dead units pass no gradient backward",
         "dead fraction > 0", _dead_units),
    Link("saturation", "grad-vanishing",
         "saturated units multiply the gradient by a slope near 0", "both found", _saturated_slope),
    Link("signal-exploding", "init-loss-high",
         "a per-layer gain g > 1 gives outputs g^depth too large and a saturated softmax",
         "signal gain per layer > 1 and the first loss above chance", _signal_explodes_into_loss),
    Link("signal-exploding", "grad-exploding",
         "the backward pass multiplies by the same weights",
         "signal and gradient both grow (or both shrink) across depth",
         _same_weights),
    Link("signal-exploding", "lr-too-high",
         "steps on an exploding net diverge at any sensible lr", "signal gain per layer > 1",
         _lr_on_exploding_net),
    Link("signal-vanishing", "grad-vanishing",
         "the backward pass multiplies by the same weights",
         "signal and gradient both grow (or both shrink) across depth",
         _signal_to_grad_vanishing),
    Link("signal-vanishing", "lr-too-low", "tiny activations give tiny weight gradients",
         "the signal shrinks across depth", _vanishing_explains),
    Link("grad-vanishing", "lr-too-low", "vanishing gradients make every step small",
         "the gradient shrinks towards the input", _vanishing_explains),
    Link("init-loss-high", "lr-too-high",
         "from a loss far above chance the first steps undo the init and overshoot",
         "init-loss-high is an error and the probe steps started above its error line",
         _steps_from_huge_loss),
    # the learning rate
    Link("lr-too-high", "loss-oscillating", "steps beyond 2/curvature overshoot back and forth",
         "both found", _present("the learning rate is too high ({cw})")),
    Link("lr-too-high", "loss-diverging", "steps beyond 2/curvature make the loss grow",
         "both found", _present("the learning rate is too high ({cw})")),
    Link("lr-too-low", "loss-plateau", "tiny steps look like a plateau", "both found",
         _present("the learning rate is too low ({cw})")),
)


def links_to(symptom: str) -> list[Link]:
    """The links that may explain a code, in the graph's priority order."""
    return [link for link in GRAPH if link.symptom == symptom]


def markdown_table() -> str:
    """The graph as a Markdown table (``docs/causes.md``)."""
    rows = ["| cause | explains | mechanism | only when (measured) |", "|---|---|---|---|"]
    rows += [f"| `{x.cause}` | `{x.symptom}` | {x.mechanism} | {x.condition} |" for x in GRAPH]
    return "\n".join(rows)
