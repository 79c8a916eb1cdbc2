"""Never crash, never mutate, never mislead: a matrix of valid PyTorch set-ups and bad input.

For every set-up: no exception other than ``LossDoctorError`` leaves ``diagnose``/``predict``,
everything the user owns (parameters, gradients, buffers, modes, the module tree and its plain
attributes, the loss module's state, the optimizer, RNGs, grad mode) is bit-identical afterwards,
and the outcome names the problem: an expected finding, or a one-line error saying what is wrong.
The CLI part checks the exit codes (0, 1, 2, 3) and one-line stderr for misuse.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn
from torch.nn.parameter import is_lazy

import lossdoctor as ld
from lossdoctor.cli import main
from lossdoctor.errors import LossFnError, ModelError

# --------------------------------------------------------------------------------------------
# state of everything the user owns


def _clone(t: torch.Tensor) -> Any:
    if is_lazy(t) or t.is_meta:
        return ("no data", id(t), type(t).__name__)
    return t.detach().clone()


def _value(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return ("tensor", _clone(v))
    if isinstance(v, (nn.Module, torch.optim.Optimizer)):
        return ("object", id(v))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, [_value(x) for x in v])
    if isinstance(v, dict):
        return ("dict", {k: _value(x) for k, x in v.items()})
    if isinstance(v, (int, float, str, bool, type(None))):
        return ("plain", v)
    return ("object", id(v))


def _object_state(obj: Any) -> dict[str, Any]:
    """Plain attributes of a module (or any object), hooks excluded."""
    d = getattr(obj, "__dict__", {})
    return {k: _value(v) for k, v in d.items()
            if not k.endswith("hooks") and k not in ("_parameters", "_buffers", "_modules")
            and "hook" not in k}


def state(model: nn.Module, opt: Any, loss_fn: Any) -> dict[str, Any]:
    st: dict[str, Any] = {
        "structure": [(n, id(m), type(m).__name__) for n, m in model.named_modules()],
        "params": {n: (id(p), _clone(p)) for n, p in model.named_parameters()},
        "grads": {n: None if p.grad is None else (id(p.grad), _clone(p.grad))
                  for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "buffers": {n: (id(b), _clone(b)) for n, b in model.named_buffers()},
        "modes": {n: m.training for n, m in model.named_modules()},
        "attrs": {n: _object_state(m) for n, m in model.named_modules()},
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                     for m in model.modules()),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state()[1].copy(),
        "python_rng": random.getstate(),
        "grad_enabled": torch.is_grad_enabled(),
        "inference": torch.is_inference_mode_enabled(),
        "anomaly": torch.is_anomaly_enabled(),
    }
    if opt is not None:
        st["opt"] = (copy.deepcopy(opt.state_dict()),
                     [[id(p) for p in g["params"]] for g in opt.param_groups])
    if isinstance(loss_fn, nn.Module):
        st["loss"] = {"state": {k: v.clone() for k, v in loss_fn.state_dict().items()},
                      "attrs": {n: _object_state(m) for n, m in loss_fn.named_modules()}}
    elif hasattr(loss_fn, "__self__"):
        st["loss"] = _object_state(loss_fn.__self__)
    elif hasattr(loss_fn, "__dict__"):
        st["loss"] = _object_state(loss_fn)
    return st


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.is_meta or b.is_meta:
            return a.is_meta and b.is_meta
        if a.is_sparse or b.is_sparse:
            a, b = a.to_dense(), b.to_dense()
        if a.is_floating_point():
            return bool(torch.equal(torch.nan_to_num(a), torch.nan_to_num(b))
                        and (a.isnan() == b.isnan()).all())
        return bool(torch.equal(a, b))
    if isinstance(a, np.ndarray):
        return bool((a == b).all())
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(same(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before.keys() == after.keys()
    for key in before:
        assert same(before[key], after[key]), f"user state changed: {key}"


# --------------------------------------------------------------------------------------------
# building blocks (tiny, seeded)


def mlp(i: int = 4, h: int = 8, o: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o))


def data(n: int = 16, i: int = 4, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, i), torch.randint(0, k, (n,))


def case(model: nn.Module | None = None, optimizer: Any = "sgd", **kw: Any) -> dict[str, Any]:
    model = model if model is not None else mlp()
    x, y = data()
    c: dict[str, Any] = {"model": model, "inputs": x, "targets": y,
                         "loss_fn": nn.CrossEntropyLoss(), "verify_steps": 2}
    if optimizer == "sgd":
        c["optimizer"] = torch.optim.SGD(model.parameters(), lr=0.05)
    elif optimizer is not None:
        c["optimizer"] = optimizer(model.parameters()) if callable(optimizer) else optimizer
    c.update(kw)
    return c


class ExtraArgOpt(torch.optim.SGD):
    """A custom optimizer whose constructor needs more than (params, **group settings)."""

    def __init__(self, params: Any, model: nn.Module, lr: float = 0.05) -> None:
        self.model_ref = model
        super().__init__(params, lr=lr)


class ClosureOpt(torch.optim.Optimizer):
    """A custom optimizer whose step needs a closure (like LBFGS)."""

    def __init__(self, params: Any, lr: float = 0.05) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
        return loss


class SignSGD(torch.optim.Optimizer):
    def __init__(self, params: Any, lr: float = 1e-3) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


class Grows(nn.Module):
    """Creates its head on the first call and counts calls."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.calls = 0
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen.append(x.shape[0])
        if not hasattr(self, "head"):
            self.head = nn.Linear(8, 3)
        return self.head(torch.relu(self.body(x)))


