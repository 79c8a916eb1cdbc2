"""A few optimizer steps on a clone: ``clone_model`` + ``set_weights``, a fresh optimizer from
its config, gradients from the backend's adapter and ``apply_gradients``. The user's model and
optimizer are never stepped."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lossdoctor.budget import Budget
from lossdoctor.errors import LossFnError, ModelError
from lossdoctor.keras.backend import adapter, to_numpy
from lossdoctor.keras.loss import KerasLoss
from lossdoctor.keras.optimizer import learning_rate
from lossdoctor.probe.steps import settled
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import StepStats

DEFAULT_LR, DEFAULT_MOMENTUM = 0.01, 0.9


def clone(model: Any, clone_function: Callable[[Any], Any] | None = None,
          weights: bool = True) -> Any:
    """``keras.models.clone_model`` (built on the same input shape) with the same weights."""
    import keras

    copy = keras.models.clone_model(model, clone_function=clone_function)
    if not copy.built and model.built:
        shape = getattr(model, "input_shape", None)
        if shape is not None:
            copy.build(shape)
    if weights:
        copy.set_weights(model.get_weights())
    return copy


def fresh_optimizer(optimizer: Any) -> Any:
    """A new optimizer of the same class and configuration (no slots, iteration 0)."""
    import keras

    if optimizer is None:
        return keras.optimizers.SGD(learning_rate=DEFAULT_LR, momentum=DEFAULT_MOMENTUM)
    return type(optimizer).from_config(optimizer.get_config())


def train_steps(model: Any, optimizer: Any, inputs: Any, targets: Any, loss: KerasLoss,
                steps: int, ratios: list[float] | None = None,
                stop: Callable[[list[float]], bool] | None = None) -> list[float]:
    """Loss before each step and after the last, on a clone the caller owns (it is trained).

    Raises:
        ModelError, LossFnError: the model or the loss raised.
    """
    import keras

    ad = adapter()
    variables = list(model.trainable_variables)
    losses: list[float] = []
    for step in range(steps + 1):
        with ad.recording():
            try:
                out = model(inputs, training=True)
            except Exception as e:
                raise ModelError(f"the model raised {type(e).__name__}: {e} (in optimizer step "
                                 f"{step} on a clone)") from e
            try:
                total = loss.fn(targets, out)
                for r in model.losses:
                    total = total + r
            except Exception as e:
                raise LossFnError(f"the loss raised {type(e).__name__}: {e} (in optimizer step "
                                  f"{step} on a clone)") from e
        value = float(np.asarray(to_numpy(total), dtype=np.float64).reshape(-1).sum())
        losses.append(value)
        if step == steps or not math.isfinite(value) or not variables \
                or (stop is not None and stop(losses)):
            break
        grads = ad.gradients(total, variables)
        before = ([to_numpy(v).astype(np.float64) for v in variables if len(v.shape) >= 2]
                  if step == 0 and ratios is not None else None)
        pairs = [(keras.ops.convert_to_tensor(g.astype(np.float32), dtype=v.dtype), v)
                 for g, v in zip(grads, variables, strict=True) if g is not None]
        optimizer.apply_gradients(pairs)
        if before is not None and ratios is not None:
            after = [to_numpy(v).astype(np.float64) for v in variables if len(v.shape) >= 2]
            for w0, w1 in zip(before, after, strict=True):
                norm = float(np.linalg.norm(w0))
                if norm > 0:
                    ratios.append(float(np.linalg.norm(w1 - w0)) / norm)
    return losses


def step_stats(model: Any, optimizer: Any, inputs: Any, targets: Any, loss: KerasLoss,
               steps: int, th: Thresholds | None = None, budget: Budget | None = None,
               need_progress: bool = True) -> StepStats:
    """Train a clone for up to ``steps`` steps (stopping once :func:`settled`) and summarise."""
    th = th or Thresholds()
    budget = budget or Budget(None)
    start = time.perf_counter()
    copy = clone(model)
    opt = fresh_optimizer(optimizer)
    ratios: list[float] = []

    def stop(losses: list[float]) -> bool:
        done = len(losses) - 1
        budget.step_seconds = (time.perf_counter() - start) / max(done, 1)
        if not budget.allows(1):
            budget.skipped.append(f"probe steps stopped after {done} of {steps}")
            return True
        return settled(losses, ratios, steps, th, need_progress)

    losses = train_steps(copy, opt, inputs, targets, loss, steps, ratios, stop)
    name = (type(optimizer).__name__ if optimizer is not None
            else f"SGD (default: lr {DEFAULT_LR}, momentum {DEFAULT_MOMENTUM})")
    return StepStats(losses=tuple(losses), update_ratios=tuple(ratios), optimizer=name,
                     lr=learning_rate(opt), given=optimizer is not None)
