"""Story 1 in Keras: the same network, data and optimizer as :func:`lossdoctor.examples.deep_relu`.

``64 -> [750]*6 -> 10`` Dense layers with ReLU, weights and biases drawn from
``TruncatedNormal(stddev=0.5)`` (TensorFlow's ``truncated_normal``: redrawn beyond 2 std), dropout
0.5 after every hidden layer, softmax cross-entropy on logits, plain gradient descent at lr 0.5.
Every initialiser and dropout layer has a fixed seed, so the example is reproducible without
touching any global RNG.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossdoctor.examples import digits


def story1_model(seed: int = 0, init: str = "trunc-normal", dropout: float = 0.5,
                 depth: int = 6, width: int = 750) -> Any:
    """The story-1 MLP; ``init="he"`` gives the fixed one (He normal, zero biases)."""
    import keras

    def kernel(i: int) -> Any:
        if init == "he":
            return keras.initializers.HeNormal(seed=seed * 100 + 2 * i)
        return keras.initializers.TruncatedNormal(stddev=0.5, seed=seed * 100 + 2 * i)

    def bias(i: int) -> Any:
        if init == "he":
            return "zeros"
        return keras.initializers.TruncatedNormal(stddev=0.5, seed=seed * 100 + 2 * i + 1)

    layers: list[Any] = [keras.Input((64,))]
    for i in range(depth):
        layers.append(keras.layers.Dense(width, activation="relu", kernel_initializer=kernel(i),
                                         bias_initializer=bias(i)))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, seed=seed * 100 + 50 + i))
    layers.append(keras.layers.Dense(10, kernel_initializer=kernel(depth),
                                     bias_initializer=bias(depth)))
    return keras.Sequential(layers, name="story1")


def story1(seed: int = 0) -> dict[str, Any]:
    """Story 1 as diagnosis inputs (numpy batch of 128 digits, pixels in [-0.5, 0.5])."""
    import keras

    x, y = digits(seed=seed)
    return {"model": story1_model(seed), "inputs": x.numpy(), "targets": y.numpy().astype(np.int64),
            "loss_fn": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "optimizer": keras.optimizers.SGD(learning_rate=0.5)}
