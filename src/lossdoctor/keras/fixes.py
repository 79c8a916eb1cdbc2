"""Fixes in the user's framework: each finding's fix rewritten as Keras code, and the
re-initialisation verified on a clone (``clone_model`` with the fixed initialisers, a fresh
optimizer from its config), re-measured by the same probe and trained on the same batch. The
loss-head, AdamW and no-decay fixes are verified by :mod:`lossdoctor.keras.verify`."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from lossdoctor.checks import run_checks
from lossdoctor.checks.depth import activation_family, extreme, signal_points
from lossdoctor.findings import Finding, Fix, Verification
from lossdoctor.fmt import g
from lossdoctor.keras.loss import KerasLoss
from lossdoctor.keras.optimizer import learning_rate
from lossdoctor.keras.state import untouched
from lossdoctor.keras.steps import clone, fresh_optimizer, train_steps
from lossdoctor.keras.verify import EXCLUDE, fix_code, fix_code_with_optimizer, new_lr
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import StepStats, Task, Trace

INITIALIZER = {"relu": "he_normal", "tanh": "glorot_normal", "sigmoid": "glorot_normal",
               "linear": "lecun_normal"}

_REINIT = (
    "def fixed(layer):\n"
    "    config = layer.get_config()\n"
    "    if \"kernel_initializer\" in config:  # Dense, Conv*\n"
    "        config[\"kernel_initializer\"] = \"{init}\"  # {why}\n"
    "        config[\"bias_initializer\"] = \"zeros\"\n"
    "    if layer.name == \"{head}\":  # the output layer starts small: first loss ~ chance\n"
    "        config[\"kernel_initializer\"] = keras.initializers.VarianceScaling(scale=1e-4)\n"
    "    return layer.__class__.from_config(config)\n\n"
    "model = keras.models.clone_model(model, clone_function=fixed)\n"
    "# or, where the layers are built: keras.layers.Dense(750, activation=\"relu\",\n"
    "#     kernel_initializer=\"{init}\", bias_initializer=\"zeros\")"
)
_WHY = {"he_normal": "std = sqrt(2 / fan_in)", "glorot_normal": "std = sqrt(2 / (fan_in + fan_out))",
        "lecun_normal": "std = sqrt(1 / fan_in)"}


def head_name(trace: Trace) -> str:
    """The Keras layer that produced the model output (its record name up to the ``/``)."""
    out = next((layer for layer in reversed(trace.layers)
                if layer.phase == "model" and layer.kind in ("linear", "conv")), None)
    return out.name.split("/", 1)[0] if out is not None else ""


def reinit_fix(family: str, head: str) -> Fix:
    """Keras initialisers that keep each layer's scale, zero biases, a small output layer."""
    init = INITIALIZER[family]
    return Fix(f"kernel_initializer=\"{init}\" and zero biases in every Dense/Conv layer, a "
               "small output layer",
               _REINIT.format(init=init, why=_WHY[init], head=head))


