"""A Lightning callback that runs a :class:`Monitor` during ``Trainer.fit``."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from lossdoctor.monitor.monitor import Monitor
from lossdoctor.probe.wrappers import wrapper_kind
from lossdoctor.report import Report


class LossDoctorCallback(pl.Callback):
    """Attach a monitor at the start of training, observe every batch, detach at the end.

    Under ``strategy="ddp"`` every rank runs the callback; the monitor exchanges between the
    ranks (see :class:`Monitor`) and every rank's ``report()`` holds the same findings with their
    ranks.

    Args:
        **monitor_kwargs: passed to :class:`Monitor` (``every``, ``on_finding``,
            ``stop_on_nonfinite``, ``writer``...).

    Attributes:
        monitor: the running monitor (None before training starts).
    """

    def __init__(self, **monitor_kwargs: Any) -> None:
        super().__init__()
        self.monitor_kwargs = monitor_kwargs
        self.monitor: Monitor | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        opts = trainer.optimizers
        self.monitor = Monitor(pl_module, opts[0] if opts else None, **self.monitor_kwargs)
        # under strategy="ddp" Lightning wraps the module in DDP itself (every rank attaches)
        self.monitor._wrapper = wrapper_kind(trainer.strategy.model or pl_module)
        self.monitor.attach()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.monitor is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self.monitor.observe(loss)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is not None:
            self.monitor.detach()

    def report(self) -> Report:
        """The monitor's report."""
        if self.monitor is None:
            raise RuntimeError("training has not started")
        return self.monitor.report()
