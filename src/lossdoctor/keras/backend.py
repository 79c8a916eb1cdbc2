"""Gradient adapters: one per Keras backend, the only place that knows how gradients are taken.

The probe records tensors while the model and the loss run inside :meth:`Adapter.recording`,
then asks for the gradients of a scalar with respect to variables and recorded tensors. With the
torch backend that is ``torch.autograd.grad`` (the Keras variables are ``nn.Parameter``); with the
TensorFlow backend it is a persistent ``tf.GradientTape`` that watches every recorded tensor.
Gradients come back as numpy arrays (None where the scalar does not depend on the tensor); no
variable's ``.grad`` and no optimizer is touched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from lossdoctor.errors import LossDoctorError


def to_numpy(t: Any) -> np.ndarray:
    """Any backend tensor or Keras variable as a numpy array (a copy for a torch tensor)."""
    if type(t).__module__.startswith("tensorflow") and hasattr(t, "numpy"):
        return np.asarray(t.numpy())  # a plain TensorFlow tensor or variable, on any backend
    import keras

    value = getattr(t, "value", t) if _is_variable(t) else t
    return np.asarray(keras.ops.convert_to_numpy(value))


def _is_variable(t: Any) -> bool:
    import keras

    return isinstance(t, keras.Variable)


class Adapter(Protocol):
    """What the probe needs from a backend."""

    name: str

    def recording(self) -> Any:
        """Context manager inside which the forward pass and the loss run."""

    def watch(self, t: Any) -> None:
        """Ask for the gradient with respect to an intermediate tensor later."""

    def gradients(self, y: Any, xs: Sequence[Any]) -> list[np.ndarray | None]:
        """d(scalar y)/d(x) for every x (a variable or a recorded tensor)."""


class TorchAdapter:
    """Keras on torch: autograd; variables are ``nn.Parameter`` (their ``.value``)."""

    name = "torch"

    @contextmanager
    def recording(self) -> Iterator[None]:
        import torch

        with torch.enable_grad():
            yield

    def watch(self, t: Any) -> None:
        """Nothing to do: autograd keeps every tensor that depends on a parameter."""

    def gradients(self, y: Any, xs: Sequence[Any]) -> list[np.ndarray | None]:
        import torch

        targets = [getattr(x, "value", x) if _is_variable(x) else x for x in xs]
        idx = [i for i, t in enumerate(targets)
               if isinstance(t, torch.Tensor) and t.requires_grad]
        out: list[np.ndarray | None] = [None] * len(xs)
        if not idx or not (isinstance(y, torch.Tensor) and y.requires_grad):
            return out
        grads = torch.autograd.grad(y.reshape(()), [targets[i] for i in idx], retain_graph=True,
                                    allow_unused=True)
        for i, g in zip(idx, grads, strict=True):
            out[i] = None if g is None else g.detach().cpu().double().numpy()
        return out


class TensorFlowAdapter:
    """Keras on TensorFlow: one persistent ``tf.GradientTape`` over the forward and the loss."""

    name = "tensorflow"

    def __init__(self) -> None:
        self.tape: Any = None

    @contextmanager
    def recording(self) -> Iterator[None]:
        import tensorflow as tf

        with tf.GradientTape(persistent=True) as tape:
            self.tape = tape
            yield

    def watch(self, t: Any) -> None:
        import tensorflow as tf

        if self.tape is not None and isinstance(t, tf.Tensor) and t.dtype.is_floating:
            self.tape.watch(t)

    def gradients(self, y: Any, xs: Sequence[Any]) -> list[np.ndarray | None]:
        import tensorflow as tf

        if self.tape is None:
            return [None] * len(xs)
        targets = [getattr(x, "value", x) if _is_variable(x) else x for x in xs]
        ok = [i for i, t in enumerate(targets)
              if isinstance(t, (tf.Tensor, tf.Variable)) and t.dtype.is_floating]
        out: list[np.ndarray | None] = [None] * len(xs)
        if not ok:
            return out
        grads = self.tape.gradient(y, [targets[i] for i in ok],
                                   unconnected_gradients=tf.UnconnectedGradients.NONE)
        for i, g in zip(ok, grads, strict=True):
            if g is None:
                continue
            if isinstance(g, tf.IndexedSlices):
                g = tf.convert_to_tensor(g)
            out[i] = np.asarray(g.numpy(), dtype=np.float64)
        return out


def adapter() -> Adapter:
    """The adapter for the running Keras backend.

    Raises:
        LossDoctorError: a backend without an adapter (JAX, OpenVINO).
    """
    import keras

    name = keras.backend.backend()
    if name == "torch":
        return TorchAdapter()
    if name == "tensorflow":
        return TensorFlowAdapter()
    raise LossDoctorError(f"lossdoctor measures Keras models on the torch and tensorflow backends; "
                          f"this one runs on {name!r} (set KERAS_BACKEND before importing keras)")
