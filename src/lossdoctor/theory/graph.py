"""Moment propagation through any forward(): residual networks, transformers, functional code.

The model runs once on the batch in its own dtype, under a ``TorchFunctionMode``: every torch
call (``F.linear``, ``+``, ``view``, ``F.scaled_dot_product_attention``, ...) is mapped, next to
the real computation, to what it does to the :class:`~lossdoctor.theory.moments.Moments` of its
input-dependent arguments; the rules live in :mod:`.ops`, :mod:`.shapes` and :mod:`.attention`.
The run supplies only the structure (which op follows which, shapes, masks, position ids) and the
input batch's own statistics; the predicted moments never read an intermediate value. A call no
rule covers (max-pooling, a data-dependent ``where``) is *measured*: its real output's mean and
variance are taken and propagation continues from them; those calls are named in the notes.
Tensors that do not depend on the input (weights, masks, rotary tables) are constants.

Modules whose forward is written out elementwise (Llama's ``RMSNorm``, GPT-2's tanh GELU) are
taken whole: their internal ops are not followed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

from lossdoctor.probe.hooks import first_tensor
from lossdoctor.theory import attention, ops, shapes
from lossdoctor.theory.moments import Moments, Unsupported, constant, measure

if TYPE_CHECKING:
    from lossdoctor.theory.propagate import Prediction

Rule = Callable[[Any, tuple[Any, ...], dict[str, Any], Any], Any]

RULES: dict[str, Rule] = {
    "add": ops.add, "sub": ops.sub, "rsub": ops.rsub, "neg": ops.neg, "mul": ops.mul,
    "div": ops.div, "true_divide": ops.div, "linear": ops.linear, "addmm": ops.addmm,
    "conv1d": ops.conv, "conv2d": ops.conv, "conv3d": ops.conv,
    "layer_norm": ops.layer_norm, "rms_norm": ops.rms_norm, "batch_norm": ops.batch_norm,
    "dropout": ops.dropout, "softmax": attention.softmax,
    "matmul": attention.matmul, "mm": attention.matmul, "bmm": attention.matmul,
    "scaled_dot_product_attention": attention.sdpa,
    "getitem": shapes.getitem, "permute": shapes.permute, "repeat": shapes.repeat,
    "transpose": shapes.transpose, "swapaxes": shapes.transpose, "t": shapes.transpose,
    "cat": shapes.cat, "concat": shapes.cat, "concatenate": shapes.cat, "stack": shapes.cat,
    **{n: shapes.view for n in ("view", "reshape", "flatten", "unflatten", "squeeze",
                                "unsqueeze", "view_as", "reshape_as")},
    **{n: shapes.same for n in ("contiguous", "to", "clone", "detach", "float", "double",
                                "half", "bfloat16", "type_as", "type")},
    **{n: shapes.expand for n in ("expand", "expand_as", "broadcast_to")},
    **{n: shapes.split for n in ("split", "chunk", "unbind", "tensor_split",
                                 "split_with_sizes")},
    **{n: ops.activation(n) for n in ops.ACTIVATIONS},
}

_ID_VIEWS = {"view", "reshape", "contiguous", "to", "clone", "flatten", "unsqueeze", "squeeze",
             "expand", "long", "int", "getitem"}

_DUNDER = {"radd": "add", "iadd": "add", "rmul": "mul", "imul": "mul", "isub": "sub",
           "truediv": "div", "itruediv": "div", "rtruediv": "rdiv", "div": "div"}

# Modules whose forward spells out an elementwise function or a norm (not followed op by op).
HF_ACTIVATIONS = {"NewGELUActivation": "gelu_tanh", "GELUTanh": "gelu_tanh",
                  "PytorchGELUTanh": "gelu_tanh", "FastGELUActivation": "gelu_tanh",
                  "GELUPytorchTanh": "gelu_tanh", "GELUActivation": "gelu",
                  "QuickGELUActivation": "quick_gelu", "SiLUActivation": "silu"}


def op_name(func: Any) -> str:
    """``Tensor.__radd__`` -> ``add``, ``relu_`` -> ``relu``, ``__rsub__`` -> ``rsub``."""
    name = getattr(func, "__name__", "") or ""
    if name.startswith("__") and name.endswith("__"):
        inner = name[2:-2]
        return _DUNDER.get(inner, inner)
    return name.rstrip("_")


def module_rule(m: nn.Module) -> Callable[[Moments, torch.Tensor], Moments] | None:
    """A whole-module rule for modules whose ops are not worth following one by one."""
    cls = type(m).__name__
    if cls in HF_ACTIVATIONS:
        op = HF_ACTIVATIONS[cls]
        return lambda mo, out: ops.apply(mo, op, out.dim())
    w = getattr(m, "weight", None)
    if cls.endswith("RMSNorm") and "Gemma" not in cls and isinstance(w, torch.Tensor) \
            and w.dim() == 1:
        eps = getattr(m, "variance_epsilon", getattr(m, "eps", None))

        def rms(mo: Moments, out: torch.Tensor) -> Moments:
            e = float(eps) if eps is not None else float(torch.finfo(out.dtype).eps)
            return ops._norm(_NoRandom(), mo, 1, w, None, e, centre=False, nd=out.dim(),
                             shape=out.shape)
        return rms
    return None


class _NoRandom:
    def __call__(self, x: Any) -> Moments | None:
        return constant(x) if isinstance(x, torch.Tensor) else None

    def random(self, x: Any) -> bool:
        return False


def _tensors(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (tuple, list)):
        return [t for i in x for t in _tensors(i)]
    if isinstance(x, dict):
        return [t for i in x.values() for t in _tensors(i)]
    return []


class Propagation(TorchFunctionMode):
    """Follows one forward pass and keeps the predicted moments of every input-dependent tensor.

    Attributes:
        layers: (module name, class, moments of its output, no op measured inside) in the order
            the modules return.
        measured: names of the ops that were measured, in order.
        failures: why a rule declined, for the notes.
    """

    def __init__(self, user_ids: list[torch.Tensor]) -> None:
        super().__init__()
        self.rec: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.user_ids: WeakIdKeyDictionary = WeakIdKeyDictionary()
        for t in user_ids:
            self.user_ids[t] = True
        self.suspended = 0
        self.stack: list[int] = []
        self.measured: list[str] = []
        self.failures: list[str] = []
        self.layers: list[tuple[str, str, Moments, bool]] = []
        self.output: Moments | None = None

    # what rules see of their arguments
    def __call__(self, x: Any) -> Moments | None:
        if isinstance(x, Moments):
            return x
        if not isinstance(x, torch.Tensor):
            return None
        r = self.rec.get(x)
        if r is not None:
            return r  # type: ignore[no-any-return]
        return constant(x) if x.is_floating_point() or x.dtype == torch.bool else None

    def random(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor) and x in self.rec

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.suspended:
            return out
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        name = op_name(func)
        if not any(isinstance(o, torch.Tensor) and o.is_floating_point() for o in outs):
            if name in _ID_VIEWS and isinstance(out, torch.Tensor) and isinstance(
                    args[0], torch.Tensor) and args[0] in self.user_ids:
                self.user_ids[out] = True  # input_ids.view(-1, n) are still the batch's ids
            return out
        if name == "embedding":
            ids = args[0]
            if isinstance(ids, torch.Tensor) and ids in self.user_ids \
                    and isinstance(out, torch.Tensor):
                self.rec[out] = ops.embedding_rows(ids, args[1], out.dim())
            return out
        inputs = [t for t in _tensors((args, kwargs)) if t in self.rec]
        if not inputs:
            return out
        res: Any = None
        rule = RULES.get(name)
        if rule is not None:
            try:
                res = rule(self, args, kwargs, out)
            except (Unsupported, RuntimeError, ValueError, TypeError, IndexError) as e:
                self.failures.append(f"{name}: {e}")
                res = None
        results = res if isinstance(res, list) else [res]
        if res is None or len(results) != len(outs) or not all(
                _fits(r, o) for r, o in zip(results, outs, strict=True)):
            self.measured.append(name)
            like = self.rec.get(inputs[0])
            results = [measure(o, like) if isinstance(o, torch.Tensor) and o.is_floating_point()
                       else None for o in outs]
        for r, o in zip(results, outs, strict=True):
            if r is not None and isinstance(o, torch.Tensor):
                self.rec[o] = r
        return out

    def hooks(self, model: nn.Module) -> list[Any]:
        """Forward hooks that apply module rules and record every module's output."""
        handles = []
        for name, m in model.named_modules():
            rule = module_rule(m)
            label = name or type(m).__name__

            def pre(mod: nn.Module, args: Any, _r: Any = rule) -> None:
                self.stack.append(len(self.measured))
                if _r is not None:
                    self.suspended += 1

            def post(mod: nn.Module, args: Any, output: Any, _r: Any = rule,
                     _n: str = label) -> None:
                before = self.stack.pop() if self.stack else len(self.measured)
                if _r is not None:
                    self.suspended -= 1
                if self.suspended:
                    return
                out = first_tensor(output)
                if _r is not None and isinstance(out, torch.Tensor):
                    x = first_tensor(args)
                    if isinstance(x, torch.Tensor) and x in self.rec:
                        try:
                            self.rec[out] = _r(self.rec[x], out)
                        except (Unsupported, RuntimeError, ValueError) as e:
                            self.failures.append(f"{type(mod).__name__}: {e}")
                            self.measured.append(type(mod).__name__)
                            self.rec[out] = measure(out, self.rec[x])
                if isinstance(out, torch.Tensor) and out in self.rec:
                    self.layers.append((_n, type(mod).__name__, self.rec[out],
                                        len(self.measured) == before))
                    if mod is model:
                        self.output = self.rec[out]

            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        return handles


