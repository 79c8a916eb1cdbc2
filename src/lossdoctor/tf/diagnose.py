"""``diagnose`` for a plain TensorFlow ``tf.Module``: the op probe, then the same checks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from lossdoctor.checks import run_checks
from lossdoctor.checks.depth import activation_family
from lossdoctor.errors import LossDoctorError
from lossdoctor.findings import Finding, Fix
from lossdoctor.report import Report
from lossdoctor.tf.probe import probe_tf
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Task, Trace

_INIT = {"relu": ("tf.sqrt(2.0 / fan_in)", "He"), "tanh": ("tf.sqrt(1.0 / fan_in)", "LeCun"),
         "sigmoid": ("tf.sqrt(2.0 / (fan_in + fan_out))", "Glorot"),
         "linear": ("tf.sqrt(1.0 / fan_in)", "LeCun")}
REINIT = frozenset({"init-loss-high", "signal-exploding", "signal-vanishing", "grad-exploding",
                    "grad-vanishing"})


def reinit_fix(family: str) -> Fix:
    """The story's own ops with a scale that keeps each layer's variance."""
    std, name = _INIT[family]
    return Fix(f"{name} init for every weight matrix, zero biases",
               "def weight(fan_in, fan_out):\n"
               f"    std = {std}\n"
               "    return tf.Variable(tf.random.truncated_normal([fan_in, fan_out]) * std / 0.88)"
               "  # truncation keeps std 0.88\n\n"
               "def bias(n):\n"
               "    return tf.Variable(tf.zeros([n]))")


def _tf_fixes(f: Finding, trace: Trace) -> tuple[Fix, ...]:
    if f.code in REINIT:
        return (reinit_fix(activation_family(trace)),)
    if f.code == "sum-reduction":
        return (Fix("average over the batch",
                    "loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits("
                    "labels=y, logits=logits))"),)
    if f.code == "weight-decay-on-bias":
        return (Fix("penalise weight matrices only",
                    "l2 = tf.add_n([tf.nn.l2_loss(v) for v in model.trainable_variables "
                    "if len(v.shape) >= 2])\nloss = data_loss + beta * l2"),)
    if f.code == "double-softmax":
        return (Fix("feed the logits, not tf.nn.softmax(logits)",
                    "loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits("
                    "labels=y, logits=logits))"),)
    return tuple(Fix(fx.title, "# in TensorFlow terms:\n# " + fx.title) for fx in f.fixes)


def diagnose_tf(model: Any, inputs: Any, targets: Any, loss_fn: Any, *,
                task: Task | None = None, thresholds: Thresholds | None = None) -> Report:
    """Diagnose one batch of a ``tf.Module`` with a hand-written ``loss_fn(output, targets)``.

    Every variable of the module is restored afterwards. TensorFlow's stateful random ops
    (``tf.nn.dropout`` without a seed) draw from an internal generator that cannot be rewound:
    the note says so. Fixes are not verified here (no optimizer steps).
    """
    if not callable(loss_fn):
        raise LossDoctorError("loss_fn(output, targets) -> scalar is needed for a tf.Module")
    variables = list(model.variables)
    saved = [np.array(v.numpy()) for v in variables]
    try:
        trace = probe_tf(model, inputs, targets, loss_fn, task)
    finally:
        for v, value in zip(variables, saved, strict=True):
            if not np.array_equal(v.numpy(), value):
                v.assign(value)
    import tensorflow as tf

    trace = replace(trace, notes=(f"TensorFlow {tf.__version__}, tf.Module probed op by op; "
                                  "TensorFlow's stateful dropout RNG advanced by one forward",
                                  *trace.notes))
    findings = [replace(f, fixes=_tf_fixes(f, trace)) for f in run_checks(trace, thresholds)]
    return Report(trace=trace, findings=findings)
