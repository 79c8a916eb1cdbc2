"""Repair benchmark: does ``lossdoctor fix`` make a faulty set-up train like its healthy twin?

For every repairable fault of the benchmark, ``ld.fix`` repairs a copy (every verified fix,
re-diagnosed until clean) and trains it ``--steps`` steps (200) on the batch; the fault's healthy twin
(``twins.py``: the same set-up with the bug fixed by hand) trains the same steps from the same RNG
state. A fault counts as repaired when the repaired set-up reaches at least 90% of the twin's
score: accuracy on the batch for classification (per label for multilabel), R^2 for regression.
AUTOTRAINER (ICSE'21) reports 97% of its faulty set-ups repaired on its own benchmark. Where the
twin itself does not train clearly better than the faulty original (random labels, a bug that
does not hurt within the steps), any copy passes: those comparisons are counted apart.

The twins are healthy controls too: each is diagnosed, and any warning or error on one is a
false alarm (listed), except a twin's documented true finding (``twins.KNOWN``: story 2's neuron
starts confidently wrong by the story's design).

Run: ``python benchmarks/faults/repair.py [--steps 200] [--only NAME ...] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from catalog import FAULTS  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from twins import KNOWN, TWINS  # noqa: E402

import lossdoctor as ld  # noqa: E402
from lossdoctor.case import Case, copy_case  # noqa: E402
from lossdoctor.fix import Trained, train  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results" / "repair.json"
SHARE = 0.9  # the bar: at least 90% of the healthy twin's score


def score(t: Trained) -> float | None:
    """Accuracy for classification, R^2 for regression; None when neither applies."""
    value = t.accuracy if t.accuracy is not None else t.r2
    return value if value is not None and math.isfinite(value) else None


def evaluate(name: str, steps: int) -> dict[str, Any]:
    """Repair one fault with ``ld.fix`` and train its twin the same steps."""
    sc = next(f for f in FAULTS if f.name == name)
    torch.manual_seed(0)
    made = sc.make()
    t0 = time.perf_counter()
    result = ld.fix(made["model"], made["inputs"], made["targets"], made["loss_fn"],
                    made.get("optimizer"), steps=steps, task=made.get("task"))
    seconds = time.perf_counter() - t0
    torch.manual_seed(0)
    tw = TWINS[name]()
    case = Case(tw["model"], tw["inputs"], tw["targets"], tw["loss_fn"], tw.get("optimizer"))
    c = copy_case(case)[0]
    twin_report = ld.diagnose(c.model, c.inputs, c.targets, c.loss_fn, c.optimizer,
                              task=tw.get("task"))
    twin = train(copy_case(case)[0], steps, twin_report.trace)
    s_orig, s_rep, s_twin = score(result.original), score(result.repaired), score(twin)
    repaired = s_rep is not None and s_twin is not None and s_rep >= SHARE * s_twin
    # informative: the twin trains clearly better than the faulty original (else any copy passes)
    informative = s_twin is not None and (s_orig is None or s_twin >= s_orig + 0.1)
    return {
        "name": name, "applied": [f"{a.repair}:{a.code}" for a in result.applied],
        "rounds": len(result.reports), "left": sorted({f.code for f in result.final.findings
                                                       if f.severity != "info"}),
        "metric": "accuracy" if result.repaired.accuracy is not None else "r2",
        "original": s_orig, "repaired_score": s_rep, "twin": s_twin, "repaired": repaired,
        "informative": informative,
        "twin_alarms": [f"{f.code}:{f.severity}" for f in twin_report.findings
                        if f.severity != "info" and KNOWN.get(name) != f.code],
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps of each set-up")
    parser.add_argument("--only", nargs="*", help="fault names to run")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args()
    console = Console(width=140)
    names = args.only or list(TWINS)
    rows = []
    for i, name in enumerate(names, 1):
        console.print(f"[{i}/{len(names)}] {name}", style="dim")
        rows.append(evaluate(name, args.steps))
    table = Table(title=f"repairs after {args.steps} steps", title_justify="left", show_edge=False)
    for col in ("fault", "fixes applied", "left", "metric", "original", "repaired", "twin",
                ">= 90%", "informative", "twin alarms"):
        table.add_column(col, overflow="fold")

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    for r in rows:
        table.add_row(r["name"], ", ".join(r["applied"]) or "none", ", ".join(r["left"]),
                      r["metric"], pct(r["original"]), pct(r["repaired_score"]), pct(r["twin"]),
                      "yes" if r["repaired"] else "NO", "yes" if r["informative"] else "",
                      ", ".join(r["twin_alarms"]))
    console.print(table)
    n_rep = sum(r["repaired"] for r in rows)
    n_alarm = sum(bool(r["twin_alarms"]) for r in rows)
    inf = [r for r in rows if r["informative"]]
    n_inf = sum(r["repaired"] for r in inf)
    summary = {"faults": len(rows), "repaired": n_rep, "share": n_rep / len(rows),
               "informative": len(inf), "informative_repaired": n_inf,
               "twin_false_alarms": n_alarm, "steps": args.steps,
               "seconds": round(sum(r["seconds"] for r in rows), 1)}
    console.print(f"[bold]totals[/bold]: {n_rep}/{len(rows)} repaired to >= 90% of the healthy "
                  f"twin ({100 * summary['share']:.1f}%); where the twin trains >= 0.1 better than the "
                  f"original: {n_inf}/{len(inf)}; twins with a warning or error: "
                  f"{n_alarm}/{len(rows)}; fix time {summary['seconds']} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"summary": summary, "faults": rows}, indent=2))
    console.print(f"written {args.json}")


if __name__ == "__main__":
    main()
