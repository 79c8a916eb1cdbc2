"""Measure one batch: scoped hooks and op interception that hand back a :class:`Trace`."""

from lossdoctor.probe.run import probe

__all__ = ["probe"]
