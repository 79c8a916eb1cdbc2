"""Causes: which finding explains which (``graph``), and findings grouped under their root."""

from lossdoctor.causes.cause import Cause, Symptom, find_causes
from lossdoctor.causes.graph import GRAPH, Link

__all__ = ["GRAPH", "Cause", "Link", "Symptom", "find_causes"]
