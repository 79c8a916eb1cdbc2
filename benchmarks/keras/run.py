"""Run every Keras fault and healthy control through ``ld.diagnose`` on the current backend.

Scores as ``benchmarks/faults/run.py``: recall (an expected code reported, any severity), top-1
(the first cause's root is an expected code), false alarms (a control with any warning or error),
verified fixes (faults whose expected finding carries a fix verified on a clone). Run once per
backend::

    KERAS_BACKEND=tensorflow python benchmarks/keras/run.py
    KERAS_BACKEND=torch python benchmarks/keras/run.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import keras  # noqa: E402
from keras_scenarios import CONTROLS, FAULTS, Scenario  # noqa: E402

import lossdoctor as ld  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"


def evaluate(sc: Scenario) -> dict[str, Any]:
    """Diagnose one scenario and record what it found."""
    made = sc.make()
    t = time.perf_counter()
    try:
        report = ld.diagnose(made["model"], made["inputs"], made["targets"], made.get("loss_fn"),
                             made.get("optimizer"), task=made.get("task"))
        error = None
    except ld.LossDoctorError as e:
        report, error = None, str(e)
    seconds = time.perf_counter() - t
    findings = report.findings if report is not None else []
    hits = [f for f in findings if f.code in sc.expected]
    return {
        "name": sc.name, "expected": sorted(sc.expected), "port_of": sc.port_of,
        "found": [f"{f.code}:{f.severity}" for f in findings], "detected": bool(hits),
        "top1_cause": report is not None and bool(report.causes)
        and report.causes[0].root.code in sc.expected,
        "loud": any(f.severity in ("warning", "error") for f in findings),
        "verified": any(f.verification is not None and f.verification.status == "verified"
                        for f in hits),
        "error": error, "seconds": round(seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    backend = keras.backend.backend()
    faults = [evaluate(sc) for sc in FAULTS]
    controls = [evaluate(sc) for sc in CONTROLS]
    detected = [r for r in faults if r["detected"]]
    summary = {
        "backend": backend, "keras": keras.__version__, "faults": len(faults),
        "controls": len(controls), "recall": len(detected) / len(faults),
        "top1_cause_precision": sum(r["top1_cause"] for r in detected) / max(len(detected), 1),
        "false_alarms": sum(r["loud"] for r in controls),
        "verified_fixes": sum(r["verified"] for r in faults),
        "seconds": round(sum(r["seconds"] for r in faults + controls), 1),
    }
    for r in faults:
        mark = "ok " if r["detected"] else "MISS"
        fixed = " (fix verified)" if r["verified"] else ""
        print(f"{mark} fault   {r['name']:28} {', '.join(r['found']) or r['error']}{fixed}")
    for r in controls:
        mark = "ALARM" if r["loud"] else "ok "
        print(f"{mark} control {r['name']:28} {', '.join(r['found']) or r['error'] or '-'}")
    print(json.dumps(summary))
    out = args.json or RESULTS / f"keras-{backend}.json"
    out.write_text(json.dumps({"summary": summary, "faults": faults, "controls": controls},
                              indent=1) + "\n")


if __name__ == "__main__":
    main()
