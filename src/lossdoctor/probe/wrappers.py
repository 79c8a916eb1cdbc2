"""The user's module inside the wrappers that distributed training and compilation put around it.

``DistributedDataParallel`` keeps the model in ``.module`` (its parameter names gain a ``module.``
prefix), FSDP1 and activation checkpointing insert ``_fsdp_wrapped_module`` /
``_checkpoint_wrapped_module`` levels, ``torch.compile`` keeps the original in ``_orig_mod``.
FSDP2 (``fully_shard``) changes the module's class in place and keeps the names. Findings name
layers and parameters as the user wrote them, so the wrappers are looked through.
"""

from __future__ import annotations

from torch import nn

_WRAPPER_ATTRS = ("module", "_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod")
_WRAPPER_SEGMENTS = frozenset({"_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod"})


def is_wrapper(model: nn.Module) -> bool:
    """Whether ``model`` is a DDP / DataParallel / FSDP1 / compile wrapper around one module."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    if isinstance(model, (DistributedDataParallel, DataParallel)):
        return True
    name = type(model).__name__
    return name in ("FullyShardedDataParallel", "OptimizedModule", "CheckpointWrapper")


def unwrap(model: nn.Module) -> nn.Module:
    """The innermost user module (``model`` itself when it is not wrapped)."""
    while is_wrapper(model):
        inner = next((getattr(model, a) for a in _WRAPPER_ATTRS
                      if isinstance(getattr(model, a, None), nn.Module)), None)
        if inner is None:
            break
        model = inner
    return model


def clean_name(name: str) -> str:
    """A module or parameter path without the wrapper levels (``a._fsdp_wrapped_module.b``
    -> ``a.b``)."""
    return ".".join(s for s in name.split(".") if s not in _WRAPPER_SEGMENTS)


def wrapper_kind(model: nn.Module) -> str:
    """``ddp``, ``fsdp`` (FSDP1 or FSDP2), or ``none``: how a model is distributed."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        return "ddp"
    sharded: tuple[type, ...] = ()
    try:
        from torch.distributed.fsdp import FSDPModule
        sharded = (FSDPModule,)
    except ImportError:  # torch < 2.6 or no distributed build
        pass
    if type(model).__name__ == "FullyShardedDataParallel" or any(
            isinstance(m, sharded) for m in model.modules()):
        return "fsdp"
    return "none"
