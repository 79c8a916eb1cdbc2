"""``Monitor``: the one-batch checks on a schedule during real training, plus the dynamics checks.

Under ``torch.distributed`` the ranks also exchange one row of plain numbers on the first and on
every scheduled step (:mod:`lossdoctor.monitor.distributed`) for the cross-rank checks
(:mod:`lossdoctor.checks.ranks`); single-process runs never touch that path.

Layer and parameter hooks are registered only for scheduled steps (every ``every`` observed
steps, armed right after the step before, so the first backward they see is the first one after
an optimizer step: a gradient already there is stale, a second backward is accumulation); only
the two optimizer hooks stay and count steps. An unscheduled ``observe`` keeps the loss as it
came (a detached tensor or a number) and returns: losses are read back on scheduled steps only,
in one transfer, so the default schedule adds no per-step ``.item()``.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from lossdoctor.checks import run_checks
from lossdoctor.errors import LossDoctorError
from lossdoctor.findings import SEVERITY_RANK, Finding
from lossdoctor.fmt import g
from lossdoctor.monitor import distributed as dd
from lossdoctor.probe.hooks import first_tensor, module_hooks
from lossdoctor.probe.recorder import Recorder
from lossdoctor.probe.run import tensor_stats
from lossdoctor.probe.wrappers import clean_name, unwrap, wrapper_kind
from lossdoctor.report import Report
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import LossStats, RunStats, Trace


class NonFiniteLoss(LossDoctorError):
    """Raised by ``observe`` with ``stop_on_nonfinite=True`` at the first NaN/Inf loss."""


class FindingRaised(LossDoctorError):
    """Raised by ``observe`` with ``on_finding="raise"``; ``.finding`` holds the finding."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"{finding.code}: {finding.summary}")
        self.finding = finding


class LossDoctorWarning(UserWarning):
    """Warning category of ``on_finding="warn"``."""


