"""The Keras loss as the trace describes it: kind, reduction, label smoothing, ``from_logits``.

Keras passes ``(y_true, y_pred)``. A loss object carries its configuration; a string is resolved
the way ``compile`` resolves it; a plain function is a hand-written loss (``custom``), reduced by
the mean over the batch as Keras does.

A softmax (sigmoid) head with ``CategoricalCrossentropy(from_logits=False)``
(``BinaryCrossentropy``) is the correct Keras idiom: it is cross-entropy of the head's logits, so
the trace names the loss ``cross_entropy`` (``bce_logits``) on those logits. The same loss on an
output that is not a probability keeps its log-likelihood form (``nll`` / ``bce``), which the
probability checks judge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lossdoctor.errors import LossDoctorError

# Keras loss class name -> (trace kind with logits, trace kind on probabilities)
_KINDS: dict[str, tuple[str, str]] = {
    "CategoricalCrossentropy": ("cross_entropy", "nll"),
    "SparseCategoricalCrossentropy": ("cross_entropy", "nll"),
    "BinaryCrossentropy": ("bce_logits", "bce"),
    "MeanSquaredError": ("mse", "mse"),
    "MeanAbsoluteError": ("l1", "l1"),
    "Huber": ("huber", "huber"),
    "KLDivergence": ("kl_div", "kl_div"),
}
_NAMES = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "mean_squared_error": "MeanSquaredError", "mse": "MeanSquaredError",
    "mean_absolute_error": "MeanAbsoluteError", "mae": "MeanAbsoluteError",
    "huber": "Huber", "kl_divergence": "KLDivergence", "kld": "KLDivergence",
}
_REDUCTIONS = {"sum_over_batch_size": "mean", "mean": "mean", "mean_with_sample_weight": "mean",
               "sum": "sum", "none": "none", None: "none"}


@dataclass(frozen=True)
class KerasLoss:
    """A callable ``(y_true, y_pred) -> scalar`` and what it is.

    Attributes:
        fn: the callable (a Keras ``Loss`` object or a reduced wrapper of a function).
        name: class or function name.
        library: a Keras library loss (not a hand-written function).
        from_logits: the ``from_logits`` setting of a cross-entropy.
        reduction: ``mean``, ``sum`` or ``none``.
        label_smoothing: label smoothing.
        logit_kind: trace kind when fed logits.
        prob_kind: trace kind when fed probabilities (``from_logits=False``).
    """

    fn: Callable[[Any, Any], Any]
    name: str
    library: bool
    from_logits: bool
    reduction: str | None
    label_smoothing: float
    logit_kind: str
    prob_kind: str

    def kind(self, producer: str | None) -> tuple[str, bool]:
        """(trace kind, whether the loss is read on the logits before the output's activation).

        ``from_logits=False`` on a softmax (sigmoid) output is cross-entropy of its logits.
        """
        if self.from_logits or self.logit_kind == self.prob_kind:
            return self.logit_kind, False
        if (self.logit_kind == "cross_entropy" and producer == "softmax") or (
                self.logit_kind == "bce_logits" and producer == "sigmoid"):
            return self.logit_kind, True
        return self.prob_kind, False


def _reduced(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    import keras

    def loss(y_true: Any, y_pred: Any) -> Any:
        return keras.ops.mean(fn(y_true, y_pred))

    loss.__name__ = getattr(fn, "__name__", "loss")
    return loss


def resolve(loss: Any, targets: Any = None) -> KerasLoss:
    """Describe a Keras loss object, a loss name as ``compile`` takes it, or a function.

    Raises:
        LossDoctorError: nothing usable (None, a dict of per-output losses).
    """
    import keras
    import numpy as np

    if loss is None:
        raise LossDoctorError("no loss: pass loss_fn, or compile the model with a loss")
    if isinstance(loss, (dict, list, tuple)):
        raise LossDoctorError("per-output losses (a dict or list) are not supported yet: pass the "
                              "loss of the output to diagnose")
    if isinstance(loss, str):
        name = loss
        if name == "crossentropy":
            t = np.asarray(targets) if targets is not None else None
            name = ("sparse_categorical_crossentropy"
                    if t is not None and (t.ndim == 1 or t.shape[-1] == 1) else
                    "categorical_crossentropy")
        cls = _NAMES.get(name, name)
        try:
            loss = getattr(keras.losses, cls)() if hasattr(keras.losses, cls) else \
                keras.losses.get(name)
        except Exception as e:  # noqa: BLE001 - Keras' own message is the best one
            raise LossDoctorError(f"unknown Keras loss {name!r}: {e}") from e
    if isinstance(loss, keras.losses.Loss):
        cls = type(loss).__name__
        cfg = loss.get_config() if hasattr(loss, "get_config") else {}
        logit_kind, prob_kind = _KINDS.get(cls, ("custom", "custom"))
        from_logits = bool(cfg.get("from_logits", logit_kind == prob_kind))
        return KerasLoss(
            fn=loss, name=cls, library=cls in _KINDS, from_logits=from_logits,
            reduction=_REDUCTIONS.get(cfg.get("reduction", "sum_over_batch_size"), None),
            label_smoothing=float(cfg.get("label_smoothing", 0.0) or 0.0),
            logit_kind=logit_kind, prob_kind=prob_kind)
    if callable(loss):
        name = getattr(loss, "__name__", type(loss).__name__)
        module = getattr(loss, "__module__", "") or ""
        if module.startswith("keras") and name in _NAMES:
            cls = _NAMES[name]
            logit_kind, prob_kind = _KINDS[cls]
            return KerasLoss(fn=_reduced(loss), name=name, library=True,
                             from_logits=logit_kind == prob_kind, reduction="mean",
                             label_smoothing=0.0, logit_kind=logit_kind, prob_kind=prob_kind)
        return KerasLoss(fn=_reduced(loss), name=name, library=False, from_logits=False,
                         reduction=None, label_smoothing=0.0, logit_kind="custom",
                         prob_kind="custom")
    raise LossDoctorError(f"loss_fn must be a Keras loss, a loss name or a function "
                          f"(y_true, y_pred) -> loss, got {type(loss).__name__}")


@dataclass
class LibraryCalls:
    """What the Keras library losses called inside the loss received."""

    output: Any
    swapped: bool = False

    def seen(self, y_true: Any, y_pred: Any) -> None:
        """A library loss got ``(y_true, y_pred)``: the model output as y_true is a swap."""
        if y_true is self.output and y_pred is not self.output:
            self.swapped = True


@contextmanager
def library_calls(output: Any) -> Iterator[LibraryCalls]:
    """Watch the Keras loss functions and ``Loss.__call__`` while the loss runs (a custom loss
    calling ``keras.losses.categorical_crossentropy(y_pred, y_true)``); always unwrapped."""
    import keras
    from keras.src.losses.loss import Loss

    calls = LibraryCalls(output)
    patched: list[tuple[Any, str, Any]] = []

    def wrap(fn: Callable[..., Any], method: bool) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            a = args[1:] if method else args
            y_true = a[0] if a else kwargs.get("y_true")
            y_pred = a[1] if len(a) > 1 else kwargs.get("y_pred")
            calls.seen(y_true, y_pred)
            return fn(*args, **kwargs)
        return call

    try:
        for name in _NAMES:
            fn = getattr(keras.losses, name, None)
            if callable(fn) and not isinstance(fn, type):
                patched.append((keras.losses, name, fn))
                setattr(keras.losses, name, wrap(fn, False))
        patched.append((Loss, "__call__", Loss.__call__))
        Loss.__call__ = wrap(Loss.__call__, True)
        yield calls
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)
