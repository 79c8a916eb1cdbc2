"""The real-bug benchmark's records: a bug ported from a public benchmark, and the program it runs.

Each bug is a faithful PyTorch port of a real deep-learning fault (a StackOverflow question, a
GitHub commit) taken from a published benchmark (deepmufl, DeepFD, ...). ``make(fixed=False)``
builds the buggy program, ``make(fixed=True)`` the program with the accepted answer / benchmark
patch applied (only when ``fix`` says what that patch is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# The finding codes of DESIGN.md plus the four being added for issue 11.
KNOWN_CODES = frozenset({
    "init-loss-high", "signal-exploding", "signal-vanishing", "grad-exploding", "grad-vanishing",
    "saturation", "dead-relu", "nonfinite", "mse-on-saturating-output", "double-softmax",
    "loss-task-mismatch", "labels-out-of-range", "loss-degenerate", "log-of-zero",
    "weight-decay-on-bias", "regularization-dominates", "adam-coupled-l2", "sum-reduction",
    "stale-gradients", "lr-too-high", "lr-too-low", "input-not-normalized", "loss-plateau",
    "loss-oscillating", "loss-diverging",
    # being added now (issue 11)
    "output-range-mismatch", "non-probability-into-prob-loss", "labels-degenerate",
    "head-label-mismatch",
})

SCOPES = ("batch", "training")


@dataclass
class Program:
    """A training set-up as the original author wrote it, ported to PyTorch.

    Attributes:
        model: the network (Keras defaults translated explicitly).
        x: all training inputs.
        y: all training targets, in the shape the loss receives them.
        loss_fn: ``(output, targets) -> scalar``.
        optimizer: the original optimizer and learning rate.
        batch_size: the original batch size (Keras default 32); the first batch is diagnosed.
        steps: optimizer steps for a training run (monitor scope, fixed-program check).
        classes: number of classes for the accuracy check (0 for regression).
        accuracy: ``(output, y) -> fraction correct`` used to check that a program trains.
        chance: the accuracy of always answering the majority class, when the runner cannot
            read it off ``y`` (structured targets).
    """

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    loss_fn: Callable[[Any, Any], torch.Tensor]
    optimizer: torch.optim.Optimizer
    batch_size: int = 32
    steps: int = 150
    classes: int = 0
    accuracy: Callable[[torch.Tensor, torch.Tensor], float] | None = None
    chance: float | None = None

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first batch: what ``diagnose`` sees."""
        b = min(self.batch_size, len(self.x))
        return self.x[:b], self.y[:b]


@dataclass(frozen=True)
class Bug:
    """One real bug.

    Attributes:
        id: ``<source>-<source_id>``.
        source: the benchmark it comes from (``deepmufl``, ``DeepFD``, ...).
        source_id: the StackOverflow question number / GitHub project of the original.
        title: the original question's title or a one-line description.
        symptom: what the original author saw.
        cause: the ground-truth root cause (the benchmark's label, or the accepted answer).
        expected: lossdoctor codes that count as naming the cause; empty when no code does
            (then the bug is listed but not scored).
        scope: ``batch`` (visible on one batch: ``diagnose``) or ``training`` (needs a short
            training run under ``ld.Monitor``).
        make: ``make(fixed)`` builds the buggy (or fixed) program.
        fix: the accepted answer / benchmark patch, when ``make(True)`` applies it.
        port_notes: where the port departs from the original (sizes, data).
    """

    id: str
    source: str
    source_id: str
    title: str
    symptom: str
    cause: str
    expected: frozenset[str]
    scope: str
    make: Callable[[bool], Program]
    fix: str = ""
    port_notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """Whether the bug counts in recall (some lossdoctor code names its cause)."""
        return bool(self.expected)

    @property
    def has_fix(self) -> bool:
        """Whether a fixed program exists for it."""
        return bool(self.fix)


class Registry:
    """Collects the bugs of one source module through a decorator."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.bugs: list[Bug] = []

    def __call__(self, source_id: str, *, title: str, symptom: str, cause: str,
                 expected: tuple[str, ...] | frozenset[str] = (), scope: str = "batch",
                 fix: str = "", notes: str = "") -> Callable[[Callable[[bool], Program]],
                                                             Callable[[bool], Program]]:
        def register(make: Callable[[bool], Program]) -> Callable[[bool], Program]:
            codes = frozenset(expected)
            unknown = codes - KNOWN_CODES
            if unknown:
                raise ValueError(f"{source_id}: unknown codes {sorted(unknown)}")
            if scope not in SCOPES:
                raise ValueError(f"{source_id}: scope must be one of {SCOPES}")
            self.bugs.append(Bug(f"{self.source}-{source_id}", self.source, source_id, title,
                                 symptom, cause, codes, scope, make, fix, notes))
            return make
        return register
