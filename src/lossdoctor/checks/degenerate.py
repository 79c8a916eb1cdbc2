"""``loss-degenerate``: a loss that cannot teach anything.

Exactly zero, not connected to the parameters, or with a gradient that is exactly zero
everywhere: the classic is a hand-written cross-entropy ``-mean(y * log(a))`` with y = 0.
"""

from __future__ import annotations

import statistics

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

_CE = Fix(
    "use the library loss, which includes both terms of the cross-entropy",
    "loss_fn = nn.BCEWithLogitsLoss()   # -[y log a + (1 - y) log(1 - a)], from logits\n"
    "# or, for classes: nn.CrossEntropyLoss()",
)


@check("loss-degenerate")
def loss_degenerate(trace: Trace, th: Thresholds) -> list[Finding]:
    """Loss detached, exactly zero, or with an all-zero gradient."""
    loss = trace.loss
    if loss.error is not None:
        return []
    trainable = [p for p in trace.params if p.requires_grad]
    if not trainable:
        return []
    with_grad = [p for p in trainable if p.grad_rms is not None]
    evidence = {"loss": loss.value, "requires_grad": loss.requires_grad,
                "final_op": loss.final_op, "output_grad_rms": loss.output_grad_rms,
                "params_with_grad": len(with_grad), "trainable_params": len(trainable)}
    if not loss.requires_grad:
        return [Finding(
            "loss-degenerate", "error", "loss", evidence,
            f"the loss ({g(loss.value)}) is not connected to any parameter: it was computed "
            "under no_grad, detached, or rebuilt from .item()/numpy.",
            "backward() needs an autograd graph from the parameters to the loss. A loss built "
            "from detached values has none, so training would either raise or update nothing.",
            (Fix("build the loss from the model output tensor",
                 "loss = loss_fn(model(x), y)   # no .item(), .detach(), numpy or torch.no_grad()"),),
        )]
    zero_grads = bool(with_grad) and all(p.grad_rms == 0 for p in with_grad)
    zero_out = loss.output_grad_rms == 0
    st = trace.steps
    # the weights moved (beyond float32 resolution, 1.2e-7) yet the loss did not change a bit
    frozen = (st is not None and len(st.losses) >= 6 and bool(st.update_ratios)
              and statistics.median(st.update_ratios) > 1e-6
              and all(v == st.losses[0] for v in st.losses))
    if frozen and not (zero_grads or zero_out):
        assert st is not None
        return [Finding(
            "loss-degenerate", "error", "loss",
            {**evidence, "probe_losses": list(st.losses), "steps": len(st.losses) - 1},
            f"the loss stayed exactly {g(st.losses[0])} over {len(st.losses) - 1} optimizer steps "
            f"at lr {g(st.lr)}: its gradient is rounding noise (output gradient rms "
            f"{g(loss.output_grad_rms)}).",
            "A loss that does not change by a single bit while the optimizer steps is constant "
            "in the parameters: typically a cross-entropy over one class (softmax of one logit is "
            "1, log 1 = 0) or a hand-written loss whose terms cancel, so what gradient there is "
            "comes from float rounding.",
            (_CE,),
        )]
    if not (zero_grads or zero_out or not with_grad):
        return []
    what = "exactly 0" if loss.value == 0 else f"{g(loss.value)}"
    return [Finding(
        "loss-degenerate", "error", "loss", evidence,
        f"the loss is {what} and its gradient is exactly 0 for "
        f"{'every parameter' if zero_grads or not with_grad else 'the model output'}: nothing "
        "can learn.",
        "A loss whose gradient is identically zero gives the optimizer nothing to follow. With "
        "a hand-written cross-entropy -mean(y * log(a)) and targets y = 0, every term is "
        "0 * log(a) = 0 whatever the output; the full binary cross-entropy also has the "
        "(1 - y) log(1 - a) term.",
        (_CE,),
    )]
