"""Watching a training run: the ``Monitor`` and its framework callbacks."""

from lossdoctor.monitor.monitor import FindingRaised, LossDoctorWarning, Monitor, NonFiniteLoss

__all__ = ["FindingRaised", "LossDoctorWarning", "Monitor", "NonFiniteLoss"]
