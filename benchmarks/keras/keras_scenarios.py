"""Keras 3 set-ups for the benchmark and the tests: faults ported from ``benchmarks/faults`` and
healthy controls, each built fresh from a fixed seed on whichever backend ``KERAS_BACKEND`` names.

A separate directory (not a ``framework`` field in ``benchmarks/faults``) because Keras fixes its
backend at import: this set runs once per backend in its own process, and the PyTorch benchmark
keeps running where Keras is not installed.

Each entry is ``make() -> dict(model, inputs, targets, loss_fn, optimizer[, task])`` and, for a
fault, the codes that must be reported (any one of them, any severity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

Case = dict[str, Any]
L = keras.layers


@dataclass(frozen=True)
class Scenario:
    """One Keras set-up."""

    name: str
    make: Callable[[], Case]
    expected: frozenset[str] = field(default_factory=frozenset)
    port_of: str = ""  # the PyTorch fault it ports, when there is one


def blobs(n: int = 128, d: int = 32, k: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standardised Gaussian blobs (float32 features, int64 labels), as the PyTorch benchmark's."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 1.5
    y = np.arange(n) % k
    x = centers[y] + rng.standard_normal((n, d))
    x = (x - x.mean(0)) / x.std(0)
    return x.astype(np.float32), y.astype(np.int64)


def mlp(depth: int = 3, width: int = 256, d: int = 32, k: int = 10, act: str = "relu",
        init: Any = "he_normal", bias: Any = "zeros", head: str | None = None,
        dropout: float = 0.0, **dense: Any) -> keras.Model:
    layers: list[Any] = [keras.Input((d,))]
    for _ in range(depth):
        layers.append(L.Dense(width, activation=act, kernel_initializer=init,
                              bias_initializer=bias, **dense))
        if dropout:
            layers.append(L.Dropout(dropout))
    layers.append(L.Dense(k, activation=head, **dense))
    return keras.Sequential(layers)


def _case(model: keras.Model, loss: Any, opt: Any, x: np.ndarray | None = None,
          y: np.ndarray | None = None, **extra: Any) -> Case:
    if x is None or y is None:
        x, y = blobs()
    return {"model": model, "inputs": x, "targets": y, "loss_fn": loss, "optimizer": opt, **extra}


def _seeded(fn: Callable[[], Case]) -> Callable[[], Case]:
    def make() -> Case:
        keras.utils.set_random_seed(0)  # the scenario's own init and dropout seeds
        return fn()
    make.__name__ = fn.__name__
    return make


def sce(from_logits: bool = True, **kw: Any) -> Any:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, **kw)


def sgd(lr: float = 0.01, momentum: float = 0.9) -> Any:
    return keras.optimizers.SGD(learning_rate=lr, momentum=momentum)


# ---------------------------------------------------------------- faults


def story1() -> Case:
    from lossdoctor.keras.examples import story1 as make

    return make()


def double_softmax() -> Case:
    return _case(mlp(head="softmax"), sce(from_logits=True), sgd())


def sigmoid_into_bce_logits() -> Case:
    x, y = blobs(k=2)
    return _case(mlp(k=1, head="sigmoid"), keras.losses.BinaryCrossentropy(from_logits=True),
                 sgd(), x, y.reshape(-1, 1).astype(np.float32))


def mse_on_softmax() -> Case:
    x, y = blobs()
    return _case(mlp(head="softmax"), keras.losses.MeanSquaredError(), sgd(), x,
                 np.eye(10, dtype=np.float32)[y])


def sum_reduction() -> Case:
    return _case(mlp(), sce(reduction="sum"), sgd(0.05))


def l2_on_biases() -> Case:
    reg = keras.regularizers.L2(1e-4)
    return _case(mlp(kernel_regularizer=reg, bias_regularizer=reg), sce(), sgd())


def adam_kernel_regularizer() -> Case:
    return _case(mlp(kernel_regularizer=keras.regularizers.L2(5e-4)), sce(),
                 keras.optimizers.Adam(1e-3))


def regularizer_dominates() -> Case:
    return _case(mlp(kernel_regularizer=keras.regularizers.L2(1.0)), sce(), sgd())


def lr_too_high() -> Case:
    return _case(mlp(), sce(), sgd(lr=20.0, momentum=0.0))


def lr_too_low() -> Case:
    return _case(mlp(), sce(), sgd(lr=1e-7, momentum=0.0))


def labels_one_based() -> Case:
    x, y = blobs()
    return _case(mlp(), sce(), sgd(), x, y + 1)


def unnormalised_inputs() -> Case:
    x, y = blobs()
    return _case(mlp(init="glorot_uniform"), sce(), keras.optimizers.Adam(1e-3),
                 x * 60.0 + 120.0, y)


def dead_relu() -> Case:
    return _case(mlp(bias=keras.initializers.Constant(-20.0)), sce(), sgd())


def saturated_sigmoid() -> Case:
    return _case(mlp(depth=3, act="sigmoid", init=keras.initializers.RandomNormal(stddev=1.0)),
                 sce(), sgd())


def exploding_signal() -> Case:
    init = keras.initializers.VarianceScaling(scale=32.0, mode="fan_in")  # 4x He's std
    return _case(mlp(depth=6, init=init), sce(), sgd())


def vanishing_deep_sigmoid() -> Case:
    return _case(mlp(depth=12, act="sigmoid", init="glorot_normal"), sce(), sgd())


def swapped_custom_loss() -> Case:
    """A custom loss written ``(y_pred, y_true)`` around Keras' ``(y_true, y_pred)``."""
    x, y = blobs()

    def loss(y_pred: Any, y_true: Any) -> Any:  # Keras calls loss(y_true, y_pred)
        return keras.losses.categorical_crossentropy(y_true, y_pred)

    return _case(mlp(head="softmax"), loss, sgd(), x, np.eye(10, dtype=np.float32)[y])