class Stashes(nn.Module):
    """Keeps the last activation as a plain tensor attribute and edits one in place."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.last: torch.Tensor | None = None
        self.counter = torch.zeros(1)
        self.config = {"calls": 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x)
        self.last = out.detach()
        self.counter += 1
        self.config["calls"] += 1
        return out


class RegistersBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "seen_mean"):
            self.register_buffer("seen_mean", x.mean(0).detach())
        return self.lin(x)


class FlipsMode(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.drop.eval()
        self.lin.weight.requires_grad_(True)
        return self.lin(self.drop(x))


class RaisesLater(nn.Module):
    """Works on the first ``ok`` calls, then raises (a data-dependent bug)."""

    def __init__(self, ok: int) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.ok = ok
        self.n = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.n += 1
        if self.n > self.ok:
            raise ValueError(f"call {self.n} failed")
        return self.lin(x)


class CountingLoss(nn.Module):
    """A loss module with a running buffer and a Python counter."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("running", torch.zeros(()))
        self.calls = 0

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(out, y)
        self.running.mul_(0.9).add_(0.1 * loss.detach())
        self.calls += 1
        return loss


class CallableLoss:
    def __init__(self) -> None:
        self.history: list[float] = []

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(out, y)
        self.history.append(float(loss.detach()))
        return loss


class LossRaisesLater(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.n += 1
        if self.n > 1:
            raise RuntimeError("loss blew up on call 2")
        return F.cross_entropy(out, y)


class DictOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.lin(x), "aux": x.sum(1)}


class TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.lin(x)
        return h, h.detach()


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(2, 3)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(z)


class NoParams(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :3] * 2


class Prints(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("forward called")
        return self.lin(x)


def emb_model(sparse: bool) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(20, 8, sparse=sparse), nn.Flatten(), nn.Linear(24, 3))


def lazy(initialised: bool) -> nn.Module:
    m = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 3))
    if initialised:
        m(torch.randn(2, 4))
    return m


