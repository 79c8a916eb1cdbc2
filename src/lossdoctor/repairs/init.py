"""Re-initialisation: variance-preserving init for the activation, zero biases, a data-driven
rescale of every layer (LSUV, Mishkin & Matas 2016) and a small output layer.

The data-driven pass makes the fix right where the theory alone is not: dropout in train mode
(which multiplies the second moment by 1/keep), unnormalised inputs, unusual activations.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from lossdoctor.errors import LossDoctorError
from lossdoctor.probe.run import call_model

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
HIDDEN_RMS = 1.0
OUTPUT_RMS = 0.1  # logits of rms 0.1: the first cross-entropy is within 0.5% of ln K


def _init(m: nn.Module, family: str) -> None:
    w = m.weight
    assert isinstance(w, torch.Tensor)
    if family == "relu":
        nn.init.kaiming_normal_(w, nonlinearity="relu")
    elif family == "tanh":
        nn.init.xavier_normal_(w, gain=nn.init.calculate_gain("tanh"))
    elif family == "sigmoid":
        nn.init.xavier_normal_(w)
    else:
        nn.init.kaiming_normal_(w, nonlinearity="linear")
    if getattr(m, "bias", None) is not None:
        nn.init.zeros_(m.bias)  # type: ignore[arg-type]


def _rescale_pass(model: nn.Module, inputs: Any, last: nn.Module | None) -> list[nn.Module]:
    """One forward pass that rescales every linear/conv layer as it runs, in execution order.

    Each layer's weight is multiplied by ``target / rms(output)`` and its output by the same
    factor before the next layer sees it; with zero biases the output is linear in the weight,
    so this is what re-measuring after each rescale would give, in one pass instead of one per
    layer. A layer called again (shared weights) keeps the scale of its first call.

    Returns:
        The layers in the order they first ran.
    """
    order: list[nn.Module] = []
    handles = []

    def hook(mod: nn.Module, args: Any, out: Any) -> Any:
        if mod in order or not isinstance(out, torch.Tensor):
            return None
        order.append(mod)
        rms = float(out.detach().double().pow(2).mean().sqrt())
        if not rms or not math.isfinite(rms):
            return None
        factor = (OUTPUT_RMS if mod is last else HIDDEN_RMS) / rms
        mod.weight.mul_(factor)  # type: ignore[operator]
        return out * factor

    for m in model.modules():
        if isinstance(m, _LAYERS):
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            call_model(model, inputs)
    finally:
        for h in handles:
            h.remove()
    return order


def reinit(model: nn.Module, inputs: Any, family: str = "relu", passes: int = 2) -> nn.Module:
    """Re-initialise ``model`` in place so every layer starts at unit scale and the output small.

    Cost: ``passes`` forward passes (linear in depth).

    Args:
        model: the model to re-initialise (modified in place and returned).
        inputs: a representative input batch.
        family: ``relu``, ``tanh``, ``sigmoid`` or ``linear``: the hidden activation.
        passes: data-driven rescaling passes, at least 2 (the first finds the output layer).

    Returns:
        The same model.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for m in model.modules():
            if isinstance(m, _LAYERS):
                _init(m, family)
        last: nn.Module | None = None
        for _ in range(max(passes, 2)):
            order = _rescale_pass(model, inputs, last)
            last = order[-1] if order else None
    return model


def relu_activations(model: nn.Module, inputs: Any) -> nn.Module:
    """Replace the hidden ``nn.Sigmoid``/``nn.Tanh`` modules by ``nn.ReLU``, then :func:`reinit`.

    Sigmoid's slope is at most 1/4 and tanh's falls off away from 0, so a deep stack of them
    shrinks the gradient layer after layer whatever the init (Glorot & Bengio 2010); ReLU with He
    init keeps it (He et al. 2015). AUTOTRAINER (ICSE'21) repairs vanishing gradients the same way.
    The model's last module keeps its activation (an output squashing is the head's business).

    Raises:
        LossDoctorError: no hidden sigmoid/tanh module to replace (functional activations).
    """
    leaves = [m for m in model.modules() if not list(m.children())]
    last = leaves[-1] if leaves else None
    replaced = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, (nn.Sigmoid, nn.Tanh)) and child is not last:
                setattr(parent, name, nn.ReLU())
                replaced += 1
    if not replaced:
        raise LossDoctorError("no hidden nn.Sigmoid/nn.Tanh module to replace")
    return reinit(model, inputs, "relu")
