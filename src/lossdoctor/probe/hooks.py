"""Scoped forward hooks on the modules the probe records."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from lossdoctor.probe.kinds import fan_in, module_kind
from lossdoctor.probe.recorder import Recorder
from lossdoctor.probe.wrappers import clean_name


def first_tensor(x: Any) -> torch.Tensor | None:
    """The first tensor in a (nested) tuple/list/dict, or ``x`` itself."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, (tuple, list)):
        for item in x:
            t = first_tensor(item)
            if t is not None:
                return t
    logits = getattr(x, "logits", None)
    return logits if isinstance(logits, torch.Tensor) else None


def output_tensor(x: Any) -> torch.Tensor | None:
    """The prediction in a model's output: ``.logits`` when it has them (a Hugging Face
    output also carries its scalar ``loss``), else the first tensor with a batch dimension."""
    logits = getattr(x, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    return next((t for t in all_tensors(x) if t.dim() >= 1), first_tensor(x))


_PASS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity,
         nn.Flatten)


def _alias_hook(rec: Recorder) -> Any:
    def hook(mod: nn.Module, args: Any, output: Any) -> None:
        x, out = first_tensor(args), first_tensor(output)
        if rec.enabled and x is not None and out is not None:
            rec.alias(out, x)
    return hook


def all_tensors(x: Any) -> list[torch.Tensor]:
    """Every tensor in a (nested) tuple/list/dict, ``x`` itself, or an output's ``.logits``."""
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (tuple, list)):
        return [t for item in x for t in all_tensors(item)]
    if isinstance(x, dict):
        return [t for item in x.values() for t in all_tensors(item)]
    logits = getattr(x, "logits", None)
    return [logits] if isinstance(logits, torch.Tensor) else []


@contextmanager
def module_hooks(model: nn.Module, rec: Recorder) -> Iterator[None]:
    """Record linear, conv, norm, embedding and activation modules while the block runs.

    Hooks are registered on entry and always removed on exit. Activation inputs are measured
    in the pre-hook, because ``inplace=True`` activations overwrite them.
    """
    handles: list[Any] = []
    before: dict[int, tuple[Any, Any, Any]] = {}

    for name, m in model.named_modules():
        kind_op = module_kind(m)
        if kind_op is None:
            if isinstance(m, _PASS):
                handles.append(m.register_forward_hook(_alias_hook(rec)))
            continue
        kind, op = kind_op
        label = clean_name(name) or type(m).__name__

        def pre_hook(mod: nn.Module, args: Any, _kind: str = kind, _op: str = op) -> None:
            if not rec.enabled:
                return
            rec.depth += 1
            with torch._C.DisableTorchFunction():  # the probe's own work is not the model's
                x = first_tensor(args)
                pre = sat = None
                if _kind == "activation" and x is not None and x.is_floating_point():
                    pre, sat = rec.pre_stats(x, _op)
                before[id(mod)] = (rec.producer(x), pre, sat)

        def post_hook(
            mod: nn.Module, args: Any, output: Any,
            _kind: str = kind, _op: str = op, _label: str = label,
        ) -> None:
            if not rec.enabled or id(mod) not in before:
                return
            rec.depth -= 1
            source, pre, sat = before.pop(id(mod), (None, None, None))
            with torch._C.DisableTorchFunction():
                out = first_tensor(output)
                if out is None or not out.is_floating_point():
                    return
                weight = getattr(mod, "weight", None)
                has_weight = _kind in ("linear", "conv") and isinstance(weight, torch.Tensor)
                rec.record(
                    _label, _kind, _op,
                    None, out, pre=pre, saturated=sat,
                    weight=weight if has_weight else None,
                    fan_in=fan_in(mod) if has_weight else None,
                    source=source,
                )

        handles.append(m.register_forward_pre_hook(pre_hook))
        handles.append(m.register_forward_hook(post_hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