# ---------------------------------------------------------------- healthy controls


def he_mlp() -> Case:
    return _case(mlp(depth=6), sce(), sgd())


def default_init_adam() -> Case:
    return _case(mlp(init="glorot_uniform"), sce(), keras.optimizers.Adam(1e-3))


def softmax_head_cce() -> Case:
    """The Keras idiom: a softmax head and from_logits=False (one-hot targets)."""
    x, y = blobs()
    return _case(mlp(head="softmax"), keras.losses.CategoricalCrossentropy(), sgd(), x,
                 np.eye(10, dtype=np.float32)[y])


def softmax_head_compiled_string() -> Case:
    """``compile(loss="sparse_categorical_crossentropy")`` on a softmax head: the compiled loss
    and optimizer are used (none passed)."""
    model = mlp(head="softmax")
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-3))
    x, y = blobs()
    return {"model": model, "inputs": x, "targets": y}


def sigmoid_head_bce() -> Case:
    x, y = blobs(k=2)
    return _case(mlp(k=1, head="sigmoid"), keras.losses.BinaryCrossentropy(), sgd(), x,
                 y.reshape(-1, 1).astype(np.float32))


def cnn_bn() -> Case:
    from lossdoctor.examples import digits

    xt, yt = digits()
    x = xt.numpy().reshape(-1, 8, 8, 1)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        L.Conv2D(16, 3, padding="same", use_bias=False), L.BatchNormalization(), L.ReLU(),
        L.Conv2D(32, 3, padding="same", use_bias=False), L.BatchNormalization(), L.ReLU(),
        L.GlobalAveragePooling2D(), L.Dense(10)])
    return _case(model, sce(), keras.optimizers.Adam(1e-3), x, yt.numpy().astype(np.int64))


def regression() -> Case:
    """Keras' default init: with He init the outputs start at rms 2.3 against unit-scale
    targets and SGD's first step overshoots (loss 5.7 -> 87.6), which lr-too-high reports."""
    x, _ = blobs()
    rng = np.random.default_rng(1)
    w = rng.standard_normal((32, 1)).astype(np.float32)
    y = (x @ w / np.sqrt(32) + 0.1 * rng.standard_normal((128, 1))).astype(np.float32)
    return _case(mlp(k=1, init="glorot_uniform"), keras.losses.MeanSquaredError(), sgd(), x, y)


def dropout_mlp() -> Case:
    return _case(mlp(dropout=0.3), sce(), sgd())


