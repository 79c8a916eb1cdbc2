"""What a diagnosis costs, as multiples of one plain forward+backward of the same model and batch.

Per model (real architectures built from their configs, no downloads, CPU):

- ``fwd+bwd``: one plain forward, loss and ``torch.autograd.grad`` (median of interleaved runs);
- ``v=0``: ``diagnose(verify_steps=0)`` over that (median of interleaved runs); ``recs``: the
  layers and ops it recorded;
- ``default``: ``diagnose()`` with its default verification, over the same plain step;
- ``mem v=0`` / ``mem default``: peak memory of the diagnosis over the peak of a plain step. Each
  is measured in a fresh child process: the resident set size after importing (before the
  model is built) is the zero; the peak (``VmHWM``, reset through ``/proc/self/clear_refs``
  after the model and batch are built) minus that zero is the footprint; the ratio is the
  diagnosis footprint over the plain-step footprint, so the model and batch count on both sides.

The machines are noisy: only ratios taken in the same run mean something.
Run: ``python benchmarks/speed.py [--quick] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import lossdoctor as ld
from lossdoctor.probe.run import call_model

Case = dict[str, Any]


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()


def bert() -> Case:
    from transformers import BertConfig, BertForSequenceClassification

    _quiet_transformers()
    model = BertForSequenceClassification(BertConfig(
        hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512,
        num_labels=3))
    x = torch.randint(0, 30522, (16, 64))
    return {"model": model, "inputs": {"input_ids": x}, "targets": torch.randint(0, 3, (16,)),
            "loss_fn": lambda out, y: F.cross_entropy(out.logits, y),
            "optimizer": torch.optim.AdamW(model.parameters(), lr=5e-5)}


def gpt2() -> Case:
    from transformers import GPT2Config, GPT2LMHeadModel

    _quiet_transformers()
    model = GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=128, n_head=4, vocab_size=8000,
                                       n_positions=64, bos_token_id=0, eos_token_id=0))
    x = torch.randint(0, 8000, (8, 64))

    def loss_fn(out: Any, ids: torch.Tensor) -> torch.Tensor:
        logits = out.logits[:, :-1]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))

    return {"model": model, "inputs": {"input_ids": x}, "targets": x, "loss_fn": loss_fn,
            "optimizer": torch.optim.AdamW(model.parameters(), lr=3e-4)}


def resnet() -> Case:
    from transformers import ResNetConfig, ResNetForImageClassification

    _quiet_transformers()
    model = ResNetForImageClassification(ResNetConfig(
        num_labels=10, depths=[2, 2, 2, 2], hidden_sizes=[32, 64, 128, 256], embedding_size=32,
        layer_type="basic"))
    return {"model": model, "inputs": (torch.randn(8, 3, 64, 64),),
            "targets": torch.randint(0, 10, (8,)),
            "loss_fn": lambda out, y: F.cross_entropy(out.logits, y),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                         weight_decay=1e-4)}


def mlp100() -> Case:
    layers: list[nn.Module] = []
    for _ in range(100):
        layers += [nn.Linear(256, 256), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(256, 10))
    return {"model": model, "inputs": torch.randn(128, 256),
            "targets": torch.randint(0, 10, (128,)), "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.01)}


class LSTMClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5000, 128)
        self.lstm = nn.LSTM(128, 128, num_layers=2, batch_first=True)
        self.head = nn.Linear(128, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.emb(x))
        return self.head(h[:, -1])  # type: ignore[no-any-return]


def lstm() -> Case:
    model = LSTMClassifier()
    return {"model": model, "inputs": torch.randint(0, 5000, (32, 32)),
            "targets": torch.randint(0, 5, (32,)), "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3)}


def _models() -> dict[str, Callable[[], Case]]:
    """The benchmark zoo (``benchmarks/zoo``) when present, plus the 100-layer MLP (depth)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from zoo.models import ZOO
    except ImportError:
        return {"bert-4l-cls": bert, "gpt2-4l-lm": gpt2, "resnet18-ish": resnet,
                "mlp-100x256": mlp100, "lstm-2l": lstm}
    return {**{s.name: s.make for s in ZOO}, "mlp-100x256": mlp100}


MODELS = _models()


def build(name: str) -> Case:
    torch.manual_seed(0)
    return MODELS[name]()


def plain_step(case: Case) -> None:
    model = case["model"]
    loss = case["loss_fn"](call_model(model, case["inputs"]), case["targets"])
    torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad], allow_unused=True)