def frozen() -> nn.Module:
    m = mlp()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def half_overflow() -> dict[str, Any]:
    """Pure float16 regression whose squared error passes 65504 at any learning rate."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1)).half()
    x = torch.randn(32, 4).half()
    y = (torch.randn(32, 1) * 400).half()
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.MSELoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=1e-4), "verify_steps": 3}


def nan_weight() -> dict[str, Any]:
    m = mlp()
    with torch.no_grad():
        m[2].weight[0, 0] = float("nan")
    return case(m)


def lbfgs() -> dict[str, Any]:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    return case(m, lambda p: torch.optim.LBFGS(p, lr=1, max_iter=5), verify_steps=3)


def meta() -> dict[str, Any]:
    with torch.device("meta"):
        m = mlp()
    return case(m, None)


def with_grads(c: dict[str, Any]) -> dict[str, Any]:
    """Give the model real .grad tensors and the optimizer state, as mid-training."""
    m, opt = c["model"], c.get("optimizer")
    out = m(c["inputs"]) if not isinstance(c["inputs"], tuple) else m(*c["inputs"])
    out = out if isinstance(out, torch.Tensor) else out[0]
    out.float().square().mean().backward()
    if opt is not None and not isinstance(opt, (torch.optim.LBFGS, ClosureOpt)):
        opt.step()
    return c


# expectation keys: codes (must be present), absent (must not be), error (regex the
# LossDoctorError message must match), error_type, clean (no error-level finding), note (regex
# one of the trace notes must match)
CASES: dict[str, Callable[[], dict[str, Any]]] = {}


def add(name: str, expect: dict[str, Any] | None = None, ctx: Any = None) -> Callable[..., Any]:
    def deco(fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        def build() -> dict[str, Any]:
            torch.manual_seed(0)
            c = fn()
            c.setdefault("_expect", expect or {"clean": True})
            c.setdefault("_ctx", ctx)
            return c
        CASES[name] = build
        return fn
    return deco


# optimizers ---------------------------------------------------------------------------------
_OPTS: dict[str, Callable[[Any], torch.optim.Optimizer]] = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05),
    "sgd-nesterov": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3),
    "adam-amsgrad": lambda p: torch.optim.Adam(p, lr=1e-3, amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3),
    "adamax": lambda p: torch.optim.Adamax(p, lr=1e-3),
    "nadam": lambda p: torch.optim.NAdam(p, lr=1e-3),
    "radam": lambda p: torch.optim.RAdam(p, lr=1e-3),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=1e-2),
    "adadelta": lambda p: torch.optim.Adadelta(p),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-3),
    "rprop": lambda p: torch.optim.Rprop(p, lr=1e-3),
    "asgd": lambda p: torch.optim.ASGD(p, lr=1e-2),
    "sign-sgd-custom": lambda p: SignSGD(p),
    "closure-custom": lambda p: ClosureOpt(p),
}
for _name, _make in _OPTS.items():
    add(f"opt/{_name}", {"absent": {"lr-too-high"}, "no_errors": True})(
        lambda _make=_make: case(optimizer=_make))
    add(f"opt/{_name}/with-grads-and-state", {"absent": {"lr-too-high"}, "no_errors": True})(
        lambda _make=_make: with_grads(case(optimizer=_make)))
add("opt/lbfgs", {"absent": {"lr-too-high"}, "no_errors": True})(lbfgs)


def _lbfgs_softmax() -> dict[str, Any]:
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3), nn.Softmax(dim=1))
    return case(m, lambda p: torch.optim.LBFGS(p, lr=1, max_iter=3), verify_steps=2)


add("opt/lbfgs-verify", {"codes": {"double-softmax"}, "absent": {"lr-too-high"}})(_lbfgs_softmax)
add("opt/extra-ctor-args-verify", {"codes": {"double-softmax"}})(
    lambda: (lambda m: case(m, ExtraArgOpt(m.parameters(), m)))(
        nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))))
add("opt/closure-custom-verify", {"codes": {"double-softmax"}})(
    lambda: case(nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)), ClosureOpt))
add("opt/per-group-lr")(lambda: (lambda m: case(m, torch.optim.SGD(
    [{"params": m[0].parameters(), "lr": 0.01}, {"params": m[2].parameters()}], lr=0.05)))(mlp()))


def _sparse_adam() -> dict[str, Any]:
    m = emb_model(True)
    emb = list(m[0].parameters())
    c = case(m, None, inputs=torch.randint(0, 20, (16, 3)))
    c["optimizer"] = torch.optim.SparseAdam(emb, lr=1e-2)  # the dense rest: another optimizer
    return c


add("opt/sparse-adam", {"no_errors": True})(_sparse_adam)


add("opt/sparse-embedding-sgd", {"no_errors": True})(
    lambda: case(emb_model(True), "sgd", inputs=torch.randint(0, 20, (16, 3))))
add("opt/sparse-embedding-with-grads", {"no_errors": True})(
    lambda: with_grads(case(emb_model(True), "sgd", inputs=torch.randint(0, 20, (16, 3)))))
add("opt/none")(lambda: case(optimizer=None))
add("opt/foreign-params", {"codes": {"nothing-trainable"}, "absent": {"lr-too-low"}})(
    lambda: case(mlp(), torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)))
add("opt/huge-lr", {"codes": {"lr-too-high"}})(
    lambda: (lambda m: case(m, torch.optim.SGD(m.parameters(), lr=1e3), verify_steps=3))(mlp()))

# trainability ------------------------------------------------------------------------------
add("train/all-frozen", {"codes": {"nothing-trainable"}})(lambda: case(frozen(), None))
add("train/all-frozen-with-opt", {"codes": {"nothing-trainable"}})(
    lambda: (lambda m: case(m, torch.optim.SGD(m.parameters(), lr=0.1)))(frozen()))
add("train/no-parameters", {"codes": {"nothing-trainable"}})(lambda: case(NoParams(), None))
add("train/partly-frozen", {"absent": {"nothing-trainable"}})(
    lambda: (lambda m: (m[0].requires_grad_(False), case(m))[1])(mlp()))
add("train/eval-mode-batchnorm")(lambda: case(nn.Sequential(
    nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).eval()))

# precision -----------------------------------------------------------------------------------
add("dtype/fp64")(lambda: case(mlp().double(), inputs=torch.randn(16, 4, dtype=torch.float64)))
add("dtype/bf16", {"no_errors": True})(
    lambda: case(mlp().bfloat16(), inputs=torch.randn(16, 4).bfloat16()))
add("dtype/fp16-healthy", {"no_errors": True})(
    lambda: case(mlp().half(), inputs=torch.randn(16, 4).half()))
add("dtype/fp16-overflow", {"codes": {"half-precision-overflow"}, "absent": {"lr-too-high"}})(
    half_overflow)
add("dtype/fp16-overflow-adam", {"codes": {"half-precision-overflow"},
                                 "absent": {"lr-too-high"}})(
    lambda: (lambda c: {**c, "optimizer": torch.optim.Adam(c["model"].parameters(), lr=1e-5)})(
        half_overflow()))
for _lr in (1e-2, 1e-4, 1e-6):  # Adam's eps and small squared gradients flush to 0 in float16
    add(f"dtype/fp16-adam-nan-at-lr-{_lr:g}", {"codes": {"half-precision-overflow"},
                                              "absent": {"lr-too-high"}})(
        lambda _lr=_lr: (lambda m: case(m, torch.optim.Adam(m.parameters(), lr=_lr),
                                        inputs=torch.randn(16, 4).half(), verify_steps=2))(
            mlp(4, 32, 3).half()))
add("dtype/mixed-model-fp64-input-fp32", {"error": "the model raised", "error_type": ModelError})(
    lambda: case(mlp().double()))

# modules ----------------------------------------------------------------------------------
add("module/lazy-uninitialised", {"note": "lazy"})(lambda: case(lazy(False), None))
add("module/lazy-uninitialised-opt", {"note": "lazy"})(
    lambda: (lambda m: case(m, torch.optim.SGD(m.parameters(), lr=0.1)))(lazy(False)))
add("module/lazy-uninitialised-softmax", {"note": "lazy", "codes": {"double-softmax"}})(
    lambda: (lambda m: case(m, torch.optim.Adam(m.parameters(), lr=1e-3)))(
        nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(3), nn.Softmax(dim=1))))
add("module/lazy-model-raises", {"error": "lazy", "error_type": ModelError})(
    lambda: case(nn.Sequential(nn.LazyLinear(8), nn.Linear(7, 3)), None))
add("module/lazy-initialised")(lambda: case(lazy(True)))
add("module/meta", {"error": "meta"})(meta)
add("module/meta-with-opt", {"error": "meta"})(
    lambda: (lambda c: {**c, "optimizer": torch.optim.SGD(c["model"].parameters(), lr=0.1)})(
        meta()))
add("module/embedding-dense")(
    lambda: case(emb_model(False), inputs=torch.randint(0, 20, (16, 3))))
add("module/weight-nan", {"codes": {"nonfinite"}, "where": ("nonfinite", r"^2\.weight")})(
    nan_weight)
add("module/bias-inf", {"codes": {"nonfinite"}, "where": ("nonfinite", r"^0\.bias")})(
    lambda: (lambda m: (m[0].bias.data.__setitem__(1, float("inf")), case(m))[1])(mlp()))
add("module/shared-weights")(lambda: (lambda m: (setattr(m[2], "weight", m[0].weight), case(
    m, inputs=torch.randn(16, 4)))[1])(nn.Sequential(nn.Linear(4, 4), nn.ReLU(),
                                                     nn.Linear(4, 4))))

# grad modes ---------------------------------------------------------------------------------
for _ctxname, _ctx in {"no-grad": torch.no_grad, "inference-mode": torch.inference_mode,
                       "grad-disabled": lambda: torch.set_grad_enabled(False),
                       "anomaly": lambda: torch.autograd.set_detect_anomaly(True)}.items():
    add(f"mode/{_ctxname}", {"absent": {"loss-degenerate"}, "no_errors": True,
                             **({"note": "grad"} if _ctxname != "anomaly" else {})},
        ctx=_ctx)(lambda: case())
    add(f"mode/{_ctxname}/softmax", {"codes": {"double-softmax"}, "absent": {"loss-degenerate"}},
        ctx=_ctx)(lambda: case(nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))))
add("mode/anomaly-nan-batch", {"codes": {"nonfinite"}, "absent": {"dead-relu"}},
    ctx=lambda: torch.autograd.set_detect_anomaly(True))(
    lambda: case(inputs=torch.full((16, 4), float("nan"))))
add("mode/anomaly-nan-weight", {"codes": {"nonfinite"}},
    ctx=lambda: torch.autograd.set_detect_anomaly(True))(nan_weight)
add("mode/inference-tensors", {"no_errors": True, "note": "grad"},
    ctx=torch.inference_mode)(lambda: _inference_tensors())


def _inference_tensors() -> dict[str, Any]:
    with torch.inference_mode():
        x, y = data()
    return case(inputs=x, targets=y)


def _built_in_inference_mode() -> dict[str, Any]:
    with torch.inference_mode():
        return case()


add("mode/model-built-in-inference-mode", {"error": "inference_mode"},
    ctx=torch.inference_mode)(_built_in_inference_mode)


# stateful forwards and losses ----------------------------------------------------------------
add("state/grows-submodule-and-counts")(lambda: case(Grows(), None))
add("state/stashes-tensors")(lambda: case(Stashes()))
add("state/registers-buffer")(lambda: case(RegistersBuffer()))
add("state/flips-mode-and-flags")(lambda: case(FlipsMode()))
add("state/stateful-loss-module")(lambda: case(loss_fn=CountingLoss()))
add("state/stateful-callable-loss")(lambda: case(loss_fn=CallableLoss()))
add("state/loss-is-a-bound-method")(lambda: case(loss_fn=CallableLoss().__call__))
add("state/model-raises-in-probe-steps", {"error": "call 2 failed", "error_type": ModelError})(
    lambda: case(RaisesLater(1), verify_steps=3))
add("state/model-raises-in-verification", {"error": "failed", "error_type": ModelError})(
    lambda: case(RaisesLater(2), verify_steps=2))
add("state/loss-raises-in-probe-steps", {"error": "blew up", "error_type": LossFnError})(
    lambda: case(loss_fn=LossRaisesLater(), verify_steps=2))
add("state/forward-prints")(lambda: case(Prints()))

# odd outputs and inputs ----------------------------------------------------------------------
add("io/empty-batch", {"error": "empty"})(
    lambda: case(inputs=torch.randn(0, 4), targets=torch.zeros(0, dtype=torch.long)))
add("io/int-inputs-to-linear", {"error": "the model raised"})(
    lambda: case(inputs=torch.randint(0, 3, (16, 4))))
add("io/dict-outputs")(lambda: case(DictOut(), loss_fn=lambda o, t: F.cross_entropy(
    o["logits"], t)))
add("io/tuple-outputs")(lambda: case(TupleOut(), loss_fn=lambda o, t: F.cross_entropy(o[0], t)))
add("io/tuple-inputs")(lambda: case(TwoInputs(), inputs=(torch.randn(16, 4), torch.randn(16, 2))))
add("io/dict-inputs")(lambda: case(TwoInputs(), inputs={"x": torch.randn(16, 4),
                                                         "z": torch.randn(16, 2)}))
add("io/nan-inputs", {"codes": {"nonfinite"}, "absent": {"dead-relu", "lr-too-high"}})(
    lambda: case(inputs=torch.full((16, 4), float("nan"))))
add("io/inf-targets-regression", {"codes": {"nonfinite"}})(
    lambda: case(nn.Linear(4, 1), inputs=torch.randn(16, 4), targets=torch.full((16, 1), math.inf),
                 loss_fn=nn.MSELoss()))
add("io/labels-out-of-range", {"codes": {"labels-out-of-range"}})(
    lambda: case(targets=torch.full((16,), 7)))
add("io/loss-returns-float", {"error": "scalar tensor", "error_type": LossFnError})(
    lambda: case(loss_fn=lambda o, t: 1.0))
add("io/loss-returns-vector", {"error": "scalar", "error_type": LossFnError})(
    lambda: case(loss_fn=nn.CrossEntropyLoss(reduction="none")))
add("io/loss-detached", {"codes": {"loss-degenerate"}})(
    lambda: case(loss_fn=lambda o, t: F.cross_entropy(o, t).detach()))
add("io/model-returns-none", {"error": "loss_fn|model"})(
    lambda: case(loss_fn=lambda o, t: F.cross_entropy(o, t)) | {"model": _ret_none()})
add("io/batch-of-one")(lambda: case(inputs=torch.randn(1, 4), targets=torch.tensor([1])))
add("io/sequence-ce")(lambda: case(nn.Linear(4, 5), inputs=torch.randn(8, 6, 4),
                                   targets=torch.randint(0, 5, (8, 6)),
                                   loss_fn=lambda o, t: F.cross_entropy(o.transpose(1, 2), t)))
add("io/bool-targets-bce")(lambda: case(nn.Linear(4, 1), inputs=torch.randn(16, 4),
                                        targets=torch.rand(16, 1) < 0.5,
                                        loss_fn=lambda o, t: F.binary_cross_entropy_with_logits(
                                            o, t.float())))
add("io/not-a-module", {"error": "must be a torch.nn.Module"})(
    lambda: case() | {"model": lambda x: x})
add("io/negative-verify-steps", {"error": "verify_steps"})(lambda: case(verify_steps=-1))


class RaisesMultiline(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.lin(x)
        raise RuntimeError("first line\n  second line\n" + "x" * 5000)


add("io/model-raises-multiline", {"error": "first line second line", "error_type": ModelError})(
    lambda: case(RaisesMultiline()))


class ScalarOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).square().mean()


class ListIn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.lin(xs[0] + xs[1])


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = cell(4, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.att = nn.MultiheadAttention(4, 2, batch_first=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.att(x, x, x)
        return self.head(out.mean(1))


class Checkpointed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        return self.b(checkpoint(lambda t: torch.relu(self.a(t)), x, use_reentrant=False))


class Temperature(nn.Module):
    """A loss with its own learnable parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.t = nn.Parameter(torch.ones(1))

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out / self.t, y)


