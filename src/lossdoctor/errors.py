"""Exceptions for mistakes in what the user passed (never for a diagnosed problem)."""


class LossDoctorError(Exception):
    """Base class: the input could not be diagnosed; the message says why."""


class ModelError(LossDoctorError):
    """The model raised while running the batch."""


class LossFnError(LossDoctorError):
    """``loss_fn`` raised or returned something that is not a scalar tensor."""


class FactoryError(LossDoctorError):
    """A ``FILE.py:FACTORY`` target could not be loaded or returned bad values."""


class OptimizerError(LossDoctorError):
    """The optimizer raised while stepping a copy (probe steps, verification)."""