def keras_fixes(f: Finding, trace: Trace, backend: str,
                loss_name: str = "CategoricalCrossentropy",
                optimizer: Any = None) -> tuple[Fix, ...]:
    """The Keras form of a finding's fix (the title says the same thing); where it is
    verified on a clone (:mod:`lossdoctor.keras.verify`), the code the clone runs."""
    code = f.code
    if code in ("init-loss-high", "signal-exploding", "signal-vanishing", "grad-exploding",
                "grad-vanishing", "dead-relu"):
        return (reinit_fix(activation_family(trace), head_name(trace)),)
    if code == "double-softmax":
        act = f.evidence.get("output_op", "softmax")
        return (Fix(f"keep the {act} head and let the loss read probabilities "
                    f"(from_logits=False), or drop the {act} and keep from_logits=True",
                    fix_code(code, f, trace, loss_name) or
                    "loss = keras.losses.CategoricalCrossentropy(from_logits=False)\n"
                    "# or: keras.layers.Dense(K)  # logits, with from_logits=True"),)
    if code == "mse-on-saturating-output":
        text = fix_code(code, f, trace, loss_name)
        if text is not None:
            return (Fix(f"cross-entropy on the {f.evidence.get('output_op')} head", text),)
        return (Fix("cross-entropy on the softmax/sigmoid head",
                    "model.compile(loss=keras.losses.CategoricalCrossentropy(), optimizer=opt)"
                    "  # one-hot targets\n# sigmoid head: keras.losses.BinaryCrossentropy()"),)
    if code == "adam-coupled-l2":
        return (Fix("decoupled weight decay: AdamW, no kernel_regularizer",
                    fix_code(code, f, trace, loss_name) or ""),)
    if code == "weight-decay-on-bias":
        text = fix_code(code, f, trace, loss_name)
        return (Fix("regularise kernels only",
                    text if text is not None else
                    "keras.layers.Dense(units, kernel_regularizer=keras.regularizers.L2(l2))"
                    "  # no bias_regularizer\n" + EXCLUDE + "  # for weight_decay="),)
    if code == "regularization-dominates":
        return (Fix("lower the regulariser's coefficient",
                    "kernel_regularizer=keras.regularizers.L2(1e-4)  # typical: 1e-5 .. 1e-3"),)
    if code == "sum-reduction":
        text = fix_code_with_optimizer(code, f, trace, loss_name, optimizer)
        if text is not None:
            return (Fix("average over the batch", text),)
    if code == "sum-reduction":
        return (Fix("average over the batch",
                    "loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
                    "  # reduction=\"sum_over_batch_size\""),)
    if code in ("lr-too-high", "lr-too-low"):  # the verified factor replaces it (lr_fix)
        lr = trace.optimizer.groups[0]["lr"] if trace.optimizer is not None else 0.01
        new = lr / 10 if code == "lr-too-high" else lr * 10
        return (Fix(f"learning rate {g(new)}",
                    f"optimizer = type(optimizer).from_config({{**optimizer.get_config(), "
                    f"\"learning_rate\": {g(new)}}})"),)
    if code == "labels-out-of-range":
        return (Fix("class indices in [0, K)",
                    "y = y - y.min()  # e.g. labels 1..K -> 0..K-1\n"
                    "# or a wider head: keras.layers.Dense(int(y.max()) + 1)"),)
    if code == "input-not-normalized":
        return (Fix("standardise the inputs",
                    "norm = keras.layers.Normalization()\nnorm.adapt(x_train)\n"
                    "inputs = norm(inputs)  # first layer of the model"),)
    if code == "saturation":
        return (Fix("start the units in their linear range",
                    "keras.layers.Dense(units, activation=\"sigmoid\", "
                    "kernel_initializer=\"glorot_normal\", bias_initializer=\"zeros\")"),)
    return tuple(Fix(fx.title, "# in Keras terms:\n# " + fx.title) for fx in f.fixes)


def backend_note(f: Finding, backend: str, notes: tuple[str, ...]) -> Finding:
    """What this Keras backend did with ``from_logits=True`` on a softmax/sigmoid output.

    TensorFlow's backend reads the logits the activation left on the tensor (``_keras_logits``)
    and warns; the warning, caught by the probe, is the evidence that it did. Then the loss
    trained on is right and the finding is a portability warning; the torch backend neither
    recovers nor warns, and the second softmax is what trains.
    """
    if f.code != "double-softmax" or f.evidence.get("output_op") not in ("softmax", "sigmoid"):
        return f
    act = f.evidence["output_op"]
    recovered = any("received `from_logits=True`" in n for n in notes)
    if recovered:
        note = (f" The {backend} backend recovered the logits from the {act} and warned, so the "
                "loss is right on this backend; the same model on the torch (or JAX) backend "
                f"applies a second {act}.")
        return replace(f, severity="warning", summary=f.summary + note,
                       evidence={**f.evidence, "backend": backend,
                                 "backend_recovers_logits": True})
    note = (f" The {backend} backend neither recovers the logits nor warns: the loss is computed "
            f"on {act}(probabilities). (TensorFlow's backend would recover them and warn.)")
    return replace(f, summary=f.summary + note,
                   evidence={**f.evidence, "backend": backend, "backend_recovers_logits": False})


def _reinit_clone(model: Any, family: str, head: str) -> Any:
    """Exactly what :func:`reinit_fix` prints, run on a clone."""
    import keras

    init = INITIALIZER[family]

    def fixed(layer: Any) -> Any:
        config = layer.get_config()
        if "kernel_initializer" in config:
            config["kernel_initializer"] = init
            if "bias_initializer" in config:
                config["bias_initializer"] = "zeros"
        if layer.name == head:
            config["kernel_initializer"] = keras.initializers.VarianceScaling(scale=1e-4)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=fixed)
    if not copy.built and getattr(model, "input_shape", None) is not None:
        copy.build(model.input_shape)
    return copy