def _with(model: nn.Module, fn: Callable[[nn.Module], Any]) -> nn.Module:
    fn(model)
    return model


def _max_norm_embedding() -> nn.Module:
    m = nn.Sequential(nn.Embedding(20, 8, max_norm=0.5, padding_idx=0), nn.Flatten(),
                      nn.Linear(24, 3))
    with torch.no_grad():
        m[0].weight.mul_(10)  # max_norm renormalises these rows in place in every forward
    return m


_seq = torch.randn(16, 5, 4)
add("arch/scalar-output")(lambda: case(ScalarOut(), loss_fn=lambda o, t: o))
add("arch/list-inputs")(lambda: case(ListIn(), inputs=[[torch.randn(16, 4), torch.randn(16, 4)]]))
add("arch/gru")(lambda: case(Recurrent(nn.GRU), inputs=_seq))
add("arch/lstm")(lambda: case(Recurrent(nn.LSTM), inputs=_seq))
add("arch/attention")(lambda: case(Attention(), inputs=_seq))
add("arch/channels-last-cnn")(lambda: case(
    nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)).to(
        memory_format=torch.channels_last),
    inputs=torch.randn(16, 3, 8, 8).to(memory_format=torch.channels_last)))
add("arch/checkpointed")(lambda: case(Checkpointed()))
add("arch/weight-norm")(lambda: case(_with(mlp(), lambda m: nn.utils.parametrizations.weight_norm(
    m[0]))))
