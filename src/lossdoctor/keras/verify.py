"""The Keras fixes besides the re-initialisation, verified on a clone and judged as the PyTorch
repairs are (:mod:`lossdoctor.repairs.verify`).

Each repair builds exactly what its printed fix says (:func:`fix_code`): a ``clone_model`` clone
(``set_weights`` from the user's model, a ``clone_function`` where layers change), the loss and a
fresh optimizer ``from_config``. The clone is re-measured by the same probe; a ``config`` repair
(AdamW, no decay on biases, mean reduction: findings read from the configuration) is judged by
that re-diagnosis alone, a ``head`` repair (the loss reads what the head returns) must also make
its loss decrease faster over as many steps as the probe steps ran, a ``setup`` repair (the
learning rate) must clear its finding after those steps and not learn slower. When the
TensorFlow backend already recovered the logits from a softmax fed to ``from_logits=True`` (and
warned), the loss trained on is the same: the fix is judged as a set-up change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from lossdoctor.checks import run_checks
from lossdoctor.findings import Finding, Verification
from lossdoctor.fmt import g
from lossdoctor.keras.loss import _KINDS, KerasLoss, resolve
from lossdoctor.keras.optimizer import learning_rate
from lossdoctor.keras.state import untouched
from lossdoctor.keras.steps import clone, fresh_optimizer, train_steps
from lossdoctor.repairs.verify import _judge, _message, _metrics
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import StepStats, Task, Trace

NO_DECAY = ("bias", "gamma", "beta")  # the names exclude_from_weight_decay is given
EXCLUDE = "optimizer.exclude_from_weight_decay(var_names=[\"bias\", \"gamma\", \"beta\"])"
LOSS_CLASSES = frozenset(_KINDS)  # the Keras loss classes whose config the fixes change
_BIAS_REGULARIZERS = ("bias_regularizer", "beta_regularizer", "gamma_regularizer")


@dataclass(frozen=True)
class Fixed:
    """The repaired clone, its loss and its fresh optimizer."""

    model: Any
    loss: KerasLoss
    optimizer: Any


@dataclass(frozen=True)
class KerasRepair:
    """A Keras fix that runs on a clone.

    Attributes:
        name: ``keras-`` and the fix (``keras-adamw``...): not a PyTorch repair's name, so
            ``lossdoctor fix`` and the fix script never apply a PyTorch repair for it.
        kind: ``head``, ``config`` (as :class:`lossdoctor.repairs.registry.Repair`).
        codes: the finding codes it answers.
        title: one line.
        build: the clone, loss and optimizer; None when this case has no mechanical form.
    """

    name: str
    kind: str
    codes: frozenset[str]
    title: str
    build: Callable[[Any, KerasLoss, Any, Trace, Finding], Fixed | None]


# ------------------------------------------------------------------ what the clones are


def _keras_loss(loss: KerasLoss) -> Any:
    import keras

    return loss.fn if loss.library and isinstance(loss.fn, keras.losses.Loss) else None


def _probabilities_loss(model: Any, loss: KerasLoss, optimizer: Any, trace: Trace,
                        f: Finding) -> Fixed | None:
    """double-softmax: the same loss with ``from_logits=False`` reads the head's probabilities."""
    fn = _keras_loss(loss)
    if fn is None or f.evidence.get("output_op") not in ("softmax", "sigmoid"):
        return None  # a hand-written loss, or probabilities made some other way
    new = type(fn).from_config({**fn.get_config(), "from_logits": False})
    return Fixed(clone(model), resolve(new), fresh_optimizer(optimizer))


def _cross_entropy_name(f: Finding) -> str | None:
    op, targets = f.evidence.get("output_op"), f.evidence.get("targets")
    if op == "softmax" and targets == "one-hot":
        return "CategoricalCrossentropy"
    if op == "sigmoid" and targets == "binary":
        return "BinaryCrossentropy"
    return None


def _cross_entropy(model: Any, loss: KerasLoss, optimizer: Any, trace: Trace,
                   f: Finding) -> Fixed | None:
    """mse-on-saturating-output: cross-entropy on the same softmax/sigmoid head."""
    import keras

    name = _cross_entropy_name(f)
    if name is None:
        return None
    return Fixed(clone(model), resolve(getattr(keras.losses, name)()), fresh_optimizer(optimizer))


def no_l2(layer: Any) -> Any:
    """The layer without weight regularisers (printed as ``no_l2`` in the AdamW fix)."""
    config = layer.get_config()
    for key in config:
        if key.endswith("_regularizer") and key != "activity_regularizer":
            config[key] = None
    return layer.__class__.from_config(config)


