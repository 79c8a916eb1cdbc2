"""``weight-decay-on-bias`` and ``regularization-dominates``: how the L2 term is put together.

Decay (or a hand-written L2 penalty) on biases and normalisation scales pulls them towards 0,
which no prior asks for: a bias sets an offset, a LayerNorm/BatchNorm scale sets a layer's
output scale (Goyal et al. 2017 and "Bag of Tricks", He et al. 2019, exclude them). It is
info, not a warning: the effect is small (Bag of Tricks: +0.3% top-1) and decaying everything is
what ``Optimizer(model.parameters(), weight_decay=...)`` does by default. A
regulariser dominates when its value or its gradient is more than 10x the data term's: by value
the reported loss is then mostly penalty, by gradient the step points within 6 degrees of pure
weight shrinkage (cos = 1/sqrt(1 + 10^2) = 0.1 towards the data gradient).
"""

from __future__ import annotations

import math

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

_GROUPS = Fix(
    "decay only weight matrices: put biases and norm parameters in a group without decay",
    "decay, no_decay = [], []\n"
    "for name, p in model.named_parameters():\n"
    "    (no_decay if p.ndim < 2 else decay).append(p)\n"
    "optimizer = torch.optim.AdamW([\n"
    "    {\"params\": decay, \"weight_decay\": wd},\n"
    "    {\"params\": no_decay, \"weight_decay\": 0.0},\n"
    "], lr=lr)",
)
_PENALTY = Fix(
    "penalise weight matrices only",
    "l2 = sum(p.pow(2).sum() for n, p in model.named_parameters() if p.ndim >= 2)\n"
    "loss = data_loss + beta * l2 / 2",
)


@check("weight-decay-on-bias")
def weight_decay_on_bias(trace: Trace, th: Thresholds) -> list[Finding]:
    """Optimizer weight decay or a loss penalty applied to biases or norm parameters."""
    found = []
    decayed = [p for p in trace.params if p.role in ("bias", "norm") and p.weight_decay > 0
               and p.requires_grad]
    if decayed:
        wd = max(p.weight_decay for p in decayed)
        found.append(Finding(
            code="weight-decay-on-bias",
            severity="info",
            where="optimizer",
            evidence={"weight_decay": wd, "params": [p.name for p in decayed][:20],
                      "count": len(decayed),
                      "norm_params": sum(p.role == "norm" for p in decayed)},
            summary=(f"weight_decay={g(wd)} also shrinks {len(decayed)} bias/normalisation "
                     f"parameter(s) ({', '.join(p.name for p in decayed[:3])}"
                     f"{', ...' if len(decayed) > 3 else ''})."),
            explanation=(
                "Weight decay is a Gaussian prior pulling weights towards 0, which limits the "
                "capacity of weight matrices. Biases and normalisation scales carry few "
                "parameters and set offsets and output scales: decaying them adds no useful "
                "regularisation and can shrink a layer's output (a BatchNorm scale decayed "
                "towards 0 switches its channel off)."
            ),
            fixes=(_GROUPS,),
        ))
    if trace.loss.penalty_value is not None:
        in_pen = [p for p in trace.params if p.in_loss_penalty and p.role in ("bias", "norm")]
        if in_pen:
            found.append(Finding(
                code="weight-decay-on-bias",
                severity="info",
                where="loss",
                evidence={"params": [p.name for p in in_pen][:20], "count": len(in_pen),
                          "penalty": trace.loss.penalty_value},
                summary=(f"the penalty added inside loss_fn ({g(trace.loss.penalty_value)}) also "
                         f"covers {len(in_pen)} bias/normalisation parameter(s)."),
                explanation=(
                    "An L2 penalty summed over model.parameters() includes the biases and norm "
                    "parameters. The usual per-layer L2 regularises weight matrices only; on "
                    "biases it only pulls offsets towards 0."
                ),
                fixes=(_PENALTY,),
            ))
    return found


@check("regularization-dominates")
def regularization_dominates(trace: Trace, th: Thresholds) -> list[Finding]:
    line = th.regularization_ratio
    """A penalty (in loss_fn or as coupled weight decay) whose gradient is >10x the data's."""
    loss = trace.loss
    found = []
    if loss.penalty_value is not None and loss.data_value is not None:
        pg, dg = loss.penalty_grad_norm, loss.data_grad_norm
        grad_ratio = pg / dg if pg is not None and dg else 0.0
        value_ratio = abs(loss.penalty_value / loss.data_value) if loss.data_value else 0.0
        ratio, basis = max((grad_ratio, "gradient norm"), (value_ratio, "value"))
        if ratio > line:
            found.append(Finding(
                code="regularization-dominates",
                severity="warning",
                where="loss",
                evidence={"data_loss": loss.data_value, "penalty": loss.penalty_value,
                          "data_grad_norm": dg, "penalty_grad_norm": pg,
                          "value_ratio": value_ratio, "grad_ratio": grad_ratio, "ratio": ratio,
                          "basis": basis, "lines": {"regularization_ratio": line}},
                summary=(f"the penalty inside loss_fn outweighs the data loss {g(ratio)}x by "
                         f"{basis} (penalty {g(loss.penalty_value)}, data {g(loss.data_value)}; "
                         f"line {g(line)}x)."),
                explanation=(
                    "The step follows grad(data) + grad(penalty) and the optimum balances the "
                    f"two terms. Here the penalty is {g(value_ratio)}x the data loss and its "
                    f"gradient {g(grad_ratio)}x the data gradient, so training mostly shrinks "
                    "the weights and fits the data slowly or not at all. Lower the coefficient, "
                    "typically to 1e-5..1e-3 for an L2 sum over weights, and remember "
                    "l2_loss = sum(w^2)/2."
                ),
                fixes=(Fix("lower the penalty coefficient",
                           f"beta = beta / {max(1, round(ratio / line * 10))}"),),
            ))
    opt = trace.optimizer
    if opt is not None and not opt.decoupled:
        decayed = [p for p in trace.params if p.weight_decay > 0 and p.grad_rms is not None]
        if decayed:
            wd_norm = math.sqrt(sum((p.weight_decay * p.rms) ** 2 * math.prod(p.shape)
                                    for p in decayed))
            g_norm = math.sqrt(sum((p.grad_rms or 0.0) ** 2 * math.prod(p.shape)
                                   for p in decayed))
            if g_norm > 0 and wd_norm / g_norm > line:
                ratio = wd_norm / g_norm
                wd = max(p.weight_decay for p in decayed)
                found.append(Finding(
                    code="regularization-dominates",
                    severity="warning",
                    where="optimizer",
                    evidence={"weight_decay": wd, "decay_grad_norm": wd_norm,
                              "data_grad_norm": g_norm, "ratio": ratio,
                              "lines": {"regularization_ratio": line}},
                    summary=(f"weight_decay={g(wd)} contributes a gradient {g(ratio)}x the data "
                             f"gradient ({g(wd_norm)} vs {g(g_norm)}; line {g(line)}x)."),
                    explanation=(
                        f"{opt.name}'s weight_decay adds lambda*w to every gradient. Here "
                        f"|lambda*w| = {g(wd_norm)} against |grad| = {g(g_norm)}, so each step "
                        "mostly shrinks the weights. Typical values are 1e-4..5e-4 for SGD."
                    ),
                    fixes=(Fix("lower weight_decay",
                               f"for group in optimizer.param_groups:\n"
                               f"    group[\"weight_decay\"] = {g(wd / (ratio / line * 10))}"),),
                ))
    return found
