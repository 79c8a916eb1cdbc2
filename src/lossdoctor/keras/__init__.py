"""Keras 3 (torch and TensorFlow backends): a probe that fills the same :class:`~lossdoctor.Trace`.

``ld.diagnose(keras_model, x, y)`` dispatches here; :class:`LossDoctorCallback` watches
``model.fit``. Importing this package does not import Keras until one of them is used, and
``import lossdoctor`` never does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LossDoctorCallback", "diagnose_keras"]


def __getattr__(name: str) -> Any:
    if name == "LossDoctorCallback":
        from lossdoctor.keras.callback import LossDoctorCallback

        return LossDoctorCallback
    if name == "diagnose_keras":
        from lossdoctor.keras.diagnose import diagnose_keras

        return diagnose_keras
    raise AttributeError(f"module 'lossdoctor.keras' has no attribute {name!r}")
