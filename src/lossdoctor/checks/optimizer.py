"""``adam-coupled-l2``: ``weight_decay`` on Adam adds L2 to the gradient, which Adam rescales.

Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (ICLR 2019): in Adam the L2 term
lambda*w is divided by sqrt(v), so weights with large gradients are barely decayed and the
regularisation is not the weight decay it looks like. AdamW applies the decay directly.
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


@check("adam-coupled-l2")
def adam_coupled_l2(trace: Trace, th: Thresholds) -> list[Finding]:
    """Adam-family optimizer with coupled weight decay."""
    opt = trace.optimizer
    if opt is None or not opt.adam_family or opt.decoupled:
        return []
    decays = [grp["weight_decay"] for grp in opt.groups if grp["weight_decay"] > 0]
    if not decays:
        return []
    return [Finding(
        code="adam-coupled-l2",
        severity="warning",
        where="optimizer",
        evidence={"optimizer": opt.name, "weight_decay": max(decays),
                  "groups_with_decay": len(decays)},
        summary=(f"{opt.name} with weight_decay={g(max(decays))} adds L2 to the gradient, where "
                 "Adam's per-parameter scaling undoes it."),
        explanation=(
            f"{opt.name} adds lambda*w to the gradient before dividing by sqrt(v), so the decay "
            "each weight gets is lambda*w/sqrt(v): weights with large gradients are hardly "
            "regularised. AdamW subtracts lr*lambda*w separately, which is the weight decay the "
            "setting promises (Loshchilov & Hutter, ICLR 2019)."
        ),
        fixes=(Fix("use AdamW (decoupled weight decay)",
                   f"optimizer = torch.optim.AdamW(model.parameters(), lr=lr, "
                   f"weight_decay={g(max(decays))})"),),
    )]
