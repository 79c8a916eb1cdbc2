"""Story 1 in plain TensorFlow, written with the story's own ops.

``tf.random.truncated_normal(stddev=0.5)`` weights and biases, ``tf.nn.dropout(rate=0.5)`` after
every hidden ReLU, ``tf.nn.softmax_cross_entropy_with_logits`` reduced by ``tf.reduce_mean``
(or ``tf.reduce_sum``), plus ``beta * tf.nn.l2_loss`` over every trainable variable (story 3's
"L2 on all variables") when ``beta > 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from lossdoctor.examples import digits


class MLP(tf.Module):  # type: ignore[misc]
    """``sizes[0] -> ... -> sizes[-1]``, ReLU and dropout between the layers."""

    def __init__(self, sizes: list[int], stddev: float = 0.5, dropout: float = 0.5,
                 seed: int = 0) -> None:
        super().__init__(name="story1")
        g = tf.random.Generator.from_seed(seed)
        self.dropout = dropout
        self.seed = seed
        self.weights = [tf.Variable(g.truncated_normal([a, b], stddev=stddev), name=f"weights_{i}")
                        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))]
        self.biases = [tf.Variable(g.truncated_normal([b], stddev=stddev), name=f"biases_{i}")
                       for i, b in enumerate(sizes[1:])]

    def __call__(self, x: Any) -> Any:
        for i, (w, b) in enumerate(zip(self.weights[:-1], self.biases[:-1], strict=True)):
            x = tf.nn.relu(tf.matmul(x, w) + b)
            if self.dropout:
                x = tf.nn.dropout(x, rate=self.dropout, seed=self.seed * 100 + i)
        return tf.matmul(x, self.weights[-1]) + self.biases[-1]


def story1_loss(model: MLP, beta: float = 0.0, reduce: str = "mean",
                k: int = 10) -> Callable[[Any, Any], Any]:
    """The story's loss: softmax cross-entropy of the logits (+ beta * l2 over all variables)."""
    def loss(logits: Any, y: Any) -> Any:
        ce = tf.nn.softmax_cross_entropy_with_logits(labels=tf.one_hot(y, k), logits=logits)
        data = tf.reduce_mean(ce) if reduce == "mean" else tf.reduce_sum(ce)
        if not beta:
            return data
        return data + beta * tf.add_n([tf.nn.l2_loss(v) for v in model.trainable_variables])
    return loss


def story1(seed: int = 0, beta: float = 0.0, reduce: str = "mean") -> dict[str, Any]:
    """Story 1 as diagnosis inputs for a ``tf.Module``."""
    x, y = digits(seed=seed)
    model = MLP([64] + [750] * 6 + [10], seed=seed)
    return {"model": model, "inputs": x.numpy(), "targets": y.numpy(),
            "loss_fn": story1_loss(model, beta, reduce)}
