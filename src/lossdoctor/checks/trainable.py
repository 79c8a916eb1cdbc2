"""``nothing-trainable``: no parameter can change, so no loss curve can move.

Every parameter frozen (``requires_grad=False``), an optimizer that holds none of the model's
trainable parameters (built before a re-creation of the model, or over another model), or a
model without parameters: training runs, prints losses and learns nothing.
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

_FOREIGN = "<not in model>"


@check("nothing-trainable")
def nothing_trainable(trace: Trace, th: Thresholds) -> list[Finding]:
    """No trainable parameter, or none of them in the optimizer."""
    params = trace.params
    trainable = {p.name for p in params if p.requires_grad}
    opt = trace.optimizer
    held = [n for gr in opt.groups for n in gr["params"]] if opt is not None else []
    in_opt = trainable & set(held)
    evidence = {"parameters": len(params), "trainable": len(trainable),
                "in_optimizer": len(in_opt) if opt is not None else None,
                "optimizer_params_not_in_model": held.count(_FOREIGN),
                "frozen": sum(1 for p in params if not p.requires_grad)}
    if not params and trace.loss.requires_grad:
        return []  # a trace without parameter records (the monitor's, a synthetic one)
    if not params:
        why = "the model has no parameters"
        fix = Fix("give the model parameters (nn.Parameter / layers registered as attributes)",
                  "self.scale = nn.Parameter(torch.ones(1))  # not a plain tensor attribute")
    elif not trainable:
        why = f"all {len(params)} parameter tensors are frozen (requires_grad=False)"
        fix = Fix("unfreeze the parameters that should learn",
                  "for p in model.parameters():\n    p.requires_grad_(True)")
    elif opt is not None and not in_opt:
        foreign = held.count(_FOREIGN)
        why = (f"the optimizer ({opt.name}) holds none of the model's {len(trainable)} trainable "
               f"parameter tensors" + (f" ({foreign} that belong to another model)" if foreign
                                       else ""))
        fix = Fix("build the optimizer over this model's parameters, after the model",
                  "optimizer = torch.optim.SGD(model.parameters(), lr=0.01)")
    else:
        return []
    return [Finding(
        code="nothing-trainable", severity="error", where="model", evidence=evidence,
        summary=f"nothing can learn: {why}.",
        explanation=(
            "An optimizer step changes only the parameters it holds that have requires_grad set "
            "and a gradient. With none, the loss curve stays flat whatever the learning rate, "
            "initialisation or loss; every other check below measures a model that cannot move."
        ),
        fixes=(fix,),
    )]