add("arch/spectral-norm-hook")(lambda: case(_with(mlp(), lambda m: nn.utils.spectral_norm(m[0]))))
add("arch/spectral-norm-param")(lambda: case(_with(
    mlp(), lambda m: nn.utils.parametrizations.spectral_norm(m[0]))))
add("arch/embedding-max-norm")(lambda: case(_max_norm_embedding(),
                                            inputs=torch.randint(0, 20, (16, 3))))
add("arch/batchnorm-cumulative")(lambda: case(nn.Sequential(
    nn.Linear(4, 8), nn.BatchNorm1d(8, momentum=None), nn.ReLU(), nn.Linear(8, 3))))
add("arch/user-hooks")(lambda: case(_with(mlp(), lambda m: (
    m[0].register_forward_pre_hook(lambda mod, a: (a[0] * 2,)),
    m[2].register_full_backward_hook(lambda mod, gi, go: None)))))
add("opt/tensor-lr")(lambda: case(optimizer=lambda p: torch.optim.SGD(p, lr=torch.tensor(0.05))))
add("opt/with-scheduler")(lambda: (lambda c: (torch.optim.lr_scheduler.StepLR(
    c["optimizer"], 1), c)[1])(case()))
add("opt/adam-fused", {"no_errors": True})(
    lambda: case(optimizer=lambda p: torch.optim.Adam(p, lr=1e-3, fused=True)))
