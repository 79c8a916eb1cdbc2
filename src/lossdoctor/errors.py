"""Exceptions for mistakes in what the user passed (never for a diagnosed problem)."""

from typing import Any

MAX_MESSAGE = 1000


class LossDoctorError(Exception):
    """Base class: the input could not be diagnosed; the message (one line) says why."""

    def __init__(self, *args: Any) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            text = " ".join(args[0].split())  # torch's own messages span lines
            if len(text) > MAX_MESSAGE:
                text = text[:MAX_MESSAGE - 3] + "..."
            args = (text,)
        super().__init__(*args)


class ModelError(LossDoctorError):
    """The model raised while running the batch."""


class LossFnError(LossDoctorError):
    """``loss_fn`` raised or returned something that is not a scalar tensor."""


class FactoryError(LossDoctorError):
    """A ``FILE.py:FACTORY`` target could not be loaded or returned bad values."""


class OptimizerError(LossDoctorError):
    """The optimizer raised while stepping a copy (probe steps, verification)."""