def kernels_only(layer: Any) -> Any:
    """The layer with L2 on kernels only (printed as ``kernels_only``)."""
    config = layer.get_config()
    for key in _BIAS_REGULARIZERS:
        if key in config:
            config[key] = None
    return layer.__class__.from_config(config)


def printed(x: float) -> float:
    """A number as the fix prints it (3 significant digits): the clone uses the same."""
    return float(f"{x:.3g}")


def coupled_decay(trace: Trace) -> float:
    """The coupled L2 coefficient the trace records (2 * l2): AdamW's weight_decay."""
    if trace.optimizer is None:
        return 0.0
    return printed(max((float(gr["weight_decay"]) for gr in trace.optimizer.groups
                        if gr.get("coupled_l2")), default=0.0))


def _adamw(model: Any, loss: KerasLoss, optimizer: Any, trace: Trace, f: Finding) -> Fixed | None:
    """adam-coupled-l2: no weight regularisers, AdamW from the optimizer's config."""
    import keras

    wd = coupled_decay(trace)
    if optimizer is None or wd <= 0:
        return None
    opt = keras.optimizers.AdamW.from_config({**optimizer.get_config(), "weight_decay": wd})
    opt.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return Fixed(clone(model, no_l2), loss, opt)


def bias_penalties(trace: Trace) -> tuple[bool, bool]:
    """(a regulariser on a bias/norm parameter, the optimizer's weight_decay on one)."""
    free = [p for p in trace.params if p.role in ("bias", "norm")]
    return (any(p.in_loss_penalty for p in free), any(p.weight_decay > 0 for p in free))


def _no_decay_on_bias(model: Any, loss: KerasLoss, optimizer: Any, trace: Trace,
                      f: Finding) -> Fixed | None:
    """weight-decay-on-bias: kernels-only regularisers and/or the optimizer excluding biases."""
    regularized, decayed = bias_penalties(trace)
    if not (regularized or decayed):
        return None
    opt = fresh_optimizer(optimizer)
    if decayed:
        opt.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return Fixed(clone(model, kernels_only if regularized else None), loss, opt)


def _float_lr(optimizer: Any) -> float | None:
    """The optimizer's configured learning rate when it is a number (not a schedule)."""
    lr = optimizer.get_config().get("learning_rate") if optimizer is not None else None
    return float(lr) if isinstance(lr, (int, float)) else None


def mean_reduction_lr(trace: Trace, optimizer: Any) -> float | None:
    """The learning rate that keeps an SGD-like step after sum -> mean (x batch); None for the
    Adam family (scale-free), without an optimizer or with a schedule."""
    lr = _float_lr(optimizer)
    if lr is None or (trace.optimizer is not None and trace.optimizer.adam_family):
        return None
    return printed(lr * trace.batch_size)


def _mean_reduction(model: Any, loss: KerasLoss, optimizer: Any, trace: Trace,
                    f: Finding) -> Fixed | None:
    """sum-reduction: the batch mean, the learning rate x batch for SGD-like optimizers."""
    fn = _keras_loss(loss)
    if fn is None or loss.reduction != "sum":
        return None
    new = type(fn).from_config({**fn.get_config(), "reduction": "sum_over_batch_size"})
    opt = fresh_optimizer(optimizer)
    lr = mean_reduction_lr(trace, optimizer)
    if lr is not None:
        opt = type(optimizer).from_config({**optimizer.get_config(), "learning_rate": lr})
    return Fixed(clone(model), resolve(new), opt)


def lr_factor(f: Finding) -> float:
    """As the PyTorch repair: towards an update/weight ratio of 1e-3 (x0.1 / x10 at least)."""
    from lossdoctor.repairs.registry import _lr_factor

    return _lr_factor(f, f.code == "lr-too-high")


def new_lr(f: Finding, optimizer: Any) -> float | None:
    """The scaled learning rate, None for a schedule or no optimizer."""
    lr = _float_lr(optimizer)
    return printed(lr * lr_factor(f)) if lr is not None else None


def _scaled_lr(model: Any, loss: KerasLoss, optimizer: Any, trace: Trace,
               f: Finding) -> Fixed | None:
    """lr-too-high / lr-too-low: the same optimizer from its config with the scaled rate."""
    lr = new_lr(f, optimizer)
    if lr is None:
        return None
    opt = type(optimizer).from_config({**optimizer.get_config(), "learning_rate": lr})
    return Fixed(clone(model), loss, opt)


