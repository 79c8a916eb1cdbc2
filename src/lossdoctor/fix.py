"""``fix``: apply every verified fix together on a copy, re-diagnose until clean, train both.

Round by round, the copy is diagnosed, every mechanical fix that verified is applied to it (once
each, the root causes' first; an info finding's verified fix too, e.g. a learning rate far too
low), and the result is diagnosed again, until no warning or error and no verified fix is left,
no new fix verifies, or ``rounds`` is reached. A learning-rate change verified next to a
re-initialisation waits for the next round: it was judged on the broken init. Then the original
(a copy) and the repaired copy train ``steps`` optimizer steps with the same RNG state, on the
batch or on ``data``, and are evaluated on the batch. The user's objects are only read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lossdoctor.case import Case, copy_case
from lossdoctor.diagnose import diagnose
from lossdoctor.errors import LossDoctorError
from lossdoctor.fmt import g
from lossdoctor.probe.run import call_model
from lossdoctor.probe.steps import DEFAULT_LR, DEFAULT_MOMENTUM, needs_closure
from lossdoctor.repairs.registry import repair_named
from lossdoctor.report import Report
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Task, Trace

LR_REPAIRS = ("lower-lr", "raise-lr")


@dataclass(frozen=True)
class Applied:
    """One fix applied to the repaired copy.

    Attributes:
        round: the diagnosis round (1-based) that verified it.
        repair: the mechanical repair's name.
        code: the finding it answers.
        message: its verification, with the numbers.
        script: the line that applies it in a fix script.
    """

    round: int
    repair: str
    code: str
    message: str
    script: str


@dataclass(frozen=True)
class Trained:
    """A short training run and its result on the batch.

    Attributes:
        losses: the training loss before each step and after the last.
        loss: the loss on the batch after training (eval mode).
        accuracy: the share of the batch predicted right, for classification (per label for
            multilabel; else None).
        r2: for regression, 1 - SSE/SST of the outputs on the batch (else None).
    """

    losses: list[float]
    loss: float
    accuracy: float | None
    r2: float | None = None


@dataclass(frozen=True)
class FixResult:
    """What ``fix`` did and how both set-ups trained.

    Attributes:
        case: the repaired copy (model, inputs, targets, loss_fn, optimizer).
        applied: the fixes, in the order applied.
        reports: the diagnosis of every round (the first is the original's).
        final: the diagnosis of the repaired copy.
        original: the original set-up trained ``steps`` steps (on a copy).
        repaired: the repaired set-up trained the same steps.
        steps: optimizer steps of the comparison.
    """

    case: Case
    applied: list[Applied]
    reports: list[Report]
    final: Report
    original: Trained
    repaired: Trained
    steps: int
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Whether the repaired copy has no warning or error left."""
        return not self.final.has("warning")

    def script_lines(self) -> list[str]:
        """The lines that rebuild the repair on a freshly made ``case``."""
        out = []
        for a in self.applied:
            out += [f"# round {a.round}, {a.code}: {a.message}", a.script]
        return out

    def render(self) -> str:
        """A plain-text summary."""
        lines = [f"lossdoctor fix: {len(self.applied)} fix(es) in {len(self.reports)} "
                 f"diagnosis round(s)"]
        for a in self.applied:
            lines.append(f"  round {a.round}: {a.repair} for {a.code}: {a.message}")
        left = sorted({f.code for f in self.final.findings if f.severity != "info"})
        info = sorted({f.code for f in self.final.findings if f.severity == "info"})
        lines.append("repaired copy: " + ("no warning or error left" if not left else
                                          "still found: " + ", ".join(left))
                     + (f" (info: {', '.join(info)})" if info else ""))
        lines.append(f"trained {self.steps} steps (same RNG state), evaluated on the batch:")
        for name, t in (("original", self.original), ("repaired", self.repaired)):
            acc = "" if t.accuracy is None else f", accuracy {100 * t.accuracy:.1f}%"
            acc += "" if t.r2 is None else f", R^2 {t.r2:.3f}"
            first = t.losses[0] if t.losses else math.nan
            lines.append(f"  {name:9s} training loss {g(first)} -> {g(t.losses[-1])}; "
                         f"loss on the batch {g(t.loss)}{acc}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.render()


def _round(case: Case, report: Report, n: int) -> tuple[Case, list[Applied]]:
    """Apply every verified fix of one report to the case, root causes first."""
    order = [c.index for c in report.causes] + list(range(len(report.findings)))
    todo, seen = [], set()
    for i in order:
        f = report.findings[i]
        v = f.verification
        repair = repair_named(v.repair) if v is not None else None
        if repair is None or v is None or v.status != "verified" or repair.name in seen:
            continue
        seen.add(repair.name)
        todo.append((repair, f))
    if any(r.name not in LR_REPAIRS for r, _ in todo):
        todo = [(r, f) for r, f in todo if r.name not in LR_REPAIRS]  # judged again next round
    applied = []
    for repair, f in todo:
        case = repair.apply(case, report.trace, f)
        assert f.verification is not None
        applied.append(Applied(n, repair.name, f.code, f.verification.message,
                               repair.script(report.trace, f)))
    return case, applied


def _verified(report: Report) -> bool:
    """Whether any finding (an info one included) carries a verified fix."""
    return any(f.verification is not None and f.verification.status == "verified"
               for f in report.findings)


def _batches(inputs: Any, targets: Any, data: Iterable[Any] | None) -> Iterator[tuple[Any, Any]]:
    if data is None:
        while True:
            yield inputs, targets
    while True:
        empty = True
        for batch in data:
            empty = False
            x, y = batch
            yield x, y
        if empty:
            raise LossDoctorError("data yielded no batch")


def _accuracy(output: torch.Tensor, targets: Any, trace: Trace) -> float | None:
    """Share predicted right: per example (multiclass, binary) or per label (multilabel)."""
    if not isinstance(targets, torch.Tensor) or \
            trace.task not in ("multiclass", "binary", "multilabel"):
        return None
    out = output.detach().float()
    if trace.task == "multilabel":
        prob = trace.output is not None and trace.output.producer == "sigmoid"
        if out.shape != targets.shape:
            return None
        return float(((out > (0.5 if prob else 0.0)) == (targets > 0.5)).float().mean())
    if trace.task == "multiclass" and out.dim() >= 2 and out.shape[-1] > 1:
        pred = out.argmax(-1)
        y = targets.argmax(-1) if targets.is_floating_point() and targets.dim() == out.dim() \
            else targets
    else:
        prob = trace.output is not None and trace.output.producer in ("sigmoid", "softmax")
        pred = (out > (0.5 if prob else 0.0)).long().reshape(-1)
        y = targets.reshape(-1).round().long()
    if pred.shape != y.shape:
        return None
    return float((pred == y).float().mean())


def train(case: Case, steps: int, trace: Trace, data: Iterable[Any] | None = None) -> Trained:
    """Train ``case`` (a copy) ``steps`` steps from a fixed RNG state; evaluate on its batch."""
    model = case.model
    opt = case.optimizer or torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=DEFAULT_LR,
        momentum=DEFAULT_MOMENTUM)
    closure_step = needs_closure(opt)
    losses: list[float] = []
    batches = _batches(case.inputs, case.targets, data)
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(0)  # the mode the model was given is the mode it trains in
        for _ in range(steps):
            x, y = next(batches)

            def closure(x: Any = x, y: Any = y) -> torch.Tensor:
                opt.zero_grad()
                loss = case.loss_fn(call_model(model, x), y)
                loss.backward()
                return loss.detach()

            if closure_step:
                value = float(opt.step(closure))  # type: ignore[arg-type]
            else:
                value = float(closure())
                opt.step()
            losses.append(value)
            if not math.isfinite(value):
                break
        model.eval()
        with torch.no_grad():
            out = call_model(model, case.inputs)
            loss = float(case.loss_fn(out, case.targets))
    acc = _accuracy(out, case.targets, trace) if isinstance(out, torch.Tensor) else None
    return Trained(losses + [loss], loss, acc if math.isfinite(loss) or acc is not None else None,
                   _r2(out, case.targets, trace))


def _r2(output: Any, targets: Any, trace: Trace) -> float | None:
    """Regression's coefficient of determination on the batch: 1 - SSE / SST."""
    if trace.task != "regression" or not isinstance(output, torch.Tensor) or \
            not isinstance(targets, torch.Tensor) or output.shape != targets.shape:
        return None
    y = targets.detach().double()
    sst = float(((y - y.mean(0)) ** 2).sum())
    sse = float(((output.detach().double() - y) ** 2).sum())
    return 1.0 - sse / sst if sst > 0 else None


def fix(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any,
        optimizer: torch.optim.Optimizer | None = None, *, steps: int = 100, rounds: int = 3,
        verify_steps: int = 20, task: Task | None = None, data: Iterable[Any] | None = None,
        thresholds: Thresholds | None = None) -> FixResult:
    """Repair a copy with every verified fix, re-diagnosing until clean, and train both.

    Args:
        model, inputs, targets, loss_fn, optimizer: as for :func:`~lossdoctor.diagnose`.
        steps: optimizer steps of the original/repaired comparison.
        rounds: at most this many diagnose-and-repair rounds.
        verify_steps: steps each fix is verified with (must be > 0: unverified fixes are not
            applied).
        task: override the inferred task.
        data: an iterable of ``(inputs, targets)`` batches to train on instead of the batch
            (cycled); both set-ups are evaluated on the batch.
        thresholds: the lines the checks draw.

    Returns:
        A :class:`FixResult`; the user's model, optimizer and RNG state are left untouched.
    """
    if steps < 1 or rounds < 1 or verify_steps < 1:
        raise LossDoctorError("steps, rounds and verify_steps must be >= 1")
    original, _ = copy_case(Case(model, inputs, targets, loss_fn, optimizer))
    case, _ = copy_case(original)
    reports: list[Report] = []
    applied: list[Applied] = []
    with torch.random.fork_rng(devices=[]):
        for n in range(1, rounds + 1):
            report = diagnose(case.model, case.inputs, case.targets, case.loss_fn,
                              case.optimizer, task=task, verify_steps=verify_steps,
                              thresholds=thresholds)
            reports.append(report)
            if not report.has("warning") and not _verified(report):
                break
            case, done = _round(case, report, n)
            if not done:
                break
            applied += done
        final = reports[-1]
        if applied and applied[-1].round == len(reports):
            final = diagnose(case.model, case.inputs, case.targets, case.loss_fn, case.optimizer,
                             task=task, verify_steps=verify_steps, thresholds=thresholds)
    notes = []
    if final.has("warning") and len(reports) == rounds and applied:
        notes.append(f"stopped after {rounds} rounds with findings left")
    return FixResult(case, applied, reports, final,
                     train(original, steps, reports[0].trace, data),
                     train(copy_case(case)[0], steps, final.trace, data), steps, notes)
