"""The untouched guarantee for Keras: every variable, the optimizer's variables and the RNGs.

A training-mode forward moves BatchNormalization's moving statistics and every Dropout's seed
generator state (both are model variables); cloning a model draws default seeds from Python's
``random``; a backend op with no seed uses Keras' global seed generator. All of it is copied on
entry and written back in ``finally``, also when the model or the loss raises.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from lossdoctor.keras.backend import to_numpy


def _variables(obj: Any) -> list[Any]:
    if obj is None:
        return []
    return list(getattr(obj, "variables", []) or [])


def _global_seed_generator() -> Any:
    from keras.src.backend.common import global_state

    return global_state.get_global_attribute("global_seed_generator")


@contextmanager
def untouched(model: Any, optimizer: Any = None, loss: Any = None) -> Iterator[None]:
    """Restore the model's and the optimizer's variables and every RNG state on exit."""
    tracked = [*_variables(model), *_variables(optimizer), *_variables(loss)]
    seeds = _global_seed_generator()
    if seeds is not None:
        tracked.append(seeds.state)
    values = [to_numpy(v).copy() for v in tracked]
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = _torch_rng()
    try:
        yield
    finally:
        for v, value in zip(tracked, values, strict=True):
            if not np.array_equal(to_numpy(v), value, equal_nan=value.dtype.kind == "f"):
                v.assign(value)
        random.setstate(py_state)
        np.random.set_state(np_state)
        if torch_state is not None:
            import torch

            torch.set_rng_state(torch_state)
        from keras.src.backend.common import global_state

        if seeds is None and _global_seed_generator() is not None:
            global_state.set_global_attribute("global_seed_generator", None)


def _torch_rng() -> Any:
    import sys

    torch = sys.modules.get("torch")
    return torch.get_rng_state() if torch is not None else None