REPAIRS: tuple[KerasRepair, ...] = (
    KerasRepair("keras-probabilities-loss", "head", frozenset({"double-softmax"}),
                "the same loss with from_logits=False, reading the head's probabilities",
                _probabilities_loss),
    KerasRepair("keras-cross-entropy", "head", frozenset({"mse-on-saturating-output"}),
                "cross-entropy on the softmax/sigmoid head instead of squared error",
                _cross_entropy),
    KerasRepair("keras-adamw", "config", frozenset({"adam-coupled-l2"}),
                "AdamW with the coupled L2 as weight_decay, no weight regularisers",
                _adamw),
    KerasRepair("keras-no-decay", "config", frozenset({"weight-decay-on-bias"}),
                "no regulariser or weight decay on biases and normalisation parameters",
                _no_decay_on_bias),
    KerasRepair("keras-mean-reduction", "config", frozenset({"sum-reduction"}),
                "mean over the batch (learning rate x batch for SGD-like optimizers)",
                _mean_reduction),
    KerasRepair("keras-lower-lr", "setup", frozenset({"lr-too-high"}),
                "learning rate scaled towards an update/weight ratio of 1e-3", _scaled_lr),
    KerasRepair("keras-raise-lr", "setup", frozenset({"lr-too-low"}),
                "learning rate scaled towards an update/weight ratio of 1e-3", _scaled_lr),
)


def repair_for(code: str) -> KerasRepair | None:
    """The Keras repair that answers a finding code."""
    return next((r for r in REPAIRS if code in r.codes), None)


# ------------------------------------------------------------------ the printed code


_CLONE = ("fixed = keras.models.clone_model(model, clone_function={fn})\n"
          "fixed.set_weights(model.get_weights())  # the same weights\n")
_NO_L2 = (
    "def no_l2(layer):\n"
    "    config = layer.get_config()\n"
    "    for key in config:\n"
    "        if key.endswith(\"_regularizer\") and key != \"activity_regularizer\":\n"
    "            config[key] = None  # the decay moves into the optimizer\n"
    "    return layer.__class__.from_config(config)\n\n")
_KERNELS_ONLY = (
    "def kernels_only(layer):\n"
    "    config = layer.get_config()\n"
    "    for key in (\"bias_regularizer\", \"beta_regularizer\", \"gamma_regularizer\"):\n"
    "        if key in config:\n"
    "            config[key] = None  # L2 on kernels only\n"
    "    return layer.__class__.from_config(config)\n\n")


def fix_code(code: str, f: Finding, trace: Trace, loss_name: str) -> str | None:
    """The Keras code of the repair for ``code`` (what the clone does), None without one."""
    if code == "double-softmax":
        act = f.evidence.get("output_op", "softmax")
        if loss_name not in LOSS_CLASSES:
            return None  # a hand-written loss: no mechanical from_logits to change
        return (f"loss = keras.losses.{loss_name}.from_config(\n"
                f"    {{**loss.get_config(), \"from_logits\": False}})  # reads the {act}'s "
                "probabilities\n"
                f"# or drop the {act}: keras.layers.Dense(units)  # logits, keep from_logits=True")
    if code == "mse-on-saturating-output":
        name = _cross_entropy_name(f)
        if name is None:
            return None
        note = "one-hot targets" if name == "CategoricalCrossentropy" else "0/1 targets"
        return (f"loss = keras.losses.{name}()  # from_logits=False: cross-entropy of the "
                f"{f.evidence.get('output_op')}'s logits ({note})\n"
                "model.compile(loss=loss, optimizer=optimizer)")
    if code == "adam-coupled-l2":
        wd = coupled_decay(trace)
        return (_NO_L2 + _CLONE.format(fn="no_l2") +
                "optimizer = keras.optimizers.AdamW.from_config(\n"
                f"    {{**optimizer.get_config(), \"weight_decay\": {wd:.3g}}})  # 2 * l2\n"
                + EXCLUDE)
    if code == "weight-decay-on-bias":
        regularized, decayed = bias_penalties(trace)
        parts = []
        if regularized:
            parts.append(_KERNELS_ONLY + _CLONE.format(fn="kernels_only").rstrip("\n"))
        if decayed:
            parts.append("optimizer = type(optimizer).from_config(optimizer.get_config())\n"
                         + EXCLUDE + "  # before the first step")
        return "\n".join(parts) if parts else None
    return None


