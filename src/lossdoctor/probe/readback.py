"""Per-tensor statistics: a few fused reductions per tensor, read back as one vector.

On the CPU a read-back costs nothing, so each tensor's statistics are read at once (one
``torch.stack`` and one ``.tolist()``); on other devices they stay on the device until one
read-back at the end of the probe. Statistics are computed with torch-function handling off, so
an op-interception mode that is active around the model does not see (or pay for) them.
"""

from __future__ import annotations

import math

import torch

# Order of the fields produced by :func:`reduce`.
FIELDS = ("mean", "rms", "std", "min", "max", "nonfinite", "zeros")

Values = torch.Tensor | list[float]


def _float(t: torch.Tensor) -> torch.Tensor:
    x = t.detach()
    if x.is_complex():
        x = x.abs()
    if not x.is_floating_point() or x.element_size() < 4:
        x = x.float()  # integers, bools and half precision are reduced in float32
    return x


def reduce(t: torch.Tensor, saturation_z: float | None = None) -> Values:
    """Reduce a tensor to the values of :data:`FIELDS` (and the saturated fraction).

    On the CPU: the sum, the 2-norm, min/max and the nonzero count in the tensor's own dtype
    (torch's CPU reductions are cascade sums: float32 keeps ~1e-7 relative accuracy) in one
    stack and one read-back; only if that shows a NaN/Inf are the non-finite elements masked out.
    Elsewhere: the masked path, left on the device.

    Args:
        t: any tensor; complex values are reduced by magnitude, integers and bools are cast.
        saturation_z: when given, one more value: the fraction of ``|t| >= saturation_z``.

    Returns:
        A list of floats (CPU) or a 1-D device tensor (other devices).
    """
    with torch._C.DisableTorchFunction():
        x = _float(t)
        n = x.numel()
        extra = 0 if saturation_z is None else 1
        if n == 0:
            return [0.0] * (len(FIELDS) + extra)
        if x.device.type != "cpu":
            return _reduce_masked(x, saturation_z)
        lo, hi = torch.aminmax(x)
        counts = [torch.count_nonzero(x)]
        if saturation_z is not None:
            counts.append(torch.count_nonzero(x.abs() >= saturation_z))
        # one stack in the tensor's dtype: counts are exact in float32 below 2^24 elements
        dtype = x.dtype if n < 2**24 else torch.float64
        s1, norm, mn, mx, nonzero, *sat = torch.stack(
            [x.sum().to(dtype), torch.linalg.vector_norm(x).to(dtype), lo.to(dtype),
             hi.to(dtype), *(c.to(dtype) for c in counts)]).tolist()
        if not (math.isfinite(s1) and math.isfinite(norm)):
            return _reduce_masked(x, saturation_z).tolist()
    mean, ms = s1 / n, norm * norm / n
    return [mean, math.sqrt(ms), math.sqrt(max(ms - mean * mean, 0.0)), mn, mx, 0.0, n - nonzero,
            *(s / n for s in sat)]


def _reduce_masked(x: torch.Tensor, saturation_z: float | None) -> torch.Tensor:
    acc = torch.float64 if x.device.type in ("cpu", "cuda") else torch.float32
    x = x.to(acc)
    finite = torch.isfinite(x)
    n = finite.sum()
    safe = torch.where(finite, x, torch.zeros((), dtype=acc, device=x.device))
    denom = n.clamp(min=1).to(acc)
    mean = safe.sum() / denom
    ms = (safe * safe).sum() / denom
    inf = torch.tensor(math.inf, dtype=acc, device=x.device)
    parts = [
        mean, ms.sqrt(), (ms - mean * mean).clamp(min=0).sqrt(),
        torch.where(finite, x, inf).min(), torch.where(finite, x, -inf).max(),
        (x.numel() - n).to(acc), (x == 0).sum().to(acc),
    ]
    if saturation_z is not None:
        parts.append((x.abs() >= saturation_z).sum().to(acc) / x.numel())
    return torch.stack(parts)


def rms(t: torch.Tensor) -> float:
    """Root mean square (0 for an empty tensor)."""
    with torch._C.DisableTorchFunction():
        x = t.detach()
        if x.numel() == 0:
            return 0.0
        if not x.is_floating_point():
            x = x.double()
        return float(torch.linalg.vector_norm(x).double()) / math.sqrt(x.numel())


def grad_stats(g: torch.Tensor) -> Values:
    """Sum of squares and non-finite count of a gradient."""
    with torch._C.DisableTorchFunction():
        x = _float(g)
        sq = torch.linalg.vector_norm(x).double().square()
        if x.device.type != "cpu":
            return torch.stack([sq, (~torch.isfinite(x)).sum().double()])
        value = float(sq)
        return [value, 0.0 if math.isfinite(value) else float((~torch.isfinite(x)).sum())]


class Readback:
    """Collects statistics vectors (floats, or device tensors read back in one transfer)."""

    def __init__(self) -> None:
        self._parts: list[Values] = []
        self._size = 0
        self._values: list[float] | None = None

    def add(self, vec: Values) -> slice:
        """Queue statistics; returns where their values will be."""
        if isinstance(vec, torch.Tensor):
            vec = vec.detach().reshape(-1)
            vec = vec.to(torch.float64 if vec.device.type != "mps" else vec.dtype)
        start = self._size
        self._parts.append(vec)
        self._size += len(vec) if isinstance(vec, list) else vec.numel()
        self._values = None
        return slice(start, self._size)

    def fetch(self) -> list[float]:
        """Every queued value, with the device tensors read back in one transfer."""
        if self._values is None:
            tensors = [p for p in self._parts if isinstance(p, torch.Tensor)]
            read = iter(torch.cat([p.cpu() for p in tensors]).tolist() if tensors else [])
            self._values = [v for p in self._parts
                            for v in (p if isinstance(p, list) else [next(read) for _ in
                                                                      range(p.numel())])]
            self._parts = [self._values]
        return self._values

    def get(self, where: slice) -> list[float]:
        """Values queued at ``where``."""
        return self.fetch()[where]