def _gain(trace: Trace) -> float | None:
    run = extreme(signal_points(trace), grow=True)
    return run.per_layer if run is not None else None


def verify_reinit(model: Any, inputs: Any, targets: Any, loss: KerasLoss, optimizer: Any,
                  trace: Trace, findings: list[Finding], steps: int, task: Task | None,
                  thresholds: Thresholds | None) -> Verification:
    """Re-initialise a clone with the Keras initialisers of :func:`reinit_fix`, re-measure it and
    train both (unfixed: a weight-identical clone) for ``steps`` steps with fresh optimizers."""
    from lossdoctor.keras.probe import probe

    family = activation_family(trace)
    title = f"kernel_initializer={INITIALIZER[family]!r}, zero biases, small output layer"
    codes = {f.code for f in findings if f.severity in ("warning", "error")}
    with untouched(model, optimizer):
        try:
            fixed = _reinit_clone(model, family, head_name(trace))
            after = probe(fixed, inputs, targets, loss, optimizer, task)
            ratios: list[float] = []
            opt = fresh_optimizer(optimizer)
            fixed_losses = train_steps(fixed, opt, inputs, targets, loss, steps, ratios)
            # the steps are evidence for the learning-rate checks of the fixed set-up too
            after = replace(after, steps=StepStats(
                losses=tuple(fixed_losses), update_ratios=tuple(ratios),
                optimizer=type(opt).__name__, lr=learning_rate(opt), given=optimizer is not None))
            after_findings = run_checks(after, thresholds)
            base = clone(model)
            base_losses = train_steps(base, fresh_optimizer(optimizer), inputs, targets, loss,
                                      steps)
        except Exception as e:  # noqa: BLE001 - a model clone_model cannot rebuild
            return Verification("reinit", title, "failed", {}, {},
                                f"could not rebuild the model with new initialisers: {e}")
    left = {f.code for f in after_findings if f.severity in ("warning", "error")}
    gain_before, gain_after = _gain(trace), _gain(after)
    before_m: dict[str, Any] = {"loss_at_init": trace.loss.value, "signal_gain_per_layer": _gain(trace),
                "loss_after_steps": base_losses[-1], "codes": sorted(codes)}
    after_m: dict[str, Any] = {"loss_at_init": after.loss.value, "signal_gain_per_layer": _gain(after),
               "loss_after_steps": fixed_losses[-1], "codes": sorted(left),
               "all_codes": sorted({f.code for f in after_findings})}
    # the consequence decides, as for the PyTorch repair: the clone ends below the unfixed run
    better = not math.isfinite(base_losses[-1]) or fixed_losses[-1] < base_losses[-1]
    answered = {"init-loss-high", "signal-exploding", "signal-vanishing", "grad-exploding",
                "grad-vanishing", "dead-relu"} & codes  # what the re-initialisation answers
    ok = answered.isdisjoint(left) \
        and math.isfinite(fixed_losses[-1]) and better \
        and not any(f.severity == "error" for f in after_findings)
    parts = [f"loss at init {g(trace.loss.value)} -> {g(after.loss.value)}"]
    if gain_before is not None:
        parts.append(f"signal gain per layer {g(gain_before)} -> {g(gain_after or 1.0)}")
    parts.append(f"loss after {len(fixed_losses) - 1} steps {g(base_losses[-1])} -> "
                 f"{g(fixed_losses[-1])}")
    message = (f"keras.models.clone_model with the fixed initialisers, a fresh "
               f"{type(optimizer).__name__ if optimizer is not None else 'SGD'} from its config: "
               + ", ".join(parts))
    return Verification("reinit", title, "verified" if ok else "not verified", before_m, after_m,
                        message)


def lr_fix(f: Finding, trace: Trace, optimizer: Any) -> Fix | None:
    """The learning-rate fix the clone ran: scaled towards an update/weight ratio of 1e-3."""
    text = fix_code_with_optimizer(f.code, f, trace, "", optimizer)
    lr = new_lr(f, optimizer)
    return Fix(f"learning rate {g(lr)}", text) if text is not None and lr is not None else None