def interleaved(fns: list[Callable[[], object]], reps: int) -> list[float]:
    """Median time of each function, run in turns so machine noise hits all of them."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()  # warm-up
    for _ in range(reps):
        for fn, ts in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(name: str, what: str) -> None:
    """In a fresh process: footprint (kB) of a plain step or a diagnosis over the import zero."""
    zero = _rss_kb("VmRSS")
    case = build(name)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    if what == "step":
        plain_step(case)
    else:
        ld.diagnose(**case, verify_steps=0 if what == "v0" else 20)
    print(_rss_kb("VmHWM") - zero)


def footprint(name: str, what: str) -> int:
    out = subprocess.run([sys.executable, __file__, "--child", name, what], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no memory")
    parser.add_argument("--only", nargs="*", default=(), help="model names")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    warnings.simplefilter("ignore")
    names = [n for n in MODELS if not args.only or n in args.only]
    reps = 3 if args.quick else 7
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ratios over one plain "
          "forward+backward, measured in this run")
    head = (f"{'model':14s} {'params':>7s} {'fwd+bwd':>8s} {'v=0':>6s} {'recs':>5s} "
            f"{'default':>7s} {'mem v=0':>7s} {'mem def':>7s}  findings (default)")
    print(head)
    ratios0, ratios = [], []
    for name in names:
        case = build(name)
        params = sum(p.numel() for p in case["model"].parameters())
        base, v0 = interleaved([lambda c=case: plain_step(c),
                                lambda c=case: ld.diagnose(**c, verify_steps=0)], reps)
        records = len(ld.diagnose(**case, verify_steps=0).trace.layers)
        default_t, report = [], None
        for _ in range(1 if args.quick else 3):
            t = time.perf_counter()
            report = ld.diagnose(**case)
            default_t.append(time.perf_counter() - t)
            # the plain step again right after: the smaller median guards against a slow spell
            base = min(base, interleaved([lambda c=case: plain_step(c)], 3)[0])
        default = statistics.median(default_t)
        assert report is not None
        found = ", ".join(f"{f.code}:{f.severity}"
                          + (f"({f.verification.status})" if f.verification else "")
                          for f in report.findings) or "none"
        mem = "      -       -"
        if not args.quick:
            step_kb = footprint(name, "step")
            mem = (f"{footprint(name, 'v0') / step_kb:6.2f}x "
                   f"{footprint(name, 'default') / step_kb:6.2f}x")
        ratios0.append(v0 / base)
        ratios.append(default / base)
        print(f"{name:14s} {params / 1e6:6.2f}M {1e3 * base:6.1f}ms {v0 / base:5.2f}x "
              f"{records:5d} {default / base:6.1f}x {mem}  {found}",
              flush=True)
    print(f"median v=0 {statistics.median(ratios0):.2f}x (worst {max(ratios0):.2f}x); median "
          f"default {statistics.median(ratios):.1f}x (worst {max(ratios):.1f}x)")


def record_overhead() -> None:
    """Fixed cost of recording one layer output: a small tensor, so the reductions are cheap."""
    from lossdoctor.probe.recorder import Recorder

    x = torch.randn(64, 128, requires_grad=True)
    out = torch.relu(x)
    rec = Recorder()
    t_rec, t_relu = interleaved([lambda: rec.record("l", "activation", "relu", x, out),
                                 lambda: torch.relu(x)], 2000)
    print(f"recording one layer (64x128 output, input and saturation statistics, gradient hook): "
          f"{1e3 * t_rec:.3f} ms ({1e3 * t_relu:.3f} ms for the relu itself)")


def predict_speed() -> None:
    """Time to predict a 100-layer MLP (target < 50 ms) and the ratio to one forward pass."""
    layers: list[nn.Module] = []
    for _ in range(100):
        layers += [nn.Linear(256, 256), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(256, 10))
    x = torch.randn(128, 256)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    pred, fwd = interleaved([lambda: ld.predict(model, input_stats=(256, 0.0, 1.0)), forward], 15)
    print(f"predict a 100-layer MLP (width 256): {1e3 * pred:.1f} ms, "
          f"{pred / fwd:.2f}x one forward pass of a batch of 128 ({1e3 * fwd:.1f} ms)")


if __name__ == "__main__":
    main()
    if "--child" not in sys.argv:
        record_overhead()
        predict_speed()
