"""``input-not-normalized``: input features far from unit scale.

He, Xavier and PyTorch's default init all assume inputs of unit second moment: the first layer's
pre-activations have rms = rms(x) * std(w) * sqrt(fan_in). A normalisation layer before or right
after the first linear/conv layer (or after its ReLU, which is positively homogeneous) removes that
scale, so the check stands down there. The line is
one order of magnitude either way (rms(x) outside [0.1, 10]); inputs scaled to [0, 1] (rms about
0.5) are fine.
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.fmt import g
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


@check("input-not-normalized")
def input_not_normalized(trace: Trace, th: Thresholds) -> list[Finding]:
    """Float inputs with rms outside [0.1, 10], unless a normalisation layer comes first."""
    x = trace.inputs
    if x is None or x.stats.nonfinite or x.stats.rms == 0:
        return []
    model = [layer for layer in trace.layers if layer.phase == "model"][:3]
    kinds = [layer.kind for layer in model]
    if kinds[:1] == ["norm"] or kinds[:2] in (["linear", "norm"], ["conv", "norm"]) or (
            kinds[:1] in (["linear"], ["conv"]) and kinds[1:3] == ["activation", "norm"]
            and model[1].op in ("relu", "relu6", "leaky_relu", "prelu")):
        return []  # a norm layer first, or after the first layer (and its ReLU) rescales it
    rms = x.stats.rms
    low, high = th.input_rms_low, th.input_rms_high
    if low <= rms <= high:
        return []
    return [Finding(
        code="input-not-normalized",
        severity="warning",
        where="inputs",
        evidence={"input_rms": rms, "input_mean": x.stats.mean, "input_std": x.stats.std,
                  "feature_std_min": x.feature_std_min, "feature_std_max": x.feature_std_max,
                  "lines": {"input_rms_low": low, "input_rms_high": high}},
        summary=(f"the inputs have rms {g(rms)} (mean {g(x.stats.mean)}, std {g(x.stats.std)}), "
                 f"outside [{g(low)}, {g(high)}]."),
        explanation=(
            "The first layer's pre-activations scale with the input: rms(z) = rms(x) * std(w) * "
            f"sqrt(fan_in). Inputs at rms {g(rms)} put the first layer {g(rms)}x away from the "
            "scale its init was designed for, which saturates or kills units and skews the "
            "gradient of the first layer. Standardise each feature with training-set statistics."
        ),
        fixes=(Fix("standardise with statistics of the training set",
                   "mean = X_train.mean(0, keepdim=True)\nstd = X_train.std(0, keepdim=True)"
                   ".clamp_min(1e-8)\nx = (x - mean) / std"),),
    )]