class Monitor:
    """Watch a training run.

    Args:
        model: the model being trained.
        optimizer: its optimizer (needed for ``stale-gradients`` and the update ratio).
        every: measure layers and gradients every this many observed steps.
        window: steps in the loss moving average of the dynamics checks (default: ``every``,
            at least 10).
        on_finding: ``"warn"`` (a :class:`LossDoctorWarning`), ``"raise"``
            (:class:`FindingRaised`), ``"ignore"``, or a callable taking the finding.
        stop_on_nonfinite: check every loss and raise :class:`NonFiniteLoss` at the first
            NaN/Inf, naming the step, the first layer that produced it and the input statistics.
        writer: a ``torch.utils.tensorboard.SummaryWriter``: per-layer scalars and findings as
            text on scheduled steps.
        thresholds: the lines the checks draw (:class:`~lossdoctor.Thresholds`).
        loss_fn: ``(output, targets) -> loss``; with it, ``observe(loss, inputs=x, targets=y)``
            runs the full one-batch diagnosis on the first observed step, so the init, the loss
            head and the labels are judged too (not only what the run shows later).
        timeout: under ``torch.distributed``, seconds an exchange between the ranks may wait
            before :class:`~lossdoctor.monitor.distributed.RankFailed` is raised (a rank that
            raised, exited or hangs never leaves the others blocked in the monitor's exchange).

    Under ``torch.distributed`` (a process group of two or more ranks) every rank creates and
    attaches the monitor (attaching creates the monitor's gloo group: a collective) and calls
    ``observe`` on every step: the ranks exchange compact statistics on
    scheduled steps and on the first one (one ``all_gather`` of a float64 row per rank, see
    :mod:`lossdoctor.monitor.distributed`), run the cross-rank checks, and every finding carries
    the ranks it holds on (``evidence["ranks"]``). Every rank holds the same findings; only rank
    0 warns, writes and calls ``on_finding``; ``"raise"`` and ``stop_on_nonfinite`` raise on all
    ranks at the same step.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        every: int = 50,
        window: int | None = None,
        on_finding: str | Callable[[Finding], Any] = "warn",
        stop_on_nonfinite: bool = False,
        writer: Any = None,
        thresholds: Thresholds | None = None,
        loss_fn: Callable[[Any, Any], Any] | None = None,
        timeout: float = 60.0,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise LossDoctorError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if every < 1:
            raise LossDoctorError(f"every must be >= 1, got {every}")
        if not callable(on_finding) and on_finding not in ("warn", "raise", "ignore"):
            raise LossDoctorError("on_finding must be 'warn', 'raise', 'ignore' or a callable")
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise LossDoctorError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.model = model
        self.inner = unwrap(model)  # hooks and names see the user's module, not the wrapper
        self._wrapper = wrapper_kind(model)  # a framework callback may name its own wrapper
        self.timeout = timeout
        # wrappers (accelerate's AcceleratedOptimizer, Lightning's) keep the real one inside
        while optimizer is not None and not hasattr(optimizer, "_optimizer_step_pre_hooks") \
                and hasattr(optimizer, "optimizer"):
            optimizer = optimizer.optimizer
        self.optimizer = optimizer
        self.every = every
        self.window = window or max(every, 10)
        self.on_finding = on_finding
        self.stop_on_nonfinite = stop_on_nonfinite
        self.writer = writer
        self.thresholds = thresholds or Thresholds()
        self.loss_fn = loss_fn
        self.notes: list[str] = []
        self._diagnosed = False
        self.step = 0
        self.losses: list[float] = []
        self.findings: list[Finding] = []
        self.last_trace: Trace | None = None
        self._pending_losses: list[torch.Tensor | float] = []
        self._rec = Recorder(enabled=False)
        self._stack: ExitStack | None = None
        self._modules: ExitStack | None = None
        self._handles: list[Any] = []
        self._stepped_at = -1  # the observed step in which the optimizer last stepped
        self._stale_possible = False
        self._seen: set[int] = set()
        self._stale: list[str] = []
        self._before: list[torch.Tensor] | None = None
        self._ratios: list[float] = []
        self._dead_first: dict[str, float] = {}
        self._reported: set[tuple[str, str]] = set()
        self._bad_layer: list[tuple[str, torch.Tensor]] = []
        self._inputs: Any = None
        # under torch.distributed (None otherwise)
        self._x: dd.Exchange | None = None
        self._params: list[tuple[str, nn.Parameter]] = []
        self._buffers: list[tuple[str, torch.Tensor]] = []
        self._buf_fp: torch.Tensor | None = None
        self._proj: list[dd.Projection] = []
        self._local_proj: list[torch.Tensor | None] = []
        self._synced: list[float] | None = None
        self._no_grad: list[float] = []
        self._never: set[str] | None = None
        self._stepped_exchanges = 0
        self._fps: list[torch.Tensor] = []
        self._fp_hist: list[tuple[float, float]] = []  # first two batches, then the previous
        self._fp_last: tuple[float, float] | None = None
        self._period = 0
        self._batches = 0
        self._first_bad = 0
        self._bad_now = False

    # ---------------------------------------------------------------- attach / detach

    def __enter__(self) -> Monitor:
        self.attach()
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        try:
            if exc is not None and self._x is not None and not isinstance(
                    exc, (NonFiniteLoss, FindingRaised, dd.RankFailed)):
                self._announce_failure()
        finally:
            self.detach()

    def _announce_failure(self) -> None:
        """Join the exchange the other ranks will wait in next, with the raised flag, so they
        stop at once instead of waiting for the timeout (the monitor's own exceptions are raised
        on every rank together and need no announcement)."""
        assert self._x is not None
        nxt = self.step + 1
        small = not self._scheduled(nxt) and self.stop_on_nonfinite
        row = [dd.FLAG_RAISED, float(nxt)]
        if not small:
            row += [math.nan] * (self._row_length() - 2)
        try:
            self._x.gather(row, f"step {nxt}")
        except dd.RankFailed:
            pass  # the others are gone or stuck elsewhere: the original exception goes on

    def attach(self) -> None:
        """Register the hooks (idempotent)."""
        if self._stack is not None:
            return
        self._stack = ExitStack()
        if dd.active():
            if self._x is None:
                self._x = dd.Exchange(self.timeout)
                self._params = dd.trainable(self.inner)
                self._buffers = dd.float_buffers(self.inner)
                self._x.check_same_model([n for n, _ in self._params])
                self._proj = [dd.Projection.for_param(p, i)
                              for i, (_, p) in enumerate(self._params)]
            self._handles.append(self.inner.register_forward_pre_hook(self._batch_hook,
                                                                      with_kwargs=True))
        if self.optimizer is not None:
            self._handles.append(self.optimizer.register_step_pre_hook(self._pre_step))
            self._handles.append(self.optimizer.register_step_post_hook(self._post_step))
        if self.stop_on_nonfinite:
            self._handles.append(self.inner.register_forward_pre_hook(self._root_pre))
            for name, m in self.inner.named_modules():
                if not list(m.children()):
                    self._handles.append(m.register_forward_hook(self._finite_hook(
                        clean_name(name))))
        self._arm()

    def detach(self) -> None:
        """Remove every hook; the model is left as it was."""
        for h in self._handles:
            h.remove()
        self._handles = []
        if self._stack is not None:
            self._stack.close()
            self._stack = None
        self._unhook_modules()
        self._rec.enabled = False

    # ---------------------------------------------------------------- hooks

    def _scheduled(self, step: int) -> bool:
        return step % self.every == 0 or (step == 1 and self._x is not None)

    def _arm(self) -> None:
        """Prepare recording if the next step is scheduled.

        Module hooks exist only for scheduled steps: a module with forward hooks takes PyTorch's
        slower call path, which costs a few percent on every step if they stay registered.
        """
        active = self._scheduled(self.step + 1)
        if active:
            # the hooks go on after this observed step: a gradient the next backward finds is
            # stale only if the optimizer stepped in this one (else it is being accumulated)
            self._stale_possible = self._stepped_at == self.step
            self._seen = set()
            self._rec.reset()
            if self._modules is None:
                self._modules = ExitStack()
                self._modules.enter_context(module_hooks(self.inner, self._rec))
                for i, (name, p) in enumerate(dd.trainable(self.inner)):
                    h = p.register_hook(self._param_hook(p, name, i))
                    self._modules.callback(h.remove)
            self._local_proj = [None] * len(self._params)
            self._synced = None
        self._rec.enabled = active

    def _unhook_modules(self) -> None:
        if self._modules is not None:
            self._modules.close()
            self._modules = None

    def _root_pre(self, module: nn.Module, args: Any) -> None:
        self._bad_layer = []
        self._inputs = first_tensor(args)

    def _finite_hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            t = first_tensor(out)
            if t is not None and t.is_floating_point():
                self._bad_layer.append((name, (~torch.isfinite(t.detach())).any()))
        return hook

    def _batch_hook(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        """Fingerprint every training batch (two float64 numbers left on the device)."""
        if not module.training or not torch.is_grad_enabled():
            return
        x = first_tensor((args, kwargs))
        if x is not None:
            self._fps.append(dd.batch_fingerprint(x))
        if self._rec.enabled and self._buf_fp is None:
            # buffers as this forward reads them: after DDP broadcast rank 0's (if it does)
            self._buf_fp = dd.fingerprints([b for _, b in self._buffers])

    def _param_hook(self, p: torch.Tensor, name: str, i: int) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            if self._x is not None and self._rec.enabled and not dd.is_sharded(grad):
                v = self._proj[i](grad)  # the local gradient, before DDP averages it
                if id(p) not in self._seen and p.grad is not None:
                    # DDP averages what .grad holds after this backward: an earlier (no_sync)
                    # micro-batch's gradient is part of it
                    v = v + self._proj[i](p.grad)
                prev = self._local_proj[i]
                self._local_proj[i] = v if prev is None else prev + v
            if id(p) in self._seen:
                return  # a further backward before the next step: deliberate accumulation
            self._seen.add(id(p))
            if self._stale_possible and self._rec.enabled and p.grad is not None \
                    and bool(p.grad.detach().abs().sum() > 0):
                self._stale.append(name)
        return hook

    def _pre_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        if self._rec.enabled:
            self._before = [dd.local(p.detach()).clone() for p in self.inner.parameters()
                            if p.dim() >= 2]

    def _post_step(self, opt: Any, args: Any, kwargs: Any) -> None:
        self._stepped_at = self.step + 1  # observe() of this step comes after it
        if self._x is not None and self._rec.enabled:
            # the gradient the optimizer applied, after DDP's average; read after the step, as
            # a closure (Lightning's) runs forward and backward inside optimizer.step()
            grads = [p.grad for _, p in self._params]
            vals = [self._proj[i](g) if g is not None and not dd.is_sharded(g)
                    else torch.tensor(math.nan, dtype=torch.float64)
                    for i, g in enumerate(grads)]
            self._synced = torch.stack(vals).tolist() if vals else []
            self._no_grad = [float(g is None) for g in grads]
        if self._before is not None:
            weights = [dd.local(p.detach()) for p in self.inner.parameters() if p.dim() >= 2]
            with torch.no_grad():
                norms = torch.stack([torch.linalg.vector_norm(w0) for w0 in self._before])
                moved = torch.stack([torch.linalg.vector_norm(w1 - w0)
                                     for w0, w1 in zip(self._before, weights, strict=True)])
            self._ratios.extend(float(m) / float(n)
                                for m, n in zip(moved.tolist(), norms.tolist(), strict=True) if n > 0)
            self._before = None

    # ---------------------------------------------------------------- observe

    def observe(self, loss: Any = None, *, inputs: Any = None, targets: Any = None) -> None:
        """Call once per training step, after ``optimizer.step()``, with that step's loss.

        Args:
            loss: the step's loss (tensor or number).
            inputs: the step's input batch; with ``targets`` and the monitor's ``loss_fn``, the
                first observed step gets the full one-batch diagnosis (every check: loss, head,
                labels, optimizer, init), once.
            targets: the step's targets.
        """
        # the unscheduled path is a few attribute reads, one detach and one append
        self.step = step = self.step + 1
        if inputs is not None and targets is not None and not self._diagnosed \
                and self.loss_fn is not None:
            self._diagnosed = True
            self._first_diagnosis(inputs, targets)
        self._bad_now = False
        if loss is not None:
            value = loss.detach() if isinstance(loss, torch.Tensor) else loss
            self._pending_losses.append(value)
            if self.stop_on_nonfinite:
                self._stop_if_nonfinite(value)
        if self._x is not None and self.stop_on_nonfinite and not self._rec.enabled:
            # every rank stops at the same step: the flags travel each step (on scheduled steps
            # in the exchange's row)
            self._check_flags(self._x.gather(
                [dd.FLAG_NONFINITE if self._bad_now else dd.FLAG_OK, float(step)],
                f"step {step}"))
        if self._rec.enabled:
            self._measure()
        if (step + 1) % self.every == 0:
            self._arm()

    def _stop_if_nonfinite(self, value: torch.Tensor | float) -> None:
        if isinstance(value, torch.Tensor):
            bad = not bool(torch.isfinite(value).all())
        else:
            bad = not math.isfinite(float(value))
        if bad and self._x is not None:
            self._bad_now = True  # raised below, on every rank together
        elif bad:
            self._raise_nonfinite(float(value.reshape(-1)[0]) if isinstance(value, torch.Tensor)
                                  else float(value))

    def _first_diagnosis(self, inputs: Any, targets: Any) -> None:
        """``diagnose`` on the first observed batch, without verification; the monitor's own
        hooks stand still meanwhile."""
        from lossdoctor.diagnose import diagnose

        enabled, seen = self._rec.enabled, set(self._seen)
        self._rec.enabled = False
        try:
            report = diagnose(self.model, inputs, targets, self.loss_fn,
                              self.optimizer, verify_steps=0, thresholds=self.thresholds)
        except LossDoctorError as e:
            self.notes.append(f"first-step diagnosis skipped: {e}")
            return
        finally:
            self._rec.enabled, self._seen = enabled, seen
        for f in report.findings:
            self._emit(f)

    def add_loss(self, value: float) -> None:
        """Record a loss value without advancing the step (for loops that log losses sparsely)."""
        self._pending_losses.append(float(value))

    def _run_trace(self, layers: tuple[Any, ...] = (), nonfinite_layer: str | None = None,
                   inputs: Any = None) -> Trace:
        """The run so far as a trace: layer records of this step plus the run's history."""
        batch = layers[0].output.shape[0] if layers and layers[0].output.shape else 1
        run = RunStats(
            step=self.step, losses=tuple(self.losses), window=self.window,
            update_ratios=tuple(self._ratios), stale_params=tuple(self._stale),
            dead_first=tuple(self._dead_first.items()), nonfinite_layer=nonfinite_layer,
            inputs=inputs)
        return Trace(
            task="unknown", n_classes=None, batch_size=batch, layers=layers, params=(),
            loss=LossStats(value=self.losses[-1] if self.losses else math.nan, kind="custom",
                           reduction=None, source="monitor", requires_grad=True),
            output=None, targets=None, inputs=None, optimizer=None, run=run,
        )

    def _flush_losses(self) -> None:
        """Read the pending losses back: the tensors in one transfer (first element of each)."""
        if not self._pending_losses:
            return
        tensors = [v for v in self._pending_losses if isinstance(v, torch.Tensor)]
        values: list[float] = []
        if tensors:
            first = (torch.stack(tensors) if all(t.dim() == 0 for t in tensors)
                     else torch.cat([t.reshape(-1)[:1] for t in tensors]))
            values = first.double().tolist()
        read = iter(values)
        start = len(self.losses)
        self.losses.extend(float(v) if not isinstance(v, torch.Tensor) else next(read)
                           for v in self._pending_losses
                           if not isinstance(v, torch.Tensor) or v.numel())
        self._pending_losses = []
        if not self._first_bad:
            self._first_bad = next((start + i + 1 for i, v in enumerate(self.losses[start:])
                                    if not math.isfinite(v)), 0)

    def _local_nonfinite(self) -> list[Finding]:
        self._flush_losses()
        layer = next((name for name, bad in self._bad_layer if bool(bad)), None)
        inputs = (tensor_stats(self._inputs) if self._inputs is not None
                  and self._inputs.is_floating_point() else None)
        return [f for f in run_checks(self._run_trace(nonfinite_layer=layer, inputs=inputs),
                                      self.thresholds, scopes=("run",))
                if f.code == "nonfinite"]

    def _raise_nonfinite(self, value: float) -> None:
        found = self._local_nonfinite()
        self.findings.extend(found)
        raise NonFiniteLoss(found[0].summary if found else f"step {self.step}: loss = {value}")

    # ---------------------------------------------------------------- the ranks

    def _check_flags(self, rows: list[list[float]]) -> None:
        """Stop every rank together when a row carries the raised or the non-finite flag."""
        assert self._x is not None
        raised = [r for r, row in enumerate(rows) if row[0] == dd.FLAG_RAISED]
        if raised:
            raise dd.RankFailed(
                f"rank {', '.join(map(str, raised))} raised an exception before step "
                f"{int(rows[raised[0]][1])}; every rank stops (its traceback is in its output)")
        bad = [r for r, row in enumerate(rows) if row[0] == dd.FLAG_NONFINITE]
        if not bad:
            return
        mine = self._local_nonfinite() if self._bad_now else []
        everyone = self._x.gather_objects(mine, f"step {self.step}")
        first = next((f for r in bad for f in everyone[r]), None)
        where = "rank " + ", ".join(map(str, bad))
        finite = self._x.world - len(bad)
        origin = (f"on {where} (the first to go non-finite; {finite} other rank(s) still finite)"
                  if finite else "on every rank at the same step")
        if first is None:  # no local finding to carry the details: the flag alone
            raise NonFiniteLoss(f"step {self.step}: the loss became non-finite {origin}.")
        f = replace(first, where=f"{where}: {first.where}",
                    summary=f"{first.summary.rstrip('.')} {origin}.",
                    evidence={**first.evidence, "ranks": bad, "first_rank": bad[0]})
        self.findings.append(f)
        raise NonFiniteLoss(f.summary)

    def _row_length(self) -> int:
        return dd.HEADER + 5 * len(self._params) + 2 * len(self._buffers) + len(dd.CODES)

    def _row(self, found: list[Finding]) -> list[float]:
        """This rank's numbers for the exchange (one float64 row of fixed length)."""
        self._flush_fingerprints()
        sums, norms = dd.param_fingerprints([p for _, p in self._params])
        nan = math.nan
        proj = [v for v in self._local_proj if v is not None]
        local = iter(torch.stack(proj).tolist() if proj else [])
        local_vals = [next(local) if v is not None else nan for v in self._local_proj]
        stepped = self._synced is not None
        batch = self._fp_last or (nan, nan)
        bufs = (self._buf_fp if self._buf_fp is not None
                else torch.full((len(self._buffers), 2), nan, dtype=torch.float64))
        self._buf_fp = None
        sev: dict[str, int] = {}
        for f in found:
            sev[f.code] = max(sev.get(f.code, -1), SEVERITY_RANK[f.severity])
        row = [dd.FLAG_NONFINITE if self._bad_now else dd.FLAG_OK, float(self.step),
               float(self._first_bad), batch[0], batch[1], float(self._period),
               float(bool(self._stale)), float(stepped),
               self.losses[-1] if self.losses else nan,
               *sums, *norms, *local_vals,
               *(self._synced if self._synced is not None else [nan] * len(self._params)),
               *(self._no_grad if stepped else [0.0] * len(self._params)),
               *bufs[:, 0].tolist(), *bufs[:, 1].tolist(),
               *dd.codes_block(sev)]
        assert len(row) == self._row_length()
        return row

    def _flush_fingerprints(self) -> None:
        """Read the batch fingerprints back (one transfer) and look for an epoch that repeats
        the first one's order: the first two batches coming back one after the other."""
        if not self._fps:
            return
        values = [(a, b) for a, b in torch.stack(self._fps).tolist()]
        self._fps = []
        for fp in values:
            self._batches += 1
            if len(self._fp_hist) < 2:
                self._fp_hist.append(fp)
            elif (not self._period and self._fp_last == self._fp_hist[0]
                  and fp == self._fp_hist[1] and self._fp_hist[0] != self._fp_hist[1]):
                self._period = self._batches - 2  # batches per epoch
            self._fp_last = fp

    def _exchange(self, found: list[Finding], trace: Trace) -> list[Finding]:
        """Gather the rows, run the cross-rank checks, and give every finding its ranks.

        Returns the same list on every rank: the local findings of the lowest rank that has each
        (code, where), with ``ranks``, then the cross-rank findings.
        """
        assert self._x is not None
        rows = self._x.gather(self._row(found), f"step {self.step}")
        self._check_flags(rows)
        names = [n for n, _ in self._params]
        stepped = [r for r in rows if r[7]]
        if stepped:
            self._stepped_exchanges += 1
            n = len(names)
            none_all = {nm for i, nm in enumerate(names)
                        if all(r[dd.HEADER + 4 * n + i] == 1.0 for r in stepped)}
            self._never = none_all if self._never is None else self._never & none_all
        ranks = dd.decode(rows, names, [torch.finfo(p.dtype).eps if p.is_floating_point()
                                        else 0.0 for _, p in self._params],
                          [p.numel() for _, p in self._params], self._wrapper,
                          sorted(self._never or ()), self._stepped_exchanges,
                          [n for n, _ in self._buffers])
        rank_trace = replace(trace, run=replace(trace.run, ranks=ranks)) if trace.run else trace
        cross = [f for f in run_checks(rank_trace, self.thresholds, scopes=("run",))
                 if "ranks" in f.evidence]
        merged: list[Finding] = []
        if any(any(dd.ranks_with(rows, c)) for c in dd.CODES):
            everyone = self._x.gather_objects(found, f"step {self.step}")
            keys: dict[tuple[str, str], list[int]] = {}
            first: dict[tuple[str, str], Finding] = {}
            for r, fs in enumerate(everyone):
                for f in fs:
                    keys.setdefault((f.code, f.where), []).append(r)
                    first.setdefault((f.code, f.where), f)
            crossed = {f.code for f in cross}
            merged = [replace(f, evidence={**f.evidence, "ranks": keys[k]},
                              summary=f"{f.summary.rstrip('.')} (on rank "
                                      f"{', '.join(map(str, keys[k]))}).")
                      for k, f in first.items() if f.code not in crossed]
        return merged + cross

    def _measure(self) -> None:
        self._flush_losses()
        layers = self._rec.layers()
        self._rec.enabled = False
        if not self._scheduled(self.step + 1):
            self._unhook_modules()
        trace = self._run_trace(layers)
        self.last_trace = trace
        for layer in layers:
            if layer.dead_units is not None:
                self._dead_first.setdefault(layer.name, layer.dead_units)
        found = run_checks(trace, self.thresholds, scopes=("layers", "run"))
        if self._x is not None:
            found = self._exchange(found, trace)
        self._stale, self._ratios = [], []
        self._log(layers)
        for f in found:
            self._emit(f)

    def _log(self, layers: Any) -> None:
        if self.writer is None:
            return
        if self.losses and math.isfinite(self.losses[-1]):
            self.writer.add_scalar("lossdoctor/loss", self.losses[-1], self.step)
        for layer in layers:
            self.writer.add_scalar(f"lossdoctor/{layer.name}/out_rms", layer.output.rms, self.step)
            if layer.grad_rms is not None:
                self.writer.add_scalar(f"lossdoctor/{layer.name}/grad_rms", layer.grad_rms,
                                       self.step)
            if layer.dead_units is not None:
                self.writer.add_scalar(f"lossdoctor/{layer.name}/dead", layer.dead_units,
                                       self.step)

    def _emit(self, f: Finding) -> None:
        key = (f.code, f.where if not f.where.startswith("step ") else "")
        if key in self._reported:
            return
        self._reported.add(key)
        if not f.summary.startswith("step "):
            f = replace(f, summary=f"step {self.step}: {f.summary}",
                        evidence={**f.evidence, "step": self.step})
        self.findings.append(f)
        if self._x is not None and self._x.rank != 0:
            # every rank holds the same findings: rank 0 speaks for them, and all ranks raise
            if self.on_finding == "raise" and f.severity != "info":
                raise FindingRaised(f)
            return
        if self.writer is not None:
            self.writer.add_text("lossdoctor/findings", f"{f.severity} {f.code}: {f.summary}",
                                 self.step)
        if f.severity == "info" or self.on_finding == "ignore":
            return
        if self.on_finding == "warn":
            warnings.warn(f"{f.code}: {f.summary}", LossDoctorWarning, stacklevel=3)
        elif self.on_finding == "raise":
            raise FindingRaised(f)
        elif callable(self.on_finding):
            self.on_finding(f)

    def report(self) -> Report:
        """Everything found so far, as the same :class:`Report` type ``diagnose`` returns."""
        self._flush_losses()
        trace = self.last_trace or Trace(
            task="unknown", n_classes=None, batch_size=0, layers=(), params=(),
            loss=LossStats(value=self.losses[-1] if self.losses else math.nan, kind="custom",
                           reduction=None, source="monitor", requires_grad=True),
            output=None, targets=None, inputs=None, optimizer=None)
        if trace.run is not None:  # the whole loss curve, not the one at the last measurement
            trace = replace(trace, run=replace(trace.run, step=self.step, losses=tuple(self.losses)))
        kept, notes = self._outcome()
        if self.notes or notes:
            trace = replace(trace, notes=(*trace.notes, *self.notes, *notes))
        return Report(trace=trace, findings=sorted(kept, key=lambda f: -SEVERITY_RANK[f.severity]))

    # Findings about how the run was going, which the rest of the run can contradict.
    _TRANSIENT = frozenset({"loss-plateau", "loss-oscillating", "lr-too-high"})

    def _outcome(self) -> tuple[list[Finding], list[str]]:
        """Withdraw run findings that the rest of the run contradicted.

        A plateau, an oscillation or a large update ratio seen early is judged by its consequence:
        when the smoothed loss at the end is below ``settled`` (a quarter) of its value at the
        step of the finding, training went on fine and the finding is withdrawn with a note. A
        blow-up (``peak_step`` in the evidence) is never withdrawn.
        """
        w = self.window
        if len(self.losses) < 2 * w or any(not math.isfinite(v) for v in self.losses):
            return list(self.findings), []
        end = statistics.fmean(self.losses[-w:])
        kept, notes = [], []
        for f in self.findings:
            step = f.evidence.get("step")
            if (f.code in self._TRANSIENT and "peak_step" not in f.evidence and isinstance(step, int)
                    and 1 <= step <= len(self.losses) - w):
                then = statistics.fmean(self.losses[max(0, step - w):step])
                if then > 0 and end < self.thresholds.settled * then:
                    notes.append(f"{f.code} at step {step} withdrawn: the loss went on from "
                                 f"{g(then)} to {g(end)} (below {g(self.thresholds.settled)}x)")
                    continue
            kept.append(f)
        return kept, notes
