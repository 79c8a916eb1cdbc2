"""Rules for ops that move elements without changing them: views, permutes, slices, joins.

The moments move with the elements: a permute permutes the statistics, a view pairs old and new
dims (:func:`~lossdoctor.theory.moments.reshape`), a slice along a feature dim slices them and
along a homogeneous dim leaves them, a concatenation stacks the parts' statistics.
"""

from __future__ import annotations

from typing import Any

import torch

from lossdoctor.theory.moments import Lift, Moments, Unsupported, full, make, reshape
from lossdoctor.theory.positions import Pos, permuted


def _first(lift: Lift, args: tuple[Any, ...]) -> tuple[torch.Tensor, Moments]:
    x = args[0]
    mo = lift(x)
    if not isinstance(x, torch.Tensor) or mo is None:
        raise Unsupported("no input moments")
    return x, mo


def view(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """view / reshape / flatten / unflatten / squeeze / unsqueeze."""
    x, mo = _first(lift, args)
    return reshape(mo, tuple(x.shape), tuple(out.shape))


def same(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """contiguous / to / clone / detach / float: the values are unchanged."""
    x, mo = _first(lift, args)
    if tuple(x.shape) != tuple(out.shape):
        raise Unsupported("shape changed")
    return mo


def transpose(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """transpose(d0, d1) / t()."""
    x, mo = _first(lift, args)
    if x.dim() < 2:
        return mo
    d0 = kwargs.get("dim0", args[1] if len(args) > 1 else 0) % x.dim()
    d1 = kwargs.get("dim1", args[2] if len(args) > 2 else 1) % x.dim()
    order = list(range(x.dim()))
    order[d0], order[d1] = d1, d0
    return Moments(mo.m.transpose(d0, d1), mo.v.transpose(d0, d1),
                   pos=permuted(mo.pos, order, x.dim()))


def permute(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """permute(*dims)."""
    x, mo = _first(lift, args)
    dims = kwargs.get("dims", args[1:])
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    return Moments(mo.m.permute(*dims), mo.v.permute(*dims),
                   pos=permuted(mo.pos, dims, x.dim()))


def expand(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """expand / expand_as / broadcast_to: repeated values, so the same statistics."""
    _, mo = _first(lift, args)
    return make(mo.m, mo.v, out.dim(), pos=mo.pos)


def getitem(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """Basic indexing (ints, slices, None, Ellipsis); a homogeneous dim keeps its statistics."""
    x, mo = _first(lift, args)
    index = args[1] if isinstance(args[1], tuple) else (args[1],)
    if any(isinstance(i, (torch.Tensor, list, bool)) for i in index):
        raise Unsupported("advanced indexing")
    n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise Unsupported("two ellipses")
    expanded: list[Any] = []
    for i in index:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (x.dim() - n_real))
        else:
            expanded.append(i)
    idx: list[Any] = []
    d = 0
    new_d = 0
    pos_d = x.dim() + mo.pos.dim if mo.pos is not None else -1
    keep: int | None = None
    for i in expanded:
        if i is None:
            idx.append(None)
            new_d += 1
            continue
        if d == pos_d and i == slice(None):
            keep = new_d
        new_d += 0 if isinstance(i, int) else 1
        homogeneous = mo.m.shape[d] == 1
        if isinstance(i, int):
            idx.append(0 if homogeneous else i)
        elif isinstance(i, slice):
            idx.append(slice(None) if homogeneous else i)
        else:
            raise Unsupported("index type")
        d += 1
    m, v = mo.m[tuple(idx)], mo.v[tuple(idx)]
    if m.dim() != out.dim():
        raise Unsupported("index result")
    if pos_d >= d:  # dims the index did not name are taken whole
        keep = new_d + pos_d - d
    pos = mo.pos if keep is None or mo.pos is None else Pos(keep - out.dim(), mo.pos.inner,
                                                            mo.pos.size, mo.pos.rho)
    return Moments(m, v, pos=pos if keep is not None else None)


def split(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> list[Moments]:
    """split / chunk / unbind / tensor_split along one dim."""
    x, mo = _first(lift, args)
    outs = list(out)
    dim = kwargs.get("dim", args[2] if len(args) > 2 else 0)
    if not isinstance(dim, int):
        raise Unsupported("dim")
    dim %= x.dim()
    unbind = all(o.dim() == x.dim() - 1 for o in outs)
    sizes = [1 if unbind else int(o.shape[dim]) for o in outs]
    pos = mo.pos if mo.pos is not None and x.dim() + mo.pos.dim != dim and not unbind else None
    if mo.m.shape[dim] == 1:
        parts = [(mo.m, mo.v)] * len(outs)
    else:
        parts = list(zip(torch.split(mo.m, sizes, dim), torch.split(mo.v, sizes, dim),
                         strict=True))
    if unbind:
        return [Moments(m.squeeze(dim), v.squeeze(dim)) for m, v in parts]
    return [Moments(m, v, pos=pos) for m, v in parts]


def cat(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """cat / concat / stack: the parts' statistics side by side along the joined dim."""
    tensors = [t for t in kwargs.get("tensors", args[0])  # legacy: empty 1-D parts are skipped
               if not (isinstance(t, torch.Tensor) and t.dim() == 1 and t.numel() == 0)]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    if len(tensors) == 1 and tensors[0].shape == out.shape:  # e.g. an empty key/value cache
        mo = lift(tensors[0])
        if mo is None:
            raise Unsupported("part without moments")
        return mo
    stack = out.dim() == tensors[0].dim() + 1
    dim %= out.dim()
    parts = []
    for t in tensors:
        mo = lift(t)
        if mo is None:
            raise Unsupported("part without moments")
        if stack:
            mo = Moments(mo.m.unsqueeze(dim), mo.v.unsqueeze(dim))
        parts.append((mo, tuple(t.shape) if not stack else (*t.shape[:dim], 1, *t.shape[dim:])))
    nd = out.dim()
    feature = [d for d in range(nd) if d != dim and any(mo.m.shape[d] > 1 for mo, _ in parts)]
    ms, vs = [], []
    for mo, shape in parts:
        ms.append(full(mo.m, shape, [*feature, dim]))
        vs.append(full(mo.v, shape, [*feature, dim]))
    pos = next((mo.pos for mo, _ in parts if mo.pos is not None), None)
    if pos is not None and nd + pos.dim == dim:
        pos = None
    return make(torch.cat(ms, dim), torch.cat(vs, dim), nd, pos=pos)


def repeat(lift: Lift, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Moments:
    """repeat(*sizes): tiles, so feature dims are tiled and homogeneous ones stay."""
    x, mo = _first(lift, args)
    reps = args[1:] if len(args) > 1 else kwargs.get("repeats", ())
    if len(reps) == 1 and isinstance(reps[0], (tuple, list)):
        reps = reps[0]
    m, v = make(mo.m, mo.v, len(reps)).m, make(mo.m, mo.v, len(reps)).v
    tiles = [r if m.shape[i] > 1 else 1 for i, r in enumerate(reps)]
    return Moments(m.repeat(*tiles), v.repeat(*tiles))
