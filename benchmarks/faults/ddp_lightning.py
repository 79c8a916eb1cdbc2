"""Lightning ``strategy="ddp"`` with two CPU processes and ``LossDoctorCallback``: one report.

Two fits in one launch: a healthy one (Lightning adds the DistributedSampler) and one with
``use_distributed_sampler=False``, where both ranks read the same batches. Each rank writes its
callback's findings to ``OUT/rankR.json``.

    python benchmarks/faults/ddp_lightning.py OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lossdoctor.monitor.lightning import LossDoctorCallback


class Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

    def training_step(self, batch: Any, idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(distributed_sampler: bool) -> tuple[LossDoctorCallback, pl.Trainer]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=g)
    data = TensorDataset(x, x[:, :4].argmax(1))
    torch.manual_seed(0)
    cb = LossDoctorCallback(every=5, on_finding="ignore", timeout=30)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2,
                         callbacks=[cb], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         use_distributed_sampler=distributed_sampler)
    trainer.fit(Net(), DataLoader(data, batch_size=16, shuffle=False))
    return cb, trainer


def main(out: str) -> None:
    results: dict[str, Any] = {}
    for name, sampler in (("healthy", True), ("no-sampler", False)):
        cb, trainer = fit(sampler)
        report = cb.report()
        assert cb.monitor is not None
        results[name] = {
            "codes": {f.code: {"severity": f.severity, "ranks": f.evidence.get("ranks"),
                               "step": f.evidence.get("step")} for f in report.findings},
            "steps": cb.monitor.step, "layers": [layer.name for layer in report.trace.layers],
            "wrapper": cb.monitor._wrapper}
        Path(out, f"rank{trainer.global_rank}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
