"""Story 3 computed with TensorFlow itself: each row of :mod:`lossdoctor.lab.losses` as the
TensorFlow expression the stories use, evaluated by TensorFlow, next to the PyTorch line."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from lossdoctor.lab.losses import ROWS, Row

SETUP = """\
logits = tf.constant([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
labels = tf.constant([0, 1])
onehot = tf.one_hot(labels, 3)
multihot = tf.constant([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
w = tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
ones = tf.ones([2, 3])"""

_SPARSE = "tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)"

# One TensorFlow expression per PyTorch row, in the same order.
CODE: tuple[str, ...] = (
    f"tf.reduce_mean({_SPARSE})",
    "tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=logits))",
    "-tf.reduce_mean(tf.reduce_sum(onehot * tf.nn.log_softmax(logits), axis=1))",
    "tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=multihot, logits=logits))",
    "-tf.reduce_mean(multihot * tf.math.log_sigmoid(logits)"
    " + (1 - multihot) * tf.math.log_sigmoid(-logits))",
    "tf.nn.l2_loss(w)",
    "tf.reduce_sum(ones, axis=0)",
    "tf.reduce_sum(ones, axis=1)",
    "tf.reduce_sum(ones)",
    "tf.reduce_mean(ones, axis=0)",
    "tf.reduce_mean(ones, axis=1)",
    "tf.reduce_mean(ones)",
    f"tf.reduce_sum({_SPARSE})",
    _SPARSE,
)
assert len(CODE) == len(ROWS)


def _plain(x: Any) -> float | list[float]:
    a = np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float64)
    return float(a) if a.ndim == 0 else [round(float(v), 6) for v in a.reshape(-1)]


def table() -> list[Row]:
    """Evaluate every row with TensorFlow."""
    ns: dict[str, Any] = {"tf": tf}
    exec(SETUP, ns)  # noqa: S102 - our own constant code, shown to the user verbatim
    return [Row(label, code, _plain(eval(code, ns)))  # noqa: S307
            for (label, _), code in zip(ROWS, CODE, strict=True)]
