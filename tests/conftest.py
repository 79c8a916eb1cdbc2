"""Shared fixtures: diagnoses that several test modules read."""

from __future__ import annotations

import pytest

import lossdoctor as ld
from lossdoctor.examples import EXAMPLES


@pytest.fixture(scope="session")
def story1() -> ld.Report:
    """Story 1 (the deep ReLU MLP with truncated_normal(0.5)), diagnosed once per session."""
    return ld.diagnose(**EXAMPLES["deep-relu"]())
