"""Statistics stay on the device until one read-back at the end of the probe."""

from __future__ import annotations

import math

import torch

# Order of the fields produced by :func:`reduce`.
FIELDS = ("mean", "rms", "std", "min", "max", "nonfinite", "zeros")


def reduce(t: torch.Tensor) -> torch.Tensor:
    """Reduce a tensor to a small vector of statistics without leaving its device.

    The fast path takes sums in the tensor's own dtype and no masking. If that shows a NaN/Inf
    (on the CPU, where looking costs nothing), or on other devices always, the finite-only path
    masks the non-finite elements out.

    Args:
        t: any tensor; complex values are reduced by magnitude, integers and bools are cast.

    Returns:
        A 1-D tensor with the values of :data:`FIELDS` (finite elements only for the moments).
    """
    x = t.detach()
    if x.is_complex():
        x = x.abs()
    if not x.is_floating_point() or x.element_size() < 4:
        x = x.float()  # integers, bools and half precision are summed in float32
    acc = torch.float64 if x.device.type in ("cpu", "cuda") else torch.float32
    if x.numel() == 0:
        return torch.zeros(len(FIELDS), dtype=acc, device=x.device)
    if x.device.type == "cpu":
        # torch's CPU sum is a cascade (pairwise) sum: float32 keeps ~1e-7 relative accuracy
        # and is several times faster than accumulating in float64.
        s1 = x.sum().to(acc)
        s2 = x.square().sum().to(acc)
        if bool(torch.isfinite(s1)) and bool(torch.isfinite(s2)):
            n = x.numel()
            mean, ms = s1 / n, s2 / n
            lo, hi = torch.aminmax(x)
            return torch.stack([
                mean, ms.sqrt(), (ms - mean * mean).clamp(min=0).sqrt(), lo.to(acc), hi.to(acc),
                torch.zeros((), dtype=acc), (x == 0).sum().to(acc),
            ])
    return _reduce_masked(x.to(acc))


def _reduce_masked(x: torch.Tensor) -> torch.Tensor:
    dtype = x.dtype
    finite = torch.isfinite(x)
    n = finite.sum()
    safe = torch.where(finite, x, torch.zeros((), dtype=dtype, device=x.device))
    denom = n.clamp(min=1).to(dtype)
    mean = safe.sum() / denom
    ms = (safe * safe).sum() / denom
    inf = torch.tensor(math.inf, dtype=dtype, device=x.device)
    return torch.stack(
        [
            mean,
            ms.sqrt(),
            (ms - mean * mean).clamp(min=0).sqrt(),
            torch.where(finite, x, inf).min(),
            torch.where(finite, x, -inf).max(),
            (x.numel() - n).to(dtype),
            (x == 0).sum().to(dtype),
        ]
    )


def rms(t: torch.Tensor) -> torch.Tensor:
    """Root mean square (0 for an empty tensor), on-device."""
    x = t.detach()
    if x.numel() == 0:
        return torch.zeros((), dtype=torch.float64, device=x.device)
    if not x.is_floating_point():
        x = x.double()
    return (x.square().sum().double() / x.numel()).sqrt()


class Readback:
    """Collects on-device statistic vectors and reads them all back in one transfer."""

    def __init__(self) -> None:
        self._parts: list[torch.Tensor] = []
        self._size = 0
        self._values: list[float] | None = None

    def add(self, vec: torch.Tensor) -> slice:
        """Queue a 1-D statistics tensor; returns where its values will be."""
        vec = vec.detach().reshape(-1).to(torch.float64 if vec.device.type != "mps" else vec.dtype)
        start = self._size
        self._parts.append(vec)
        self._size += vec.numel()
        return slice(start, self._size)

    def scalar(self, value: torch.Tensor) -> slice:
        """Queue a single scalar."""
        return self.add(value.reshape(1))

    def fetch(self) -> list[float]:
        """Read every queued value back to the host (once)."""
        if self._values is None:
            if self._parts:
                self._values = torch.cat([p.cpu() for p in self._parts]).tolist()
            else:
                self._values = []
            self._parts = []
        return self._values

    def get(self, where: slice) -> list[float]:
        """Values queued at ``where``."""
        return self.fetch()[where]