add("opt/mixed-foreign-param")(lambda: (lambda m: case(m, torch.optim.SGD(
    [*m.parameters(), nn.Parameter(torch.ones(1))], lr=0.05)))(mlp()))
add("state/loss-with-parameter")(lambda: case(loss_fn=Temperature()))
add("io/inputs-require-grad")(lambda: case(inputs=torch.randn(16, 4).requires_grad_()))
add("io/targets-none")(lambda: case(targets=None, loss_fn=lambda o, t: o.square().mean()))
add("io/list-targets")(lambda: case(targets=[0, 1] * 8,
                                    loss_fn=lambda o, t: F.cross_entropy(o, torch.tensor(t))))
add("io/int-targets-mse", {"codes": {"loss-task-mismatch"}})(lambda: case(loss_fn=nn.MSELoss()))
add("io/loss-returns-count", {"codes": {"loss-degenerate"}})(
    lambda: case(loss_fn=lambda o, t: (o.argmax(1) == t).sum()))
add("io/loss-returns-complex", {"error": "real scalar", "error_type": LossFnError})(
    lambda: case(loss_fn=lambda o, t: F.cross_entropy(o, t) + 0j))
add("io/zero-dim-input", {"error": "the model raised", "error_type": ModelError})(
    lambda: case(nn.Linear(1, 3), inputs=torch.tensor(1.0), targets=torch.tensor(1)))


