"""Run every fault scenario and healthy control through ``diagnose`` and score the result.

Scores:
- recall: faults where at least one expected code was reported (any severity);
- top-1 precision: detected faults whose most severe finding is an expected code;
- top-1 by cause: detected faults whose first cause (``Report.causes[0]``, the root finding no
  other finding explains) is an expected code;
- false alarms: controls with any warning or error;
- verified fixes: repairable faults whose expected finding carries a ``verified`` fix.

Run: ``python benchmarks/faults/run.py [--fast] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from catalog import CONTROLS, FAULTS, Scenario  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import lossdoctor as ld  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results" / "faults.json"
FAST = ("story1-deep-relu-trunc-normal", "story2-saturated-neuron-mse", "nan-from-sqrt",
        "redundant-softmax-module", "labels-1-based", "story3-adam-coupled-l2",
        "vanishing-grad-deep-sigmoid", "flipped-sign-loss")
FAST_CONTROLS = ("cnn-bn", "he-mlp-20", "prenorm-residual", "log-softmax-nll")


def evaluate(sc: Scenario) -> dict[str, Any]:
    """Diagnose one scenario and record what it found."""
    torch.manual_seed(0)
    made = sc.make()
    t = time.perf_counter()
    try:
        report = ld.diagnose(made["model"], made["inputs"], made["targets"], made["loss_fn"],
                             made.get("optimizer"), task=made.get("task"))
        error = None
    except ld.LossDoctorError as e:
        report, error = None, str(e)
    seconds = time.perf_counter() - t
    findings = report.findings if report is not None else []
    hits = [f for f in findings if f.code in sc.expected]
    loud = [f for f in findings if f.severity in ("warning", "error")]
    verified = any(f.verification is not None and f.verification.status == "verified"
                   for f in hits)
    return {
        "name": sc.name, "family": sc.family, "expected": sorted(sc.expected),
        "found": [f"{f.code}:{f.severity}" for f in findings], "detected": bool(hits),
        "top1": bool(findings) and findings[0].code in sc.expected,
        "top1_cause": report is not None and bool(report.causes)
        and report.causes[0].root.code in sc.expected,
        "causes": [c.codes for c in report.causes] if report is not None else [],
        "loud": bool(loud), "repairable": sc.repairable and bool(sc.expected),
        "verified": verified, "error": error, "seconds": round(seconds, 3),
        "why_missed": sc.why_missed,
    }


def summarise(faults: list[dict[str, Any]], controls: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over all scenarios."""
    detected = [r for r in faults if r["detected"]]
    repairable = [r for r in faults if r["repairable"]]
    return {
        "faults": len(faults), "controls": len(controls),
        "recall": len(detected) / len(faults) if faults else 0.0,
        "top1_precision": sum(r["top1"] for r in detected) / len(detected) if detected else 0.0,
        "top1_cause_precision": (sum(r["top1_cause"] for r in detected) / len(detected)
                                 if detected else 0.0),
        "false_alarms": sum(r["loud"] for r in controls),
        "repairable": len(repairable),
        "verified_fix_rate": (sum(r["verified"] for r in repairable) / len(repairable)
                              if repairable else 0.0),
        "missed": [r["name"] for r in faults if not r["detected"]],
        "seconds": round(sum(r["seconds"] for r in faults + controls), 1),
    }


def run(fast: bool = False) -> dict[str, Any]:
    """Evaluate the catalogue (or its fast subset)."""
    faults = [sc for sc in FAULTS if not fast or sc.name in FAST]
    controls = [sc for sc in CONTROLS if not fast or sc.name in FAST_CONTROLS]
    f_rows = [evaluate(sc) for sc in faults]
    c_rows = [evaluate(sc) for sc in controls]
    return {"summary": summarise(f_rows, c_rows), "faults": f_rows, "controls": c_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the fast subset")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args()
    console = Console(width=120)
    result = run(args.fast)
    table = Table(title="fault scenarios", title_justify="left", show_edge=False)
    for col in ("scenario", "family", "expected", "detected", "top-1", "top-1 cause", "fix",
                "found"):
        table.add_column(col, overflow="fold")
    for r in result["faults"]:
        table.add_row(r["name"], r["family"], ", ".join(r["expected"]),
                      "yes" if r["detected"] else "MISSED", "yes" if r["top1"] else "",
                      "yes" if r["top1_cause"] else "",
                      "verified" if r["verified"] else ("-" if not r["repairable"] else "no"),
                      ", ".join(r["found"]) or (r["error"] or ""))
    console.print(table)
    controls = Table(title="healthy controls", title_justify="left", show_edge=False)
    for col in ("control", "warnings or errors", "info"):
        controls.add_column(col, overflow="fold")
    for r in result["controls"]:
        loud = [f for f in r["found"] if not f.endswith(":info")]
        info = [f for f in r["found"] if f.endswith(":info")]
        controls.add_row(r["name"], ", ".join(loud) or "none", ", ".join(info))
    console.print(controls)
    s = result["summary"]
    console.print(
        f"[bold]totals[/bold]: {s['faults']} faults, {s['controls']} controls; recall "
        f"{100 * s['recall']:.1f}%; top-1 precision {100 * s['top1_precision']:.1f}% by finding, "
        f"{100 * s['top1_cause_precision']:.1f}% by cause; false "
        f"alarms {s['false_alarms']}/{s['controls']}; verified fixes "
        f"{100 * s['verified_fix_rate']:.1f}% of {s['repairable']} repairable; "
        f"{s['seconds']} s")
    for r in result["faults"]:
        if not r["detected"]:
            console.print(f"missed {r['name']}: {r['why_missed'] or 'no reason recorded'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str))
    console.print(f"written {args.json}")


if __name__ == "__main__":
    main()
