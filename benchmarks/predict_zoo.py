"""``ld.predict`` on residual networks and transformers: agreement and cost, in one run.

For each model of ``tests/theory_zoo.py`` (library default init, built from configs): the number
of module outputs predicted, the worst per-layer predicted/measured rms, the ops measured because
no rule covers them, and the time of ``predict(model, batch)`` against one plain forward of the
same batch (medians of interleaved runs).

    PYTHONPATH=src python benchmarks/predict_zoo.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import lossdoctor as ld  # noqa: E402
from lossdoctor.probe.run import call_model  # noqa: E402
from theory_zoo import ZOO, per_call_rms  # noqa: E402


def _worst(model: torch.nn.Module, inputs: Any, pred: ld.Prediction) -> tuple[int, float, str]:
    measured: dict[str, list[float]] = {}
    for name, rms in per_call_rms(model, inputs):
        measured.setdefault(name, []).append(rms)
    seen: dict[str, int] = {}
    worst, where, n = 0.0, "", 0
    for lp in pred.layers:
        k = seen[lp.name] = seen.get(lp.name, -1) + 1
        if lp.in_theory:
            n += 1
            err = lp.rms / measured[lp.name][k] - 1
            if abs(err) > abs(worst):
                worst, where = err, lp.name
    return n, worst, where


def main(repeats: int = 5) -> None:
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':28s} {'layers':>6s} {'worst':>7s}  {'fwd ms':>7s} {'predict ms':>10s} "
          f"{'ratio':>6s}  measured ops")
    for name, build in ZOO.items():
        torch.manual_seed(0)
        model, inputs = build()
        pred = ld.predict(model, inputs)
        n, worst, _ = _worst(model, inputs, pred)
        fwd, prd = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            with torch.no_grad():
                call_model(model, inputs)
            fwd.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ld.predict(model, inputs)
            prd.append(time.perf_counter() - t0)
        f, p = statistics.median(fwd) * 1e3, statistics.median(prd) * 1e3
        ops = ", ".join(dict.fromkeys(n.split(" ")[0] for n in pred.notes)) or "-"
        print(f"{name:28s} {n:6d} {worst:+7.1%}  {f:7.1f} {p:10.1f} {p / f:5.1f}x  {ops}")


if __name__ == "__main__":
    main()
