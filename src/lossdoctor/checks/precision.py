"""``half-precision-overflow``: float16/bfloat16 training that turns non-finite where float32 does not.

float16 holds magnitudes up to 65504 and down to 6e-8 (subnormal): a squared error, a sum over a
batch or an exp overflows to Inf, and Adam's ``eps = 1e-8`` and small squared gradients underflow
to 0, so ``m / (sqrt(v) + eps)`` becomes 0/0 or x/0 at any learning rate. The probe replays the
same batch and optimizer steps on a float32 copy; when that stays finite, the cause is the
precision, not the learning rate (Micikevicius et al., "Mixed Precision Training", ICLR 2018).
"""

from __future__ import annotations

import math

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace

FP16_MAX = 65504.0
FP16_TINY = 5.96e-8


@check("half-precision-overflow")
def half_precision(trace: Trace, th: Thresholds) -> list[Finding]:
    """Non-finite in low precision, finite in the float32 replay."""
    pr = trace.precision
    if pr is None or not math.isfinite(pr.loss):
        return []
    replay = pr.fp32_steps.losses if pr.fp32_steps is not None else ()
    if not all(math.isfinite(v) for v in replay):
        return []
    steps = trace.steps.losses if trace.steps is not None else ()
    bad_steps = next((i for i, v in enumerate(steps) if not math.isfinite(v)), None)
    at_init = not math.isfinite(trace.loss.value) or trace.nonfinite_origin is not None
    if not at_init and bad_steps is None:
        return []
    when = ("at initialisation" if at_init else
            f"after {bad_steps} optimizer step(s) ({trace.steps.optimizer})"  # type: ignore[union-attr]
            )
    evidence = {"dtype": pr.dtype, "low_precision_params": pr.params,
                "loss": trace.loss.value, "fp32_loss": pr.loss,
                "nonfinite_at_step": None if at_init else bad_steps,
                "fp32_losses": list(replay), "float16_max": FP16_MAX,
                "float16_smallest": FP16_TINY}
    return [Finding(
        code="half-precision-overflow", severity="error", where="model", evidence=evidence,
        summary=(f"the {pr.dtype} model turns NaN/Inf {when}; the same batch"
                 + (f" and {len(replay) - 1} steps" if len(replay) > 1 else "")
                 + f" in float32 stay finite (loss {g(pr.loss)}"
                 + (f" -> {g(replay[-1])}" if len(replay) > 1 else "") + ")."),
        explanation=(
            "float16 represents magnitudes only between about 6e-8 and 65504. Values beyond "
            "the top overflow to Inf (a squared error, a sum over the batch, exp of a logit); "
            "values below the bottom flush to 0 (small gradients, their squares, Adam's eps), "
            "and Adam's m / (sqrt(v) + eps) then divides by 0. Lowering the learning rate "
            "cannot help. bfloat16 has float32's range; mixed precision keeps float32 master "
            "weights and scales the loss so gradients stay representable."
        ),
        fixes=(
            Fix("train in bfloat16 (float32's exponent range) instead of float16",
                "model = model.to(torch.bfloat16)\nx = x.to(torch.bfloat16)"),
            Fix("keep float32 weights: autocast the forward and scale the loss",
                "model = model.float()\nscaler = torch.amp.GradScaler()\n"
                "with torch.autocast(device_type='cuda', dtype=torch.float16):\n"
                "    loss = loss_fn(model(x), y)\nscaler.scale(loss).backward()\n"
                "scaler.step(optimizer)\nscaler.update()"),
        ),
    )]
