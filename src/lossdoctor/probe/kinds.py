"""What a module or a functional op is, as far as the checks care."""

from __future__ import annotations

from torch import nn

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


def _is_hf_conv1d(m: nn.Module) -> bool:
    """Hugging Face's ``Conv1D`` (GPT-2 and kin): a linear layer storing its weight as (in, out)."""
    return type(m).__name__ == "Conv1D" and hasattr(m, "nf") and hasattr(m, "weight")


def module_kind(m: nn.Module) -> tuple[str, str] | None:
    """(kind, op) for modules the probe records, None for everything else."""
    for cls, op in _MODULE_OPS.items():
        if type(m) is cls or (isinstance(m, cls) and not list(m.children())):
            return ("activation", op)
    if isinstance(m, _LINEARS) or _is_hf_conv1d(m):
        return ("linear", type(m).__name__)
    if isinstance(m, _CONVS):
        return ("conv", type(m).__name__)
    if isinstance(m, _NORMS):
        return ("norm", type(m).__name__)
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
        return ("embedding", type(m).__name__)
    if isinstance(m, nn.RNNBase):
        return ("recurrent", type(m).__name__)
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
    if _is_hf_conv1d(m):
        return int(w.shape[0])
    if isinstance(m, nn.Bilinear):
        return int(w.shape[1] * w.shape[2])
    return int(w[0].numel())