def _fits(r: Any, o: Any) -> bool:
    if not isinstance(r, Moments) or not isinstance(o, torch.Tensor):
        return r is None and not (isinstance(o, torch.Tensor) and o.is_floating_point())
    return r.m.dim() == o.dim() and r.m.shape == r.v.shape and all(
        a in (1, b) for a, b in zip(r.m.shape, o.shape, strict=True)) and math.isfinite(r.q)


def run(model: nn.Module, inputs: Any) -> Propagation:
    """Propagate moments through one forward pass of ``model`` on ``inputs`` (model untouched)."""
    from lossdoctor.theory.propagate import forward_once

    user = _tensors(inputs)
    prop = Propagation([t for t in user if not t.is_floating_point()])
    for t in user:
        if t.is_floating_point():
            prop.rec[t] = measure(t)
    forward_once(model, inputs, prop.hooks(model), prop)
    return prop


def predict_graph(model: nn.Module, inputs: Any, classes: int | None, draws: int = 200
                  ) -> Prediction:
    """A :class:`~lossdoctor.theory.propagate.Prediction` for any model, from one forward."""
    from lossdoctor.theory.propagate import (
        LayerPrediction,
        Prediction,  # noqa: F811 (imported for type checking above)
        cross_entropy_band,
        network_cross_entropy,
    )

    prop = run(model, inputs)
    layers = tuple(LayerPrediction(name, cls, mo.q, math.sqrt(mo.q), mo.q12, None, inside)
                   for name, cls, mo, inside in prop.layers)
    notes = [f"{name} is outside the theory: measured on the batch, predicted from there on"
             for name in dict.fromkeys(prop.measured)]
    out = prop.output
    logit_std = math.sqrt(out.q) if out is not None else math.nan
    initial = band = network = None
    if out is not None and classes and classes >= 2 and out.m.shape[-1] in (1, classes) \
            and draws:
        k = classes
        first = first_tensor(inputs)
        examples = max(1, int(first.shape[0])) if first is not None and first.dim() else 128
        initial, band = cross_entropy_band(out.q, out.q12, k, examples, draws)
        lead = tuple(range(out.m.dim() - 1))
        mu = out.m.expand(*out.m.shape[:-1], k).mean(lead) if lead else out.m
        s = out.s.expand(*out.s.shape[:-1], k).mean(lead) if lead else out.s
        network = network_cross_entropy(mu, s - mu * mu)
    return Prediction(layers, logit_std, classes, initial, band, None, None, None, tuple(notes),
                      network)