def _ret_none() -> nn.Module:
    class RetNone(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> None:
            self.lin(x)

    return RetNone()


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


@pytest.mark.parametrize("name", sorted(CASES))
def test_setup(name: str) -> None:
    c = CASES[name]()
    expect = c.pop("_expect")
    ctx = c.pop("_ctx") or _nothing
    model, opt, loss_fn = c["model"], c.get("optimizer"), c["loss_fn"]
    with ctx():
        before = state(model, opt, loss_fn) if isinstance(model, nn.Module) else None
        report, error = None, None
        try:
            report = ld.diagnose(**c)
        except ld.LossDoctorError as e:
            error = e
        after = state(model, opt, loss_fn) if isinstance(model, nn.Module) else None
    if before is not None:
        assert_same(before, after)  # type: ignore[arg-type]
    if "error" in expect:
        assert error is not None, f"expected an error, got {report and sorted(report.codes)}"
        msg = str(error)
        assert re.search(expect["error"], msg), msg
        assert "\n" not in msg.strip(), msg
        if "error_type" in expect:
            assert isinstance(error, expect["error_type"]), type(error)
        return
    assert error is None, f"unexpected error: {error}"
    assert report is not None
    codes = report.codes
    assert expect.get("codes", set()) <= codes, sorted(codes)
    assert not (expect.get("absent", set()) & codes), sorted(codes)
    if expect.get("clean") or expect.get("no_errors"):
        assert not report.has("error"), [(f.code, f.summary) for f in report.findings]
    if "note" in expect:
        assert any(re.search(expect["note"], n) for n in report.trace.notes), report.trace.notes
    if "where" in expect:
        code, pattern = expect["where"]
        f = next(f for f in report.findings if f.code == code)
        assert re.search(pattern, f.where), f.where
    json.dumps(report.to_dict(), allow_nan=False)  # strict JSON


# --------------------------------------------------------------------------------------------
# predict


PREDICT: dict[str, tuple[Callable[[], Any], str | None]] = {
    "stats-ok": (lambda: ld.predict(mlp(), input_stats=(4, 0.0, 1.0)), None),
    "batch-ok": (lambda: ld.predict(mlp(), torch.randn(16, 4)), None),
    "stats-dim-zero": (lambda: ld.predict(mlp(), input_stats=(0, 0.0, 1.0)), "dim"),
    "stats-dim-float": (lambda: ld.predict(mlp(), input_stats=(4.5, 0.0, 1.0)), "dim"),
    "stats-dim-bool": (lambda: ld.predict(mlp(), input_stats=(True, 0.0, 1.0)), "dim"),
    "stats-dim-mismatch": (lambda: ld.predict(mlp(), input_stats=(7, 0.0, 1.0)), "model"),
    "stats-nan-mean": (lambda: ld.predict(mlp(), input_stats=(4, math.nan, 1.0)), "finite"),
    "stats-inf-sq": (lambda: ld.predict(mlp(), input_stats=(4, 0.0, math.inf)), "finite"),
    "stats-short": (lambda: ld.predict(mlp(), input_stats=(4, 0.0)), "input_stats"),
    "stats-string": (lambda: ld.predict(mlp(), input_stats="4,0,1"), "input_stats"),  # type: ignore[arg-type]
    "empty-batch": (lambda: ld.predict(mlp(), torch.randn(0, 4)), "empty"),
    "batch-wrong-width": (lambda: ld.predict(mlp(), torch.randn(16, 5)), "model raised"),
    "batch-nan": (lambda: ld.predict(mlp(), torch.full((16, 4), math.nan)), "finite"),
    "int-batch": (lambda: ld.predict(mlp(), torch.randint(0, 3, (16, 4))), "float"),
    "meta-model": (lambda: ld.predict(meta()["model"], input_stats=(4, 0.0, 1.0)), "meta"),
    "lazy-model": (lambda: ld.predict(lazy(False), input_stats=(4, 0.0, 1.0)), "lazy"),
    "raising-model": (lambda: ld.predict(RaisesLater(0), torch.randn(16, 4)), "model raised"),
}


@pytest.mark.parametrize("name", sorted(PREDICT))
def test_predict(name: str) -> None:
    fn, message = PREDICT[name]
    torch.manual_seed(0)
    if message is None:
        fn()
        return
    with pytest.raises(ld.LossDoctorError, match=message) as info:
        fn()
    assert "\n" not in str(info.value).strip()


# --------------------------------------------------------------------------------------------
# CLI

FACTORIES = '''
import sys
import torch
from torch import nn

def make():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
    return {"model": model, "inputs": torch.randn(16, 4),
            "targets": torch.randint(0, 3, (16,)), "loss_fn": nn.CrossEntropyLoss()}

def prints():
    print("hello from the factory")
    return make()

def exits0():
    sys.exit(0)

def exits3():
    sys.exit(3)

def nan_loss():
    made = make()
    made["inputs"][0, 0] = float("nan")
    return made

def model_prints():
    class P(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)
        def forward(self, x):
            print("in forward")
            return self.lin(x)
    made = make()
    made["model"] = P()
    return made
'''


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def target(tmp_path: Path) -> Path:
    p = tmp_path / "factories.py"
    p.write_text(FACTORIES)
    return p


def one_line_error(err: str, code: int, got: int, pattern: str) -> None:
    assert got == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lossdoctor: "), err
    assert re.search(pattern, lines[0]), err


CLI_ERRORS: dict[str, tuple[list[str], int, str]] = {
    "no-args-to-diagnose": (["diagnose"], 2, "either TARGET"),
    "unknown-command": (["diagnoze"], 2, "diagnoze"),
    "unknown-option": (["diagnose", "--nope"], 2, "--nope"),
    "bad-choice": (["diagnose", "--example", "nope"], 2, "nope"),
    "width-zero": (["diagnose", "--example", "healthy-mlp", "--width", "0"], 2, "width"),
    "width-text": (["diagnose", "--example", "healthy-mlp", "--width", "wide"], 2, "width"),
    "negative-verify": (["diagnose", "--example", "healthy-mlp", "--verify-steps", "-1"], 2,
                        "verify-steps"),
    "no-colon": (["diagnose", "file.py"], 2, "FILE.py:FACTORY"),
    "missing-file": (["diagnose", "nope.py:make"], 2, "no such file"),
    "lab-unknown-init": (["lab", "mlp", "--init", "glorot", "--steps", "0"], 2, "glorot"),
    "lab-init-arg-not-taken": (["lab", "mlp", "--init", "he:0.5", "--steps", "0"], 2, "he:0.5"),
    "lab-init-nan-std": (["lab", "mlp", "--init", "normal:nan", "--steps", "0"], 2, "nan"),
    "predict-nan-mean": (["predict", "--input-mean", "nan"], 2, "finite"),
    "predict-negative-sq": (["predict", "--input-sq", "-1"], 2, "second moment"),
    "predict-missing-file": (["predict", "nope.py:make"], 2, "no such file"),
    "task-not-a-choice": (["diagnose", "--example", "healthy-mlp", "--task", "ranking"], 2,
                          "ranking"),
    "target-and-example": (["diagnose", "x.py:make", "--example", "healthy-mlp"], 2,
                           "either TARGET"),
    "predict-dim-zero": (["predict", "--input-dim", "0"], 2, "input-dim"),
    "lab-unknown-dataset": (["lab", "mlp", "--dataset", "nope", "--steps", "0"], 2, "nope"),
}


@pytest.mark.parametrize("name", sorted(CLI_ERRORS))
def test_cli_misuse(name: str) -> None:
    args, code, pattern = CLI_ERRORS[name]
    got, _, err = cli(*args)
    one_line_error(err, code, got, pattern)


@pytest.mark.parametrize("factory", ["prints", "model_prints", "nan_loss", "make"])
def test_cli_json_is_strict(target: Path, factory: str) -> None:
    code, out, err = cli("diagnose", f"{target}:{factory}", "--json", "--verify-steps", "1")
    assert code == 0, err
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    assert "codes" in data


@pytest.mark.parametrize("factory", ["exits0", "exits3"])
def test_cli_factory_exit_is_an_error(target: Path, factory: str) -> None:
    code, out, err = cli("diagnose", f"{target}:{factory}", "--json")
    one_line_error(err, 2, code, "sys.exit")
    assert out == ""


@pytest.mark.parametrize("args", [[], ["--help"], ["lab"], ["diagnose", "--help"]])
def test_cli_help_is_not_an_error(args: list[str]) -> None:
    code, out, err = cli(*args)
    assert code == 0 and "Usage:" in out and err == ""


def test_cli_lab_json_is_strict_when_training_diverges() -> None:
    code, out, err = cli("lab", "mlp", "--dataset", "blobs", "--layers", "8", "--init",
                         "normal:50", "--lr", "1e30", "--steps", "3", "--no-dropout", "--json")
    assert code == 0, err
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    assert "nan" in data["losses"]


def test_cli_fail_on(target: Path) -> None:
    assert cli("diagnose", f"{target}:make", "--fail-on", "error", "--verify-steps", "0")[0] == 1
    assert cli("diagnose", f"{target}:make", "--verify-steps", "0")[0] == 0


def test_cli_internal_error_is_exit_3(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    d = sys.modules["lossdoctor.diagnose"]

    def broken(trace: Any) -> Any:
        raise KeyError("oops")

    monkeypatch.setattr(d, "run_checks", broken)
    code, _, err = cli("diagnose", f"{target}:make", "--verify-steps", "0")
    one_line_error(err, 3, code, "internal error")


def test_cli_fix_script_refuses_to_overwrite(target: Path, tmp_path: Path) -> None:
    before = target.read_text()
    code, _, err = cli("diagnose", f"{target}:make", "--fix-script", str(target))
    one_line_error(err, 2, code, "factory")
    assert target.read_text() == before
    existing = tmp_path / "fixed.py"
    existing.write_text("keep me")
    code, _, err = cli("diagnose", f"{target}:make", "--fix-script", str(existing))
    one_line_error(err, 2, code, "--force")
    assert existing.read_text() == "keep me"
    code, _, err = cli("diagnose", f"{target}:make", "--fix-script", str(existing), "--force",
                       "--verify-steps", "1")
    assert code == 0, err
    assert "keep me" not in existing.read_text()


def test_cli_fix_script_path_checked_before_diagnosing(target: Path, tmp_path: Path) -> None:
    code, out, err = cli("diagnose", f"{target}:prints", "--fix-script",
                         str(tmp_path / "no" / "dir" / "f.py"))
    one_line_error(err, 2, code, "directory")
    assert "hello from the factory" not in out + err  # refused before the factory ran


def test_matrix_is_broad() -> None:
    total = (len(CASES) + len(PREDICT) + len(CLI_ERRORS) + 4 + 2 + 4 + 4 + 1)
    assert total >= 80, total


def test_a_failing_restore_never_masks_the_original_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from lossdoctor.probe import guard

    def broken(self: Any) -> None:
        raise RuntimeError("restore failed")

    monkeypatch.setattr(guard.Snapshot, "restore", broken)
    with pytest.raises(ValueError, match="the original") as info:
        with guard.untouched(mlp()):
            raise ValueError("the original")
    assert any("restore failed" in n for n in getattr(info.value, "__notes__", []))


def test_restore_puts_back_a_replaced_and_reshaped_parameter() -> None:
    from lossdoctor.probe import guard

    model = mlp()
    before = state(model, None, None)
    with guard.untouched(model):
        model[0].weight = nn.Parameter(torch.zeros(2, 2))
        model[2].bias.data = torch.zeros(7)
        model.extra = nn.Linear(1, 1)
    assert_same(before, state(model, None, None))