def fix_code_with_optimizer(code: str, f: Finding, trace: Trace, loss_name: str,
                            optimizer: Any) -> str | None:
    """:func:`fix_code` for the fixes whose numbers come from the optimizer's config."""
    if code == "sum-reduction":
        if loss_name not in LOSS_CLASSES:
            return None
        text = (f"loss = keras.losses.{loss_name}.from_config(\n"
                "    {**loss.get_config(), \"reduction\": \"sum_over_batch_size\"})  # the "
                "batch mean")
        lr = mean_reduction_lr(trace, optimizer)
        if lr is not None:
            text += ("\noptimizer = type(optimizer).from_config(\n"
                     f"    {{**optimizer.get_config(), \"learning_rate\": {lr:.3g}}})"
                     f"  # x {trace.batch_size} (the batch): the same step")
        return text
    if code in ("lr-too-high", "lr-too-low"):
        lr = new_lr(f, optimizer)
        if lr is None:
            return None
        return ("optimizer = type(optimizer).from_config(\n"
                f"    {{**optimizer.get_config(), \"learning_rate\": {lr:.3g}}})"
                f"  # x {g(lr_factor(f))}: update/weight ratio towards 1e-3")
    return fix_code(code, f, trace, loss_name)


# ------------------------------------------------------------------ the verification


def verify_repair(repair: KerasRepair, model: Any, inputs: Any, targets: Any, loss: KerasLoss,
                  optimizer: Any, trace: Trace, findings: list[Finding], idx: list[int],
                  steps: int, task: Task | None,
                  thresholds: Thresholds | None) -> Verification | None:
    """Apply ``repair`` to a clone, re-measure it, train it if its kind needs steps, and judge.

    None when the repair has no mechanical form for this model (its fix stays printed).
    The user's model, optimizer, loss and every RNG state are restored.
    """
    from lossdoctor.keras.probe import probe

    f = findings[idx[0]]
    codes = {findings[i].code for i in idx}
    before_errors = {x.code for x in findings if x.severity == "error"}
    recovered = bool(f.evidence.get("backend_recovers_logits"))
    kind = "setup" if repair.kind == "head" and recovered else repair.kind
    title = repair.title
    base = list(trace.steps.losses) if trace.steps is not None else []
    with untouched(model, optimizer, loss.fn):
        try:
            fixed = repair.build(model, loss, optimizer, trace, f)
            if fixed is None:
                return None
            with untouched(fixed.model):  # the re-probe leaves the clone as it was built
                after_trace = probe(fixed.model, inputs, targets, fixed.loss, fixed.optimizer,
                                    task)
            after_findings = run_checks(after_trace, thresholds)
            losses = [after_trace.loss.value]
            trained = 0
            if kind != "config":
                if len(base) < 2:
                    base = train_steps(clone(model), fresh_optimizer(optimizer), inputs, targets,
                                       loss, steps)
                if base and all(math.isfinite(v) for v in base):
                    steps = max(len(base) - 1, 0) or steps  # as many as the probe steps ran
                ratios: list[float] = []
                losses = train_steps(fixed.model, fixed.optimizer, inputs, targets, fixed.loss,
                                     steps, ratios)
                after_trace = replace(after_trace, steps=StepStats(
                    losses=tuple(losses), update_ratios=tuple(ratios),
                    optimizer=type(fixed.optimizer).__name__,
                    lr=learning_rate(fixed.optimizer), given=optimizer is not None))
                after_findings = run_checks(after_trace, thresholds)
                trained = len(losses) - 1
        except Exception as e:  # noqa: BLE001 - a model clone_model cannot rebuild, a loss
            return Verification(repair.name, title, "failed", {}, {},
                                f"{title}: could not be run on a clone: "
                                f"{type(e).__name__}: {e}")
    before = _metrics(trace, findings, base)
    after = _metrics(after_trace, after_findings, losses)
    after["all_codes"] = sorted({x.code for x in after_findings})
    after_errors = {x.code for x in after_findings if x.severity == "error"}
    why = _judge(cast(Any, _Kind(kind)), codes, before, after, before_errors, after_errors)
    message = _message("keras.models.clone_model clone, " + title, codes | {kind}, before,
                       after, trained)
    if recovered and kind == "setup":
        message += (f" (the {f.evidence.get('backend', 'tensorflow')} backend already read the "
                    "logits off the head, so the loss trained on is the same; the fix no "
                    "longer relies on it)")
    return Verification(repair.name, title, "verified" if why is None else "not verified",
                        before, after, message if why is None else f"{message} ({why})")


@dataclass(frozen=True)
class _Kind:
    """What :func:`lossdoctor.repairs.verify._judge` reads of a repair."""

    kind: str
