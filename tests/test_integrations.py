"""The monitor inside Lightning, the Hugging Face Trainer and TensorBoard, with the real libraries."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import lossdoctor as ld
from lossdoctor.lab.datasets import load

SPLIT = load("digits")

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_lightning_callback() -> None:
    import lightning.pytorch as pl

    from lossdoctor.monitor.lightning import LossDoctorCallback

    class Net(pl.LightningModule):
        def __init__(self, lr: float, zero: bool = True) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
            self.lr = lr

        def training_step(self, batch, idx):  # type: ignore[no-untyped-def]
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    loader = DataLoader(TensorDataset(SPLIT.x_train, SPLIT.y_train), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    results = {}
    for lr in (0.1, 5.0):
        torch.manual_seed(0)
        cb = LossDoctorCallback(every=20, on_finding="ignore")
        pl.Trainer(max_steps=200, callbacks=[cb], logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False,
                   accelerator="cpu").fit(Net(lr), loader)
        results[lr] = cb.report()
        assert cb.monitor is not None and cb.monitor.step == 200
    assert not results[0.1].has("warning"), results[0.1].codes
    assert results[5.0].has("warning")


def test_hugging_face_callback_on_a_tiny_bert(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from lossdoctor.monitor.hf import LossDoctorHFCallback

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, num_labels=3)
    model = BertForSequenceClassification(cfg)

    class Tokens(Dataset):  # type: ignore[type-arg]
        def __init__(self) -> None:
            self.x = torch.randint(0, 100, (256, 16), generator=torch.Generator().manual_seed(0))

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            return {"input_ids": self.x[i], "labels": self.x[i, 0] % 3}

    cb = LossDoctorHFCallback(every=10, on_finding="ignore")
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=60, per_device_train_batch_size=16,
                             logging_steps=5, report_to=[], use_cpu=True, save_strategy="no",
                             learning_rate=1e-3, disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[cb]).train()
    report = cb.report()
    assert cb.monitor is not None and cb.monitor.step == 60
    assert len(cb.monitor.losses) == 12  # one logged loss every 5 steps
    assert report.trace.layers and not report.has("warning"), report.codes
    # one-batch diagnosis of the same kind of model is clean too
    x = torch.randint(0, 100, (16, 16))
    clean = ld.diagnose(BertForSequenceClassification(cfg), {"input_ids": x}, x[:, 0] % 3,
                        lambda o, t: F.cross_entropy(o.logits, t), verify_steps=0)
    assert not clean.has("warning"), clean.codes


def test_tensorboard_scalars_and_findings(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    writer = SummaryWriter(str(tmp_path))
    with ld.Monitor(model, opt, every=10, on_finding="ignore", writer=writer) as mon:
        for _ in range(40):
            loss = F.cross_entropy(model(SPLIT.x_train[:64]), SPLIT.y_train[:64])
            loss.backward()  # never zeroed: stale-gradients
            opt.step()
            mon.observe(loss)
    writer.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    assert "lossdoctor/loss" in scalars and "lossdoctor/0/grad_rms" in scalars
    assert [e.step for e in acc.Scalars("lossdoctor/loss")] == [10, 20, 30, 40]
    texts = [t for t in acc.Tags()["tensors"] if t.startswith("lossdoctor/findings")]
    assert texts
    first = acc.Tensors(texts[0])[0]
    assert b"stale-gradients" in first.tensor_proto.string_val[0]


@pytest.mark.parametrize("every", [1, 50])
def test_monitor_leaves_no_hooks(every: int) -> None:
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters())
    with ld.Monitor(model, opt, every=every, stop_on_nonfinite=True, on_finding="ignore") as mon:
        for _ in range(3):
            opt.zero_grad()
            loss = F.cross_entropy(model(SPLIT.x_train[:16]), SPLIT.y_train[:16])
            loss.backward()
            opt.step()
            mon.observe(loss)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(not p._backward_hooks for p in model.parameters())
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks
