"""``diagnose`` for a Keras model: the Keras probe, then the same checks, causes and report."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from lossdoctor.budget import Budget
from lossdoctor.causes.cause import find_causes
from lossdoctor.checks import run_checks
from lossdoctor.checks.init_loss import init_loss_high
from lossdoctor.errors import LossDoctorError, LossFnError, ModelError
from lossdoctor.findings import Finding
from lossdoctor.keras.fixes import backend_note, keras_fixes, lr_fix, verify_reinit
from lossdoctor.keras.loss import resolve
from lossdoctor.keras.probe import probe, with_dropout_off
from lossdoctor.keras.state import untouched
from lossdoctor.keras.steps import step_stats
from lossdoctor.keras.verify import REPAIRS, repair_for, verify_repair
from lossdoctor.report import Report
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Task

REINIT_CODES = frozenset({"init-loss-high", "signal-exploding", "signal-vanishing"})
# the findings whose printed fix is the re-initialisation (keras_fixes): its verification answers
# them too, and is run for them
REINIT_ANSWERS = REINIT_CODES | {"grad-exploding", "grad-vanishing", "dead-relu"}


def diagnose_keras(model: Any, inputs: Any, targets: Any, loss_fn: Any = None,
                   optimizer: Any = None, *, task: Task | None = None, verify_steps: int = 20,
                   thresholds: Thresholds | None = None, budget: float | None = None) -> Report:
    """Diagnose one batch of a Keras model (torch or TensorFlow backend).

    Args:
        model: a built Keras model.
        inputs: the input batch (numpy array or backend tensor).
        targets: the targets, as ``fit`` takes them.
        loss_fn: a Keras loss object, a loss name, or a function ``(y_true, y_pred)``; None: the
            loss the model was compiled with.
        optimizer: a Keras optimizer (its configuration only); None: the compiled one.
        task, verify_steps, thresholds, budget: as for :func:`lossdoctor.diagnose`.

    Raises:
        LossDoctorError: no loss, an unbuilt model, a backend without an adapter.
    """
    import keras

    if loss_fn is None:
        loss_fn = getattr(model, "loss", None)
    if optimizer is None and getattr(model, "compiled", False):
        optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not isinstance(optimizer, keras.optimizers.Optimizer):
        raise LossDoctorError(f"optimizer must be a keras.optimizers.Optimizer, got "
                              f"{type(optimizer).__name__}")
    if not model.built:
        raise LossDoctorError("the model is not built: call it once (model(x)) or give it an "
                              "Input, so it has weights to measure")
    loss = resolve(loss_fn, targets)
    clock = Budget(budget)
    backend = keras.backend.backend()
    with untouched(model, optimizer, loss.fn):
        trace = probe(model, inputs, targets, loss, optimizer, task)
        clock.step_seconds = time.perf_counter() - clock.start
        if any(f.severity != "info" for f in init_loss_high(trace, thresholds or Thresholds())):
            trace = with_dropout_off(trace, model, inputs, targets, loss)  # dropout's or init's?
        if verify_steps and trace.loss.error is None:
            loud = any(f.severity != "info" for f in run_checks(trace, thresholds))
            try:
                trace = replace(trace, steps=step_stats(model, optimizer, inputs, targets, loss,
                                                        verify_steps, thresholds, clock,
                                                        need_progress=loud))
            except (ModelError, LossFnError) as e:
                trace = replace(trace, notes=(*trace.notes, f"probe steps stopped: {e}"))
            except Exception as e:  # noqa: BLE001 - e.g. clone_model cannot rebuild the model
                trace = replace(trace, notes=(*trace.notes, f"probe steps skipped: {e}"))
    trace = replace(trace, notes=(f"Keras {keras.__version__}, {backend} backend; called with "
                                  "training=True as fit does", *trace.notes))
    findings = run_checks(trace, thresholds)
    if trace.loss.error is not None and not any(f.severity == "error" for f in findings):
        raise LossFnError(f"the loss raised {trace.loss.error}")
    findings = [backend_note(replace(f, fixes=keras_fixes(f, trace, backend, loss.name,
                                                      optimizer)),
                             backend,
                             trace.notes)
                for f in findings]
    findings = _verified(model, inputs, targets, loss, optimizer, trace, findings, verify_steps,
                         task, thresholds)
    findings = _verified_keras(model, inputs, targets, loss, optimizer, trace, findings,
                               verify_steps, task, thresholds, clock)
    skipped = clock.note()
    if skipped is not None:
        trace = replace(trace, notes=(*trace.notes, skipped))
    return Report(trace=trace, findings=findings)


def _verified(model: Any, inputs: Any, targets: Any, loss: Any, optimizer: Any, trace: Any,
              findings: list[Finding], steps: int, task: Task | None,
              thresholds: Thresholds | None) -> list[Finding]:
    """Attach the verified re-initialisation to the findings it answers."""
    if not steps or not any(f.code in REINIT_ANSWERS and f.severity != "info" for f in findings):
        return findings
    v = verify_reinit(model, inputs, targets, loss, optimizer, trace, findings, steps, task,
                      thresholds)
    return [replace(f, verification=v) if f.code in REINIT_ANSWERS else f for f in findings]


def _verified_keras(model: Any, inputs: Any, targets: Any, loss: Any, optimizer: Any,
                    trace: Any, findings: list[Finding], steps: int, task: Task | None,
                    thresholds: Thresholds | None, clock: Budget) -> list[Finding]:
    """Attach the verified loss-head, AdamW, no-decay, mean-reduction and learning-rate fixes
    (one clone per repair). As for PyTorch, a symptom whose root cause has a fix of its own is
    not repaired separately (the root's verification lists it as gone or left), and the
    learning rate is not judged on a network the re-initialisation changes."""
    if not steps:
        return findings
    out = list(findings)
    reinit = any(f.code in REINIT_ANSWERS and f.severity != "info" for f in findings)
    symptoms: set[int] = set()
    for cause in find_causes(findings, trace):
        if repair_for(cause.root.code) is None and cause.root.code not in REINIT_ANSWERS:
            continue
        symptoms |= {s.index for s in cause.symptoms
                     if repair_for(s.finding.code) is not None and s.finding.code != cause.root.code}
    for repair in REPAIRS:
        idx = [i for i, f in enumerate(out) if f.code in repair.codes and f.verification is None
               and i not in symptoms]
        if not idx or (repair.kind == "setup" and reinit):
            continue  # the learning rate is judged again after the re-initialisation
        cost = 3 + (0 if repair.kind == "config" else steps)  # clone + probe (+ steps)
        if not clock.allows(cost):
            clock.skipped.append(f"{repair.name} not verified (about {cost} steps' time)")
            continue
        v = verify_repair(repair, model, inputs, targets, loss, optimizer, trace, out, idx,
                          steps, task, thresholds)
        if v is None:
            continue
        for i in idx:
            fix = lr_fix(out[i], trace, optimizer) if repair.kind == "setup" else None
            out[i] = replace(out[i], verification=v,
                             fixes=(fix,) if fix is not None else out[i].fixes)
    return out
