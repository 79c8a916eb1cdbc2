"""The op vocabulary the trace is written in: plain names, no framework.

The probe maps modules and functions onto these names; the checks read them. Keeping them here,
below both, lets a probe for another framework fill the same trace.
"""

from __future__ import annotations

# Sigmoid-like units and the |z| beyond which they count as saturated. DeepDiagnosis (ICSE'22)
# uses |z| >= 5 for the sigmoid, where s'(5)/s'(0) = 0.027. tanh(z) = 2 s(2z) - 1, so tanh has
# the same relative slope at |z| = 2.5; hardtanh and hardsigmoid are exactly flat beyond 1 and 3.
SATURATION_Z: dict[str, float] = {
    "sigmoid": 5.0,
    "tanh": 2.5,
    "hardtanh": 1.0,
    "hardsigmoid": 3.0,
}

# Units that output exactly 0 for all negative inputs and so can die.
DYING = frozenset({"relu", "relu6"})

# Elementwise nonlinearities (their input is a pre-activation).
ACTIVATIONS = frozenset(
    {
        "relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "celu", "gelu", "silu", "mish",
        "softplus", "tanh", "sigmoid", "hardtanh", "hardsigmoid", "hardswish", "softsign",
        "tanhshrink", "logsigmoid",
    }
)

# Ops that turn scores into (log-)probabilities.
PROB_HEADS = frozenset({"softmax", "log_softmax", "sigmoid"})

LOGS = frozenset({"log", "log2", "log10"})

# Library losses seen at the functional level, by function name.
LOSSES: dict[str, str] = {
    "cross_entropy": "cross_entropy",
    "nll_loss": "nll",
    "binary_cross_entropy": "bce",
    "binary_cross_entropy_with_logits": "bce_logits",
    "mse_loss": "mse",
    "l1_loss": "l1",
    "smooth_l1_loss": "smooth_l1",
    "huber_loss": "huber",
    "kl_div": "kl_div",
}

ADDS = frozenset({"add", "sub"})

# Ops whose output carries its input's signal unchanged in kind (for following a layer chain).
PASS_THROUGH = frozenset({
    "dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d", "dropout3d",
    "flatten", "reshape", "view", "contiguous", "squeeze", "unsqueeze", "permute", "transpose",
})
