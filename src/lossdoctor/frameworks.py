"""Which framework a model comes from, decided from its class names: nothing is imported."""

from __future__ import annotations

from typing import Any


def _classes(model: Any) -> list[tuple[str, str]]:
    return [(c.__module__.split(".", 1)[0], c.__name__) for c in type(model).__mro__]


def is_keras(model: Any) -> bool:
    """A Keras 3 layer or model (any backend; on torch it is also an ``nn.Module``)."""
    return any(top == "keras" and name in ("Layer", "Model") for top, name in _classes(model))


def is_tf_module(model: Any) -> bool:
    """A plain ``tf.Module``."""
    return any(top == "tensorflow" and name == "Module" for top, name in _classes(model))
