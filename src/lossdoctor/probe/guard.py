"""The untouched-model guarantee: snapshot everything diagnosis could disturb, restore it.

Parameters, buffers (BatchNorm running statistics move in a train-mode forward), gradients,
``requires_grad`` flags, train/eval modes and the torch, numpy and Python RNG states (dropout
draws random numbers) are restored in ``finally``, also when the model or the loss raises. So is
the module tree itself: submodules, parameters and buffers a forward registers on its first call
are removed again, and plain attributes it rebinds or edits (a call counter, a stashed tensor, a
list it appends to) are put back, for the model and for a stateful loss (module or object).

Parameters and gradients are cloned once per diagnosis: a snapshot taken inside another one that
covers the same model (a stage of the diagnosis) shares the outer copies of them and restores
them to those values, comparing before writing; only buffers, attributes, modes and RNG states are
taken again at each stage.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

import numpy as np
import torch
from torch import nn


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.is_sparse or b.is_sparse or a.is_meta or b.is_meta:
        return False  # no equality kernel: always copy back
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))


def _put_back(t: torch.Tensor, value: torch.Tensor) -> None:
    """Write ``value`` into ``t``; swap the data when ``.data`` was replaced by another shape."""
    if t.shape == value.shape and t.dtype == value.dtype and t.device == value.device:
        t.copy_(value)
    else:
        t.data = value


class _Attrs:
    """The plain attributes of one object: bindings, container contents, tensor values."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.bound = dict(obj.__dict__)
        self.contents: list[tuple[Any, Any]] = []
        self.tensors: list[tuple[torch.Tensor, torch.Tensor]] = []
        for value in self.bound.values():
            if isinstance(value, (dict, list, set, bytearray)):
                self.contents.append((value, value.copy()))
            elif isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                with torch.no_grad():
                    self.tensors.append((value, value.detach().clone()))

    def restore(self) -> None:
        d = self.obj.__dict__
        for k in [k for k in d if k not in self.bound]:
            del d[k]
        for k, v in self.bound.items():
            if k not in d or d[k] is not v:
                d[k] = v
        for container, value in self.contents:  # by identity: values may be tensors
            if isinstance(container, (dict, set)):
                container.clear()
                container.update(value)
            else:
                container[:] = value
        with torch.no_grad():
            for t, value in self.tensors:
                if not _equal(t, value):
                    _put_back(t, value)


def _modules(root: Any) -> list[nn.Module]:
    return list(root.modules()) if isinstance(root, nn.Module) else []


def _plain_objects(root: Any) -> list[Any]:
    """Objects besides modules whose attributes a call can change (a callable loss object)."""
    if isinstance(root, (nn.Module, FunctionType, BuiltinFunctionType, MethodType, type)):
        return []
    return [root] if hasattr(root, "__dict__") else []


_ParamRecord = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None,
                     torch.Tensor | None, bool]
_ACTIVE = threading.local()  # .stack: the snapshots of the untouched() blocks now running


def _active() -> list[Snapshot]:
    if not hasattr(_ACTIVE, "stack"):
        _ACTIVE.stack = []
    return _ACTIVE.stack  # type: ignore[no-any-return]


def _record(p: torch.Tensor, clone: bool) -> _ParamRecord:
    grad = p.grad
    if not clone:
        return (p, None, grad, None, p.requires_grad)
    return (p, p.detach().clone(), grad, None if grad is None else grad.detach().clone(),
            p.requires_grad)


class Snapshot:
    """Everything about a model and the global RNGs that a forward/backward can change.

    Args:
        model: the model.
        *others: more objects the diagnosis calls (the loss: a module or a callable object).
        params: clone parameter and gradient values; False for a copy the diagnosis made itself,
            whose parameters only its own training writes (identities, ``requires_grad`` and
            everything else are still restored). Inside an active :func:`untouched` block over
            the same model the outer values are shared instead of cloned.
    """

    def __init__(self, model: nn.Module, *others: Any, params: bool = True) -> None:
        others = tuple(o.__self__ if isinstance(o, MethodType) else o for o in others)
        self.model = model
        modules = list(dict.fromkeys(m for root in (model, *others) for m in _modules(root)))
        outer = next((s for s in reversed(_active()) if s.model is model), None)
        shared = {id(r[0]): r for r in outer.params} if outer is not None else {}
        self.params: list[_ParamRecord]
        with torch.no_grad():
            self.params = [
                shared.get(id(p)) or _record(p, params)
                for p in dict.fromkeys(p for m in modules for p in m.parameters(recurse=False))
            ]
            self.buffers = [
                (m, name, b, b.detach().clone())
                for m in modules
                for name, b in m._buffers.items()
                if b is not None
            ]
        self.modes = [(m, m.training) for m in modules]
        self.attrs = [_Attrs(m) for m in modules]
        self.attrs += [_Attrs(o) for root in others for o in _plain_objects(root)]
        self.torch_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        self.numpy_rng = np.random.get_state()
        self.python_rng = random.getstate()

    def restore(self) -> None:
        """Put every recorded value back, keeping the original tensor objects."""
        for attrs in self.attrs:  # the tree first: the values below go into its objects
            attrs.restore()
        with torch.no_grad():
            for p, value, grad, grad_value, requires_grad in self.params:
                if value is not None and not _equal(p, value):
                    _put_back(p, value)
                if p.grad is not grad:
                    p.grad = grad
                if grad is not None and grad_value is not None and not _equal(grad, grad_value):
                    _put_back(grad, grad_value)
                if p.requires_grad != requires_grad:
                    p.requires_grad_(requires_grad)
            for m, name, buf, value in self.buffers:
                m._buffers[name] = buf
                if not _equal(buf, value):
                    _put_back(buf, value)
        for m, training in self.modes:
            m.training = training
        torch.set_rng_state(self.torch_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        np.random.set_state(self.numpy_rng)
        random.setstate(self.python_rng)


@contextmanager
def untouched(model: nn.Module, *others: Any, params: bool = True) -> Iterator[Snapshot]:
    """Run a block and leave ``model`` (and ``others``) and the global RNGs exactly as they were.

    When the block raises, that error is what propagates: a failure to restore is attached to it
    as a note rather than replacing it. ``params``: see :class:`Snapshot`.
    """
    snap = Snapshot(model, *others, params=params)
    stack = _active()
    stack.append(snap)
    try:
        yield snap
    except BaseException as e:
        try:
            snap.restore()
        except Exception as r:  # noqa: BLE001 - never mask the original error
            e.add_note(f"lossdoctor: restoring the model also failed: {type(r).__name__}: {r}")
        raise
    finally:
        stack.remove(snap)
    snap.restore()
