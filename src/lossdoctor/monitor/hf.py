"""A Hugging Face ``TrainerCallback`` that runs a :class:`Monitor`.

The Trainer does not hand callbacks each step's loss, only the average it logs every
``logging_steps``; the monitor gets those values (a sparser loss history) and measures layers and
gradients on its own schedule.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist
from transformers import TrainerCallback

from lossdoctor.monitor.monitor import Monitor
from lossdoctor.probe.wrappers import wrapper_kind
from lossdoctor.report import Report


class LossDoctorHFCallback(TrainerCallback):
    """Attach at ``on_train_begin``, observe every step, feed logged losses, detach at the end.

    Args:
        **monitor_kwargs: passed to :class:`Monitor`.
    """

    def __init__(self, **monitor_kwargs: Any) -> None:
        self.monitor_kwargs = monitor_kwargs
        self.monitor: Monitor | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       optimizer: Any = None, **kwargs: Any) -> None:
        self.monitor = Monitor(model, optimizer, **self.monitor_kwargs)
        if dist.is_available() and dist.is_initialized() and wrapper_kind(model) == "none":
            # the Trainer hands callbacks its model unwrapped; under a process group it trains
            # it wrapped in DistributedDataParallel (every rank attaches)
            self.monitor._wrapper = "ddp"
        self.monitor.attach()

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if logs and "loss" in logs and self.monitor is not None:
            self.monitor.add_loss(float(logs["loss"]))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor is not None:
            self.monitor.observe()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor is not None:
            self.monitor.detach()

    def report(self) -> Report:
        """The monitor's report."""
        if self.monitor is None:
            raise RuntimeError("training has not started")
        return self.monitor.report()
