"""``loss-maximized``: training climbs the loss instead of descending it.

Every library loss (cross-entropy, NLL of log-probabilities, BCE, MSE, L1, Huber) is a
non-negative quantity to minimise. Returning its negation from ``loss_fn``, or stepping an
optimizer built with ``maximize=True``, makes gradient descent push it up: the cross-entropy
grows without bound as the logits of wrong classes grow (TheDeepChecker's flipped-sign bug).
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

_MINIMISED = ("cross_entropy", "nll", "bce", "bce_logits", "mse", "l1", "huber", "smooth_l1")


@check("loss-maximized")
def loss_maximized(trace: Trace, th: Thresholds) -> list[Finding]:
    """The returned loss is minus a library loss, or the optimizer maximises."""
    loss, opt = trace.loss, trace.optimizer
    if loss.error is not None or loss.kind not in _MINIMISED:
        return []
    lib = loss.library_value
    negated = (lib is not None and lib > 0 and loss.data_value is None
               and abs(loss.value + lib) <= 1e-6 * abs(lib) + 1e-12)
    maximize = opt is not None and opt.maximize
    if negated == maximize:  # neither, or both (two sign flips cancel)
        return []
    evidence = {"loss": loss.value, "library_loss": lib, "kind": loss.kind,
                "optimizer_maximize": maximize}
    if negated:
        summary = (f"loss_fn returns {g(loss.value)} = -{loss.kind} ({g(lib)}): minimising it "
                   f"maximises the {loss.kind}.")
        fix = Fix("return the library loss itself", "loss = F.cross_entropy(logits, y)  # no minus")
    else:
        summary = (f"the optimizer ({opt.name if opt else '?'}) was built with maximize=True: "
                   f"each step climbs the {loss.kind} ({g(loss.value)}).")
        fix = Fix("minimise", f"torch.optim.{opt.name if opt else 'SGD'}(model.parameters(), "
                  "lr=..., maximize=False)")
    return [Finding(
        code="loss-maximized", severity="error", where="loss", evidence=evidence,
        summary=summary,
        explanation=(f"The {loss.kind} is a non-negative error to drive down; gradient steps on "
                     "its negation drive it up instead, and it grows without bound (for "
                     "cross-entropy, by making the wrong logits ever larger). The loss curve "
                     "falls below zero and looks like progress."),
        fixes=(fix,),
    )]
