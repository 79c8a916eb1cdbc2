"""``lossdoctor lab mlp --framework tf``: story 1 built and trained with the story's own ops.

``tf.random.truncated_normal`` weights and biases (or He/LeCun/Xavier normal, zero biases),
``tf.nn.relu``/``tanh``/``sigmoid``, ``tf.nn.dropout``, ``tf.nn.softmax_cross_entropy_with_logits``
with ``tf.reduce_mean``, ``beta * tf.nn.l2_loss`` over every variable or the weights only, and
plain gradient descent (``w.assign_sub(lr * grad)`` from a ``tf.GradientTape``). The same
:class:`~lossdoctor.lab.mlp.Config`, data and batch sampler as the PyTorch lab.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from lossdoctor.errors import LossDoctorError
from lossdoctor.lab.datasets import Split
from lossdoctor.lab.mlp import Config, Result, batches

_ACTS = ("relu", "tanh", "sigmoid")  # looked up in tf.nn at call time, as the probe wraps them


def _draw(spec: str, shape: list[int], fan_in: int, g: Any) -> Any:
    kind, _, arg = spec.partition(":")
    if kind == "trunc-normal":
        return g.truncated_normal(shape, stddev=float(arg))
    if kind == "normal":
        return g.normal(shape, stddev=float(arg))
    if kind == "he":
        return g.normal(shape, stddev=math.sqrt(2 / fan_in))
    if kind == "lecun":
        return g.normal(shape, stddev=math.sqrt(1 / fan_in))
    if kind == "xavier":
        return g.normal(shape, stddev=math.sqrt(2 / (fan_in + shape[-1])))
    if kind == "zeros":
        return tf.zeros(shape)
    raise LossDoctorError(f"--framework tf: init {spec!r} is not available (trunc-normal:STD, "
                          "normal:STD, he, lecun, xavier, zeros)")


class LabMLP(tf.Module):  # type: ignore[misc]
    """The lab's MLP in TensorFlow ops."""

    def __init__(self, cfg: Config, n_in: int, n_out: int) -> None:
        super().__init__(name="lab_mlp")
        if cfg.act not in _ACTS:
            raise LossDoctorError(f"--framework tf: activation {cfg.act!r} is not available "
                                  f"({', '.join(_ACTS)})")
        g = tf.random.Generator.from_seed(cfg.seed)
        widths = [n_in, *cfg.layers, n_out]
        self.cfg = cfg
        self.training = True
        self.weights = [tf.Variable(_draw(cfg.init, [a, b], a, g), name=f"weights_{i}")
                        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True))]
        self.biases = [tf.Variable(_draw(cfg.bias_init, [b], a, g), name=f"biases_{i}")
                       for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True))]

    def __call__(self, x: Any) -> Any:
        act = getattr(tf.nn, self.cfg.act)
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            x = act(tf.matmul(x, w) + b)
            if self.cfg.dropout and self.training:
                x = tf.nn.dropout(x, rate=self.cfg.dropout)
        return tf.matmul(x, self.weights[-1]) + self.biases[-1]


def loss_fn(cfg: Config, model: LabMLP, k: int) -> Callable[[Any, Any], Any]:
    """Softmax cross-entropy from logits, reduce_mean, plus beta * l2_loss as configured."""
    def loss(logits: Any, y: Any) -> Any:
        ce = tf.nn.softmax_cross_entropy_with_logits(labels=tf.one_hot(y, k), logits=logits)
        data = tf.reduce_mean(ce)
        if not cfg.l2:
            return data
        variables = [v for v in model.trainable_variables
                     if cfg.l2_on == "all" or len(v.shape) >= 2]
        return data + cfg.l2 * tf.add_n([tf.nn.l2_loss(v) for v in variables])
    return loss


def check(cfg: Config) -> None:
    """What the TensorFlow lab supports.

    Raises:
        LossDoctorError: another loss or optimizer.
    """
    if cfg.loss != "softmax-ce" or cfg.optimizer != "sgd":
        raise LossDoctorError("--framework tf runs the story's pipeline: --loss softmax-ce and "
                              "--optimizer sgd (gradient descent)")
    if cfg.lr <= 0:
        raise LossDoctorError(f"the learning rate must be positive, got {cfg.lr}")


def _accuracy(model: LabMLP, x: Any, y: Any) -> float:
    model.training = False
    try:
        return float(tf.reduce_mean(tf.cast(tf.argmax(model(x), 1) == y, tf.float32)))
    finally:
        model.training = True


def train(cfg: Config, split: Split, model: LabMLP, first: tuple[Any, Any],
          on_step: Callable[[int, float], None] | None = None) -> Result:
    """Measure the first batch, then ``cfg.steps`` steps of gradient descent."""
    tf.random.set_seed(cfg.seed)  # dropout masks
    loss = loss_fn(cfg, model, split.classes)
    x, y = first[0].numpy(), first[1].numpy()
    logits = model(x)  # one forward (one dropout draw) for both terms
    data = float(tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.one_hot(y, split.classes), logits=logits)))
    result = Result(data, float(loss(logits, y)) - data, chance=math.log(split.classes))
    next_batch = batches(split, cfg)
    for step in range(cfg.steps):
        with tf.GradientTape() as tape:
            value = loss(model(x), y)
        grads = tape.gradient(value, model.trainable_variables)
        for v, grad in zip(model.trainable_variables, grads, strict=True):
            v.assign_sub(cfg.lr * grad)
        result.losses.append(float(value))
        if on_step is not None:
            on_step(step, result.losses[-1])
        bx, by = next_batch()
        x, y = bx.numpy(), by.numpy()
    result.train_accuracy = _accuracy(model, split.x_train.numpy(), split.y_train.numpy())
    result.test_accuracy = _accuracy(model, split.x_test.numpy(), split.y_test.numpy())
    return result
