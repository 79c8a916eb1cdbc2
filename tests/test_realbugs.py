"""The real-bug benchmark (benchmarks/realbugs): its catalogue is well-formed, and a fast subset
keeps today's results (a bug found today stays found; a fixed program quiet today stays quiet and
keeps training). Today's numbers for the whole benchmark are in benchmarks/results/realbugs.json.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent / "benchmarks" / "realbugs"


def _load_runner() -> ModuleType:
    # loaded under its own name: the fault benchmark's run.py is also on pytest's path
    spec = importlib.util.spec_from_file_location("realbugs_run", ROOT / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["realbugs_run"] = module
    spec.loader.exec_module(module)
    return module


RUN = _load_runner()
BUGS = {b.id: b for b in RUN.BUGS}

from bug import KNOWN_CODES, SCOPES  # noqa: E402 - importable once the runner set the path

# bug id -> (an expected code found today, the first finding is expected today,
#            the fixed program is quiet today (None: no fixed program))
TODAY: dict[str, tuple[bool, bool, bool | None]] = {
    "deepmufl-66407123": (True, True, True),      # softmax on one unit -> loss-degenerate
    "deepmufl-48385830": (True, True, True),      # lr 3.0, N(0, 1) init -> init-loss-high
    "deepmufl-69901379": (True, True, True),      # unscaled regression -> input-not-normalized
    "deepmufl-59078187": (True, True, None),      # 10-way softmax for y = x^2 -> loss-task-mismatch
    "deepmufl-34673164": (True, True, True),      # MSE on softmax -> mse-on-saturating-output
    "deepmufl-46869312": (True, True, True),      # BCE on targets in [-1, 1] -> labels-out-of-range
    "deepmufl-41596619": (True, True, False),     # labels 0..3 into BCE; its fix gets lr-too-high
    "deepmufl-50306988": (True, True, True),      # training run: loss-plateau from the monitor
    "DeepFD-50079585": (True, True, True),        # 3 classes into one sigmoid -> labels-out-of-range
    "TheDeepChecker-IPS_15": (True, True, True),  # lr 0.5 on an unscaled feature -> lr-too-high
    "TheDeepChecker-IPS_17": (True, True, True),  # sum of squares, lr 0.01 -> lr-too-high
    "forums-discuss.pytorch.org/t/43814": (True, True, True),  # softmax into CrossEntropyLoss
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    """Small models: one thread is faster than two fighting over a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_catalogue_is_well_formed() -> None:
    bugs = list(BUGS.values())
    assert len(bugs) == len(RUN.BUGS), "duplicate ids"
    assert sum(b.scored for b in bugs) >= 100
    assert sum(b.has_fix for b in bugs) >= 40
    for b in bugs:
        assert b.source_id and b.source and b.title and b.symptom and b.cause, b.id
        assert b.id == f"{b.source}-{b.source_id}"
        assert b.expected <= KNOWN_CODES, (b.id, b.expected - KNOWN_CODES)
        assert b.scope in SCOPES
    sources = {b.source for b in bugs}
    assert {"deepmufl", "DeepFD", "TheDeepChecker"} <= sources


def test_published_results_cover_the_deepmufl_bugs() -> None:
    from baselines import DEEPMUFL_TABLE
    ids = {b.source_id for b in BUGS.values() if b.source == "deepmufl"}
    assert ids == set(DEEPMUFL_TABLE)


def test_fast_subset_is_the_runner_fast_subset() -> None:
    assert set(TODAY) == set(RUN.FAST)
    assert set(TODAY) <= set(BUGS)


@pytest.mark.parametrize("bug_id", sorted(TODAY))
def test_todays_result_holds(bug_id: str) -> None:
    found, top1, quiet = TODAY[bug_id]
    bug = BUGS[bug_id]
    row = RUN.score(bug)
    assert row["crash"] is None, row["crash"]
    if found:
        assert row["detected"], f"{bug.expected} no longer found; got {row['found']}"
    if top1:
        assert row["top1"], f"first finding {row['first']}, expected one of {bug.expected}"
    assert ("fixed" in row) == (quiet is not None)
    if quiet is not None:
        fixed = row["fixed"]
        assert fixed["trains"], (fixed.get("before"), fixed.get("after"))
        if quiet:
            assert not fixed["loud"], fixed["loud"]