def adamw_excluding_biases() -> Case:
    opt = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-2)
    opt.exclude_from_weight_decay(var_names=["bias"])
    return _case(mlp(), sce(), opt)


def small_kernel_l2_sgd() -> Case:
    return _case(mlp(kernel_regularizer=keras.regularizers.L2(1e-4)), sce(), sgd())


def residual() -> Case:
    inp = keras.Input((32,))
    h = L.Dense(128)(inp)
    for _ in range(4):
        z = L.LayerNormalization()(h)
        z = L.Dense(128, activation="relu", kernel_initializer="he_normal")(z)
        z = L.Dense(128, kernel_initializer=keras.initializers.VarianceScaling(0.1))(z)
        h = L.Add()([h, z])
    out = L.Dense(10)(h)
    return _case(keras.Model(inp, out), sce(), keras.optimizers.Adam(1e-3))


FAULTS: tuple[Scenario, ...] = (
    Scenario("story1-trunc-normal", _seeded(story1),
             frozenset({"init-loss-high", "signal-exploding"}), "story1-deep-relu-trunc-normal"),
    Scenario("double-softmax", _seeded(double_softmax), frozenset({"double-softmax"}),
             "redundant-softmax-module"),
    Scenario("sigmoid-into-bce-logits", _seeded(sigmoid_into_bce_logits),
             frozenset({"double-softmax"}), "sigmoid-into-bce-logits"),
    Scenario("mse-on-softmax", _seeded(mse_on_softmax), frozenset({"mse-on-saturating-output"}),
             "sigmoid-mse"),
    Scenario("sum-reduction", _seeded(sum_reduction), frozenset({"sum-reduction"}),
             "story3-sum-reduction"),
    Scenario("l2-on-biases", _seeded(l2_on_biases), frozenset({"weight-decay-on-bias"}),
             "story3-l2-all-variables"),
    Scenario("adam-kernel-regularizer", _seeded(adam_kernel_regularizer),
             frozenset({"adam-coupled-l2"}), "story3-adam-coupled-l2"),
    Scenario("regularizer-dominates", _seeded(regularizer_dominates),
             frozenset({"regularization-dominates"})),
    Scenario("lr-too-high", _seeded(lr_too_high), frozenset({"lr-too-high"})),
    Scenario("lr-too-low", _seeded(lr_too_low), frozenset({"lr-too-low"})),
    Scenario("labels-1-based", _seeded(labels_one_based), frozenset({"labels-out-of-range"}),
             "labels-1-based"),
    Scenario("unnormalised-inputs", _seeded(unnormalised_inputs),
             frozenset({"input-not-normalized"})),
    Scenario("dead-relu", _seeded(dead_relu), frozenset({"dead-relu"}), "dead-layer"),
    Scenario("saturated-sigmoid", _seeded(saturated_sigmoid), frozenset({"saturation"})),
    Scenario("exploding-signal", _seeded(exploding_signal), frozenset({"signal-exploding"}),
             "exploding-signal"),
    Scenario("vanishing-deep-sigmoid", _seeded(vanishing_deep_sigmoid),
             frozenset({"grad-vanishing", "signal-vanishing"}), "vanishing-grad-deep-sigmoid"),
    Scenario("custom-loss-arguments-swapped", _seeded(swapped_custom_loss),
             frozenset({"loss-arguments-swapped"}), "bce-arguments-swapped"),
)

CONTROLS: tuple[Scenario, ...] = (
    Scenario("he-mlp-6", _seeded(he_mlp)),
    Scenario("default-init-adam", _seeded(default_init_adam)),
    Scenario("softmax-head-cce", _seeded(softmax_head_cce)),
    Scenario("softmax-head-compiled-string", _seeded(softmax_head_compiled_string)),
    Scenario("sigmoid-head-bce", _seeded(sigmoid_head_bce)),
    Scenario("cnn-bn", _seeded(cnn_bn)),
    Scenario("regression-mse", _seeded(regression)),
    Scenario("dropout-mlp", _seeded(dropout_mlp)),
    Scenario("adamw-excluding-biases", _seeded(adamw_excluding_biases)),
    Scenario("small-kernel-l2-sgd", _seeded(small_kernel_l2_sgd)),
    Scenario("prenorm-residual", _seeded(residual)),
)
