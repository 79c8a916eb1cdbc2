"""What a module or a functional op is, as far as the checks care."""

from __future__ import annotations

from torch import nn

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

_MODULE_OPS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.LeakyReLU: "leaky_relu", nn.PReLU: "prelu",
    nn.ELU: "elu", nn.SELU: "selu", nn.CELU: "celu", nn.GELU: "gelu", nn.SiLU: "silu",
    nn.Mish: "mish", nn.Softplus: "softplus", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
    nn.Hardtanh: "hardtanh", nn.Hardsigmoid: "hardsigmoid", nn.Hardswish: "hardswish",
    nn.Softsign: "softsign", nn.Tanhshrink: "tanhshrink", nn.LogSigmoid: "logsigmoid",
    nn.Softmax: "softmax", nn.LogSoftmax: "log_softmax", nn.Softmax2d: "softmax",
}

_NORMS = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
_CONVS = (nn.modules.conv._ConvNd,)
_LINEARS = (nn.Linear, nn.Bilinear)


def op_name(func: object) -> str:
    """Normalised name of a torch function: ``Tensor.__radd__`` -> ``add``, ``relu_`` -> ``relu``."""
    name = getattr(func, "__name__", "") or ""
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name[:1] in ("r", "i") and name[1:] in ("add", "sub", "mul", "truediv", "pow"):
            name = name[1:]
    return name.rstrip("_")


def module_kind(m: nn.Module) -> tuple[str, str] | None:
    """(kind, op) for modules the probe records, None for everything else."""
    for cls, op in _MODULE_OPS.items():
        if type(m) is cls or (isinstance(m, cls) and not list(m.children())):
            return ("activation", op)
    if isinstance(m, _LINEARS):
        return ("linear", type(m).__name__)
    if isinstance(m, _CONVS):
        return ("conv", type(m).__name__)
    if isinstance(m, _NORMS):
        return ("norm", type(m).__name__)
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
        return ("embedding", type(m).__name__)
    return None


def is_norm(m: nn.Module) -> bool:
    """Whether a module is a normalisation layer (its parameters are scale and shift)."""
    return isinstance(m, _NORMS)


def fan_in(m: nn.Module) -> int | None:
    """Inputs per output unit of a linear or conv layer."""
    w = getattr(m, "weight", None)
    if w is None or w.dim() < 2:
        return None
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        return int(w.shape[0] * w[0, 0].numel() // max(getattr(m, "groups", 1), 1))
    if isinstance(m, nn.Bilinear):
        return int(w.shape[1] * w.shape[2])
    return int(w[0].numel())
