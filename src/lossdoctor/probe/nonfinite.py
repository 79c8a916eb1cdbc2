"""Find the first op that produced a NaN or Inf.

Run only when the probe has already seen a non-finite value: it replays the forward pass and the
loss with the same RNG state, checks the output of every torch function whose inputs were all
finite, and names the innermost module it ran in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from lossdoctor.probe.hooks import all_tensors
from lossdoctor.probe.kinds import op_name
from lossdoctor.trace import NonfiniteOrigin


def _finite(ts: list[torch.Tensor]) -> bool:
    return all(
        bool(torch.isfinite(t).all()) for t in ts if t.is_floating_point() or t.is_complex()
    )


def _describe(ts: list[torch.Tensor]) -> str:
    parts = []
    for t in ts[:3]:
        if t.is_floating_point() and t.numel():
            f = t.detach().double()
            parts.append(f"[{f.min().item():.3g}, {f.max().item():.3g}] shape {tuple(t.shape)}")
    return "inputs in " + "; ".join(parts) if parts else "no float inputs"


class _Finder(TorchFunctionMode):
    def __init__(self, stack: list[str], phase: list[str],
                 bad_params: dict[int, str] | None = None) -> None:
        super().__init__()
        self.stack = stack
        self.phase = phase
        self.bad_params = bad_params or {}
        self.origin: NonfiniteOrigin | None = None

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if self.origin is not None:
            return func(*args, **kwargs)
        ins = all_tensors(args) + all_tensors(kwargs)
        bad = [self.bad_params[id(t)] for t in ins if id(t) in self.bad_params]
        if bad:  # a parameter that already holds NaN/Inf: the first op to read it is the origin
            name = op_name(func) or str(func)
            self.origin = NonfiniteOrigin(
                where=bad[0], op="parameter", phase=self.phase[0],
                detail=f"the parameter already holds NaN/Inf; first read by {name}"
                + (f" in {self.stack[-1]}" if self.stack else ""))
            return func(*args, **kwargs)
        inputs_finite = _finite(ins)
        before = _describe(ins) if inputs_finite else ""
        result = func(*args, **kwargs)
        outs = [t for t in all_tensors(result) if t.is_floating_point() or t.is_complex()]
        if inputs_finite and outs and not _finite(outs):
            name = op_name(func) or str(func)
            where = f"{self.stack[-1]} / {name}" if self.stack else name
            self.origin = NonfiniteOrigin(where=where, op=name, phase=self.phase[0], detail=before)
        return result


def locate(
    model: nn.Module,
    call_model: Callable[[], Any],
    call_loss: Callable[[Any], Any],
    inputs: Any,
    targets: Any,
) -> NonfiniteOrigin | None:
    """Replay the forward pass and the loss; return the first op that made a NaN/Inf.

    The caller restores RNG and module state around this call.
    """
    ins = all_tensors(inputs)
    if not _finite(ins):
        return NonfiniteOrigin("inputs", "inputs", "inputs", "the input batch holds NaN/Inf")
    if not _finite(all_tensors(targets)):
        return NonfiniteOrigin("targets", "targets", "inputs", "the targets hold NaN/Inf")
    bad_params = {id(p): name for name, p in (*model.named_parameters(), *model.named_buffers())
                  if (p.is_floating_point() or p.is_complex()) and not _finite([p])}
    stack: list[str] = []
    phase = ["model"]
    handles = []
    for name, m in model.named_modules():
        label = name or type(m).__name__

        def pre(mod: nn.Module, args: Any, _label: str = label) -> None:
            stack.append(_label)

        def post(mod: nn.Module, args: Any, out: Any) -> None:
            if stack:
                stack.pop()

        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    finder = _Finder(stack, phase, bad_params)
    try:
        with torch.no_grad(), finder:
            out = call_model()
            stack.clear()
            phase[0] = "loss"
            stack.append("loss_fn")
            call_loss(out)
    except Exception:  # noqa: BLE001 - the first pass already reported how it failed
        pass
    finally:
        for h in handles:
            h.remove()
    if finder.origin is None and bad_params:
        name = next(iter(bad_params.values()))
        return NonfiniteOrigin(name, "parameter", "model", "the parameter holds NaN/Inf")
    return finder.origin
