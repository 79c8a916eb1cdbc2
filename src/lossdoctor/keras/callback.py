"""``LossDoctorCallback``: the checks on a schedule inside ``model.fit``.

``fit`` compiles its train step (a ``tf.function`` on TensorFlow), so nothing can be recorded
inside it. Instead, on scheduled steps the callback measures the model as it is at that moment
on a fixed eager probe batch, with the same probe ``diagnose`` uses, and runs the layer checks
on it together with the run checks on the loss history ``fit`` logs. The probe leaves every
variable and RNG state as it found them (:func:`~lossdoctor.keras.state.untouched`), so the
training run is the same with and without the callback.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Any, Literal

import keras

from lossdoctor.checks import run_checks
from lossdoctor.checks.base import Scope
from lossdoctor.findings import SEVERITY_RANK, Finding
from lossdoctor.keras.loss import resolve
from lossdoctor.keras.probe import probe
from lossdoctor.keras.state import untouched
from lossdoctor.monitor.monitor import LossDoctorWarning
from lossdoctor.report import Report
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import RunStats, Trace


class LossDoctorCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Watch a ``model.fit`` run.

    Args:
        x: a probe batch of inputs (measured eagerly on scheduled steps).
        y: its targets.
        every: measure every this many training steps (the first measurement is before the
            first step, where the one-batch checks run too).
        loss_fn: the loss; None: the one the model is compiled with.
        window: steps in the moving average of the dynamics checks (default ``every``, >= 10).
        on_finding: ``warn`` (a :class:`LossDoctorWarning` per warning/error finding),
            ``stop`` (also ``model.stop_training = True``) or ``ignore``.
        thresholds: the lines the checks draw.

    Attributes:
        findings: every finding so far (each code and place once, with the step it was seen).
        losses: the per-step ``loss`` that ``fit`` logged (Keras logs the epoch's running mean).
        traces: (step, trace) of each measurement.
    """

    def __init__(self, x: Any, y: Any, every: int = 50, loss_fn: Any = None,
                 window: int | None = None,
                 on_finding: Literal["warn", "stop", "ignore"] = "warn",
                 thresholds: Thresholds | None = None) -> None:
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.x, self.y, self.every, self.loss_fn = x, y, every, loss_fn
        self.window = window or max(every, 10)
        self.on_finding = on_finding
        self.thresholds = thresholds
        self.step = 0
        self.losses: list[float] = []
        self.findings: list[Finding] = []
        self.traces: list[tuple[int, Trace]] = []
        self._seen: set[tuple[str, str]] = set()
        self._dead_first: dict[str, float] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._measure(first=True)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.step += 1
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))
        if self.step % self.every == 0 or (self.losses and not math.isfinite(self.losses[-1])):
            self._measure(first=False)

    def _measure(self, first: bool) -> None:
        model = self.model
        loss = resolve(self.loss_fn if self.loss_fn is not None else model.loss, self.y)
        optimizer = getattr(model, "optimizer", None)
        with untouched(model, optimizer, loss.fn):
            trace = probe(model, self.x, self.y, loss, optimizer)
        for layer in trace.layers:
            if layer.dead_units is not None:
                self._dead_first.setdefault(layer.name, layer.dead_units)
        trace = replace(trace, run=RunStats(step=self.step, losses=tuple(self.losses),
                                            window=self.window,
                                            dead_first=tuple(self._dead_first.items())))
        self.traces.append((self.step, trace))
        scopes: tuple[Scope, ...] = ("batch", "layers", "run") if first else ("layers", "run")
        for f in run_checks(trace, self.thresholds, scopes=scopes):
            self._emit(f)

    def _emit(self, f: Finding) -> None:
        key = (f.code, f.where if not f.where.startswith("step ") else "")
        if key in self._seen:
            return
        self._seen.add(key)
        if not f.summary.startswith("step "):  # run findings already name their step
            f = replace(f, summary=f"step {self.step}: {f.summary}",
                        evidence={**f.evidence, "step": self.step})
        self.findings.append(f)
        if f.severity == "info" or self.on_finding == "ignore":
            return
        warnings.warn(f"{f.code}: {f.summary}", LossDoctorWarning, stacklevel=2)
        if self.on_finding == "stop":
            self.model.stop_training = True

    def report(self) -> Report:
        """Everything found so far, with the last measurement's trace."""
        if not self.traces:
            raise RuntimeError("nothing measured yet: pass the callback to model.fit")
        trace = self.traces[-1][1]
        assert trace.run is not None
        trace = replace(trace, run=replace(trace.run, step=self.step, losses=tuple(self.losses)))
        return Report(trace=trace,
                      findings=sorted(self.findings, key=lambda f: -SEVERITY_RANK[f.severity]))
