"""Which mechanical repair answers which finding, and the line that applies it in a script."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lossdoctor.case import Case
from lossdoctor.checks.catalog import codes_for_repair
from lossdoctor.checks.depth import activation_family
from lossdoctor.checks.fixes import init_name
from lossdoctor.findings import Finding
from lossdoctor.repairs import data, head, init, optim
from lossdoctor.trace import Trace


@dataclass(frozen=True)
class Repair:
    """A fix that can be applied to a copy of the case.

    Attributes:
        name: short identifier.
        kind: how it is judged: ``init`` (same loss, must end lower after the steps), ``head``
            (the loss changes, must decrease faster), ``setup`` (must not learn slower) or
            ``config`` (an optimizer/reduction setting whose findings are read from the
            configuration: judged by re-diagnosis without training steps).
        title: one line, given the trace.
        apply: builds the repaired case from a copied case.
        script: the Python lines that apply it to ``case`` in a fix script.
        fallback: the repair tried when this one does not verify, if the trace allows it.
    """

    name: str
    kind: str
    title: Callable[[Trace], str]
    apply: Callable[[Case, Trace, Finding], Case]
    script: Callable[[Trace, Finding], str]
    fallback: str | None = None

    @property
    def codes(self) -> frozenset[str]:
        """The finding codes it answers (from the rule catalogue)."""
        return codes_for_repair(self.name)


def _reinit(case: Case, trace: Trace, finding: Finding) -> Case:
    init.reinit(case.model, case.inputs, activation_family(trace))
    return case


def _lr_factor(finding: Finding, high: bool) -> float:
    """Scale that brings the update/weight ratio to 1e-3 (x0.1 / x10 when it is unknown)."""
    ratio = finding.evidence.get("update_ratio_median")
    if not ratio:
        return 0.1 if high else 10.0
    factor = 1e-3 / float(ratio)
    return min(factor, 0.1) if high else max(factor, 10.0)


def _factor(finding: Finding) -> float:
    ratio = float(finding.evidence.get("ratio", 10.0))
    return max(ratio, 10.0)


REPAIRS: tuple[Repair, ...] = (
    Repair(
        "reinit", "init",
        lambda t: f"{init_name(activation_family(t))} + zero biases, layers rescaled to unit "
                  "scale on the batch, small output layer",
        _reinit,
        lambda t, f: f"reinit(case.model, case.inputs, family={activation_family(t)!r})",
        fallback="relu-activations",
    ),
    Repair(
        "relu-activations", "init",
        lambda t: "hidden sigmoid/tanh modules replaced by ReLU, He init + zero biases, layers "
                  "rescaled to unit scale on the batch, small output layer",
        lambda c, t, f: c.with_(model=init.relu_activations(c.model, c.inputs)),
        lambda t, f: "relu_activations(case.model, case.inputs)",
    ),
    Repair(
        "logits-loss", "head",
        lambda t: "return logits and use "
                  + ("cross-entropy" if t.output and t.output.producer == "softmax"
                     else "BCEWithLogitsLoss"),
        lambda c, t, f: head.logits_loss(c, t.output.producer if t.output else None),
        lambda t, f: f"case = logits_loss(case, {t.output.producer if t.output else None!r})",
    ),
    Repair(
        "drop-final-activation", "head",
        lambda t: "remove the final softmax/sigmoid module (the loss applies it)",
        lambda c, t, f: head.drop_final_activation(c),
        lambda t, f: "case = drop_final_activation(case)",
    ),
    Repair(
        "adamw", "config",
        lambda t: "AdamW with the same lr and weight decay",
        lambda c, t, f: optim.adamw(c),
        lambda t, f: "case = adamw(case)",
    ),
    Repair(
        "no-decay-groups", "config",
        lambda t: "parameter groups without weight decay for biases and norm parameters",
        lambda c, t, f: optim.no_decay_groups(c),
        lambda t, f: "case = no_decay_groups(case)",
    ),
    Repair(
        "mean-reduction", "config",
        lambda t: "mean reduction"
                  + ("" if t.optimizer and t.optimizer.adam_family else
                     f", learning rate x {t.batch_size} to keep the step"),
        lambda c, t, f: optim.mean_reduction(c, t.batch_size, bool(t.optimizer
                                                                    and t.optimizer.adam_family)),
        lambda t, f: (f"case = mean_reduction(case, batch={t.batch_size}, "
                      f"adam_family={bool(t.optimizer and t.optimizer.adam_family)})"),
    ),
    Repair(
        "standardize-inputs", "setup",
        lambda t: "standardise every input feature",
        lambda c, t, f: data.standardize_inputs(c),
        lambda t, f: "case = standardize_inputs(case)  # in training: use training-set statistics",
    ),
    Repair(
        "lower-lr", "setup",
        lambda t: "learning rate scaled towards an update/weight ratio of 1e-3",
        lambda c, t, f: optim.scale_lr(c, _lr_factor(f, True)),
        lambda t, f: f"case = scale_lr(case, {_lr_factor(f, True):.3g})",
    ),
    Repair(
        "raise-lr", "setup",
        lambda t: "learning rate scaled towards an update/weight ratio of 1e-3",
        lambda c, t, f: optim.scale_lr(c, _lr_factor(f, False)),
        lambda t, f: f"case = scale_lr(case, {_lr_factor(f, False):.3g})",
    ),
    Repair(
        "lower-weight-decay", "setup",
        lambda t: "weight decay lowered until the data gradient leads",
        lambda c, t, f: optim.lower_weight_decay(c, _factor(f)),
        lambda t, f: f"case = lower_weight_decay(case, factor={_factor(f):.3g})",
    ),
)


REINITS = ("reinit", "relu-activations")  # repairs after which the learning rate is judged again


def repair_named(name: str) -> Repair | None:
    """The repair of that name."""
    return next((r for r in REPAIRS if r.name == name), None)


def fallback_for(repair: Repair, trace: Trace) -> Repair | None:
    """The repair to try when ``repair`` did not verify: ReLU for a saturating activation."""
    if repair.fallback is None or activation_family(trace) not in ("sigmoid", "tanh"):
        return None
    return repair_named(repair.fallback)


def repair_for(finding: Finding) -> Repair | None:
    """The repair that answers a finding, if any can be applied mechanically."""
    if finding.code in ("regularization-dominates", "weight-decay-on-bias") \
            and finding.where != "optimizer":
        return None  # a penalty written inside loss_fn cannot be edited from outside
    if finding.code == "init-loss-high" and "dropout_off_loss" in finding.evidence:
        return None  # dropout's training-mode variance, not the init: nothing to re-initialise
    return next((r for r in REPAIRS if finding.code in r.codes), None)
