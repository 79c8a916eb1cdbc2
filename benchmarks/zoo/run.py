"""Diagnose every healthy zoo set-up and every injected bug; score quiet and found.

- healthy: a warning or error on a set-up at its library default is a false alarm (info is
  fine), unless the zoo lists it as a true finding there, measured (``Setup.true_findings``);
- bugs: found when an expected code is reported (any severity), first when it is the first
  finding.

Run: ``python benchmarks/zoo/run.py [--fast] [--only NAME ...] [--json PATH]``; ``--fast`` turns
verification off (``verify_steps=0``). Results go to ``benchmarks/results/zoo.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from bugs import BUGS  # noqa: E402
from models import ZOO  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import lossdoctor as ld  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results" / "zoo.json"


def _diagnose(case: dict[str, Any], verify_steps: int) -> tuple[ld.Report | None, str | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ld.diagnose(case["model"], case["inputs"], case["targets"], case["loss_fn"],
                               case.get("optimizer"), verify_steps=verify_steps), None
    except ld.LossDoctorError as e:
        return None, f"refused: {e}"
    except Exception as e:  # noqa: BLE001 - a crash is a result to report
        return None, f"crash: {type(e).__name__}: {e}"


def healthy(verify_steps: int, only: set[str]) -> list[dict[str, Any]]:
    rows = []
    for s in ZOO:
        if only and s.name not in only:
            continue
        torch.manual_seed(0)
        case = s.make()
        t = time.perf_counter()
        report, error = _diagnose(case, verify_steps)
        findings = report.findings if report is not None else []
        rows.append({
            "name": s.name, "family": s.family,
            "params": sum(p.numel() for p in case["model"].parameters()),
            "loss": report.trace.loss.kind if report else None,
            "loss_source": report.trace.loss.source if report else None,
            "layers": len(report.trace.layers) if report else 0,
            "found": [f"{f.code}:{f.severity}" for f in findings],
            "loud": [f"{f.code}:{f.severity}" for f in findings
                     if f.severity in ("warning", "error") and f.code not in s.true_findings],
            "true": [f"{f.code}:{f.severity}" for f in findings if f.code in s.true_findings],
            "why_true": s.why,
            "error": error, "seconds": round(time.perf_counter() - t, 2),
        })
        print(f"  {s.name}: {rows[-1]['found'] or 'quiet'}{' ' + error if error else ''}",
              file=sys.stderr, flush=True)
    return rows


def bugs(verify_steps: int, only: set[str]) -> list[dict[str, Any]]:
    rows = []
    for b in BUGS:
        if only and b.name not in only:
            continue
        torch.manual_seed(0)
        report, error = _diagnose(b.make(), verify_steps)
        findings = report.findings if report is not None else []
        rows.append({
            "name": b.name, "model": b.model, "what": b.what, "expected": sorted(b.expected),
            "found": [f"{f.code}:{f.severity}" for f in findings],
            "detected": any(f.code in b.expected for f in findings),
            "first": bool(findings) and findings[0].code in b.expected, "error": error,
        })
        print(f"  {b.name}: {rows[-1]['found']}{' ' + error if error else ''}", file=sys.stderr,
              flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="verify_steps=0")
    ap.add_argument("--only", nargs="*", default=[], help="zoo or bug names")
    ap.add_argument("--json", type=Path, default=None, help=f"write results (default {RESULTS} "
                    "on a full run)")
    args = ap.parse_args()
    only = set(args.only)
    steps = 0 if args.fast else 20
    print("healthy zoo set-ups:", file=sys.stderr)
    h = healthy(steps, only)
    print("injected bugs:", file=sys.stderr)
    b = bugs(steps, only)
    console = Console(width=140)
    t = Table(title=f"real-architecture zoo (verify_steps={steps})")
    for c in ("model", "family", "params", "loss", "recorded", "false alarms", "true findings",
              "info"):
        t.add_column(c)
    for r in h:
        info = [f for f in r["found"] if f not in r["loud"] and f not in r["true"]]
        t.add_row(r["name"], r["family"], f"{r['params'] / 1e6:.2f}M",
                  f"{r['loss']} ({r['loss_source']})", str(r["layers"]),
                  r["error"] or (", ".join(r["loud"]) or "-"), ", ".join(r["true"]) or "-",
                  ", ".join(info) or "-")
    console.print(t)
    t = Table(title="injected bugs")
    for c in ("bug", "model", "expected", "found", "first"):
        t.add_column(c)
    for r in b:
        t.add_row(r["name"], r["model"], ", ".join(r["expected"]),
                  r["error"] or ", ".join(r["found"]), "yes" if r["first"] else "no")
    console.print(t)
    alarms = sum(bool(r["loud"] or r["error"]) for r in h)
    found = sum(r["detected"] for r in b)
    first = sum(r["first"] for r in b)
    summary = {"healthy": len(h), "false_alarms": alarms, "bugs": len(b), "found": found,
               "first": first, "verify_steps": steps}
    for r in h:
        if r["true"]:
            console.print(f"true finding on {r['name']}: {r['why_true']}")
    console.print(f"library-default set-ups: {len(h)}, false alarms (a warning/error that is "
                  f"not a measured true finding, or a refusal): {alarms}; "
                  f"bugs: {len(b)}, found: {found}, named first: {first}")
    out = args.json or (RESULTS if not only else None)
    if out is not None:
        out.write_text(json.dumps({"summary": summary, "healthy": h, "bugs": b}, indent=1) + "\n")


if __name__ == "__main__":
    main()
