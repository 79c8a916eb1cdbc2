"""Op-level interception: functional activations, residual additions and hand-written losses.

A :class:`~torch.overrides.TorchFunctionMode` sees every torch function call while the model
and ``loss_fn`` run. It records functional activations (``F.relu``, ``torch.tanh``...), logs,
residual additions and library loss calls, and inside ``loss_fn`` it tags every tensor by what
it was computed from (the model's output or the parameters alone) so a penalty added to the data
loss can be split off and measured.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from lossdoctor.probe.hooks import all_tensors
from lossdoctor.probe.kinds import op_name
from lossdoctor.probe.recorder import Recorder
from lossdoctor.vocab import ACTIVATIONS, ADDS, LOGS, LOSSES, PASS_THROUGH, PROB_HEADS


@dataclass
class LossCall:
    """The first library loss function called inside ``loss_fn``."""

    kind: str
    reduction: str
    prediction: torch.Tensor
    target: Any
    producer: str | None
    label_smoothing: float = 0.0
    ignore_index: int | None = None
    result: torch.Tensor | None = None


@dataclass
class Split:
    """``data + penalty``: the data term depends on the output, the penalty on parameters only."""

    data: torch.Tensor
    penalty: torch.Tensor
    sign: float


@dataclass
class LossTaint:
    """What each tensor inside ``loss_fn`` was computed from."""

    param_ids: dict[int, str]
    output_ids: set[int] = field(default_factory=set)
    tags: dict[int, tuple[str, torch.Tensor]] = field(default_factory=dict)
    params_read: set[str] = field(default_factory=set)
    split: Split | None = None

    def tag(self, t: torch.Tensor) -> str | None:
        i = id(t)
        if i in self.output_ids:
            return "out"
        if i in self.param_ids:
            return "param"
        hit = self.tags.get(i)
        return hit[0] if hit is not None and hit[1] is t else None


def _bind(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {}
    bound.apply_defaults()
    return dict(bound.arguments)


class OpsMode(TorchFunctionMode):
    """Records functional ops into a :class:`Recorder` while active."""

    def __init__(self, rec: Recorder, taint: LossTaint) -> None:
        super().__init__()
        self.rec = rec
        self.taint = taint
        self.loss_call: LossCall | None = None
        # Library losses the model computes itself (Hugging Face models given ``labels``).
        self.model_loss_calls: list[LossCall] = []

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        rec = self.rec
        if rec.depth > 0:
            return func(*args, **kwargs)
        name = op_name(func)
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        recorded = (name in ACTIVATIONS or name in PROB_HEADS or name in LOGS) and x is not None
        pre = sat = source = None
        if recorded and x is not None and x.is_floating_point():
            source = rec.producer(x)
            pre, sat = rec.pre_stats(x, name)
        call = None
        if name in LOSSES and (rec.phase == "model" or self.loss_call is None):
            call = self._loss_call(func, name, args, kwargs)
            if call is not None and rec.phase == "loss":
                self.loss_call = call
            elif call is not None:
                self.model_loss_calls.append(call)

        result = func(*args, **kwargs)
        if call is not None and isinstance(result, torch.Tensor):
            call.result = result

        if isinstance(result, torch.Tensor) and result.is_floating_point():
            if recorded and pre is not None:
                kind = "log" if name in LOGS else "activation"
                rec.record(rec.fn_name(name), kind, name, None, result, pre=pre, saturated=sat,
                           source=source)
            elif name in ADDS and rec.phase == "model" and self._is_residual(args, result):
                # The skip is the operand produced earlier; the branch ran after it.
                known = [p for p in (rec.producer(args[0]), rec.producer(args[1])) if p is not None]
                skip = min(known, key=lambda p: p.index) if known else None
                added = rec.record(rec.fn_name(name), "add", name, x, result, source=skip)
                added.skip_index = skip.index if skip is not None else None
            elif name in PASS_THROUGH and x is not None:
                rec.alias(result, x)
        if rec.phase == "loss":
            self._propagate(name, args, kwargs, result)
        return result

    @staticmethod
    def _is_residual(args: tuple[Any, ...], result: torch.Tensor) -> bool:
        if len(args) < 2:
            return False
        a, b = args[0], args[1]
        return (
            isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
            and a.shape == b.shape == result.shape and a.dim() >= 2 and result.requires_grad
        )

    def _loss_call(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> LossCall | None:
        bound = _bind(func, args, kwargs)
        pred = bound.get("input", args[0] if args else None)
        if not isinstance(pred, torch.Tensor):
            return None
        reduction = bound.get("reduction", "mean")
        if bound.get("size_average") is False or bound.get("reduce") is False:
            reduction = "sum" if bound.get("reduce") is not False else "none"
        producer = self.rec.producer(pred)
        ignore = bound.get("ignore_index")
        return LossCall(
            kind=LOSSES[name],
            reduction=str(reduction),
            prediction=pred,
            target=bound.get("target", args[1] if len(args) > 1 else None),
            producer=producer.op if producer is not None else grad_fn_producer(pred),
            label_smoothing=float(bound.get("label_smoothing", 0.0) or 0.0),
            ignore_index=int(ignore) if isinstance(ignore, int) else None,
        )

    def raised_in_model_loss(self) -> LossCall | None:
        """The model's own library loss call that raised (labels it cannot score), if any."""
        if self.model_loss_calls and self.model_loss_calls[-1].result is None:
            return self.model_loss_calls[-1]
        return None

    def model_loss(self, loss: Any, output: Any) -> LossCall | None:
        """The library loss the model computed itself, when ``loss_fn`` returned it.

        ``loss_fn`` returns a tensor the model returned (``out.loss``) and made no library loss
        call of its own: the checks then read that call's logits, labels, kind and ignore index.
        """
        if self.loss_call is not None or not self.model_loss_calls:
            return None
        if not any(loss is t for t in all_tensors(output)):
            return None
        return next((c for c in self.model_loss_calls if c.result is loss),
                    self.model_loss_calls[0])

    def _propagate(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
    ) -> None:
        taint = self.taint
        operands = all_tensors(args) + all_tensors(kwargs)
        tags = [taint.tag(t) for t in operands]
        results = all_tensors(result)
        # Only ops that compute a tensor count as reading a parameter: p.dim(), p.shape or
        # p.requires_grad in a filter do not put p into the penalty.
        if results:
            for t, tg in zip(operands, tags, strict=True):
                if tg == "param" and id(t) in taint.param_ids:
                    taint.params_read.add(taint.param_ids[id(t)])
        if "out" in tags:
            new = "out"
        elif "param" in tags:
            new = "param"
        else:
            return
        if (
            name in ADDS and taint.split is None and len(args) >= 2
            and isinstance(args[0], torch.Tensor) and isinstance(args[1], torch.Tensor)
        ):
            ta, tb = taint.tag(args[0]), taint.tag(args[1])
            if ta == "out" and tb == "param":
                taint.split = Split(args[0], args[1], -1.0 if name == "sub" else 1.0)
            elif ta == "param" and tb == "out" and name == "add":
                taint.split = Split(args[1], args[0], 1.0)
        for r in results:
            taint.tags[id(r)] = (new, r)


_VIEWS = ("View", "Reshape", "Squeeze", "Unsqueeze", "Permute", "Transpose", "TBackward",
          "Expand", "Clone", "Contiguous", "AsStrided")


def grad_fn_producer(t: torch.Tensor) -> str | None:
    """Name the op behind ``t`` from its autograd node, looking through views."""
    node = t.grad_fn
    for _ in range(8):
        if node is None:
            return None
        name = type(node).__name__
        if name.startswith("Softmax"):
            return "softmax"
        if name.startswith("LogSoftmax"):
            return "log_softmax"
        if name.startswith("Sigmoid"):
            return "sigmoid"
        if not any(name.startswith(v) for v in _VIEWS) or not node.next_functions:
            return None
        node = node.next_functions[0][0]
    return None
