"""Run every real bug (and its fixed program) through lossdoctor and score the result.

Scores, per source and in total, over the scored bugs (those some lossdoctor code names):
- recall: an expected code was reported (any severity);
- top-1: the first finding (most severe first) is an expected code;
- top-1 by cause: the first cause (``lossdoctor.causes``: the root no other finding explains,
  over diagnose's and the monitor's findings together) is an expected code;
- false alarms: fixed programs with any warning or error;
- verified fixes: detected bugs whose expected finding carries a ``verified`` fix;
- refusals (``ld.LossDoctorError``) and crashes (any other exception).
One-batch bugs run ``ld.diagnose`` on the first batch (default settings); training bugs also
run a short training loop under ``ld.Monitor``, and their findings follow diagnose's. Every
fixed program is trained and must learn (accuracy above chance, or the loss at most half its
start for regression).

Run: ``python benchmarks/realbugs/run.py [--fast] [--only ID ...] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from all_bugs import BUGS  # noqa: E402
from baselines import DEEPFD_TABLE, DEEPFD_TOOLS, DEEPMUFL_TABLE, DEEPMUFL_TOOLS  # noqa: E402
from bug import Bug, Program  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import lossdoctor as ld  # noqa: E402
from lossdoctor.causes import find_causes  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results" / "realbugs.json"
MONITOR_EVERY = 10
EVAL_CAP = 512

# The fast subset (tests/test_realbugs.py and --fast): quick, varied, one per family.
FAST = ("deepmufl-66407123", "deepmufl-48385830", "deepmufl-69901379", "deepmufl-59078187",
        "deepmufl-34673164", "deepmufl-46869312", "deepmufl-41596619", "deepmufl-50306988",
        "DeepFD-50079585", "TheDeepChecker-IPS_15", "TheDeepChecker-IPS_17",
        "forums-discuss.pytorch.org/t/43814")


def tail(e: BaseException) -> str:
    """Where it broke: the innermost lossdoctor frame (if any), the innermost frame, the error."""
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if "lossdoctor" in f.filename]
    picked = ([ours[-1]] if ours else []) + ([frames[-1]] if frames else [])
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in picked[::-1])
    return f"{type(e).__name__}: {str(e)[:200]} (at {where})"


@torch.no_grad()
def mean_baseline(p: Program) -> float:
    """The loss of always predicting the targets' mean (what a regression learns first)."""
    y = p.y[:EVAL_CAP].float()
    return float(p.loss_fn(y.mean(0, keepdim=True).expand_as(y), y))


@torch.no_grad()
def evaluate_program(p: Program) -> tuple[float, float | None]:
    """Loss and accuracy on (at most EVAL_CAP of) the training data, in eval mode."""
    was = p.model.training
    p.model.eval()
    try:
        x, y = p.x[:EVAL_CAP], p.y[:EVAL_CAP]
        out = p.model(x)
        loss = float(p.loss_fn(out, y))
        acc = p.accuracy(out, y) if p.accuracy is not None else None
    finally:
        p.model.train(was)
    return loss, acc


def chance(p: Program) -> float:
    """Majority-class share: the accuracy of always answering the same class."""
    if p.chance is not None:
        return p.chance
    y = p.y[:EVAL_CAP]
    yi = y.argmax(-1) if y.dim() > 1 and y.shape[-1] > 1 else y.reshape(-1).round()
    return float(torch.unique(yi, return_counts=True)[1].max()) / len(yi)


def train(p: Program, monitor: ld.Monitor | None) -> list[float]:
    """A plain training loop on random batches (what ``model.fit`` does, shuffled)."""
    g = torch.Generator().manual_seed(1)
    n = len(p.x)
    b = min(p.batch_size, n)
    losses = []
    p.model.train()
    for _ in range(p.steps):
        idx = torch.randperm(n, generator=g)[:b]
        p.optimizer.zero_grad()
        loss = p.loss_fn(p.model(p.x[idx]), p.y[idx])
        loss.backward()
        p.optimizer.step()
        if monitor is not None:
            monitor.observe(loss)
        losses.append(loss.item())
    return losses


def run_program(bug: Bug, fixed: bool) -> dict[str, Any]:
    """Build one program, diagnose it (and monitor it for training bugs), train it if fixed."""
    row: dict[str, Any] = {"found": [], "first": None, "first_cause": None, "causes": [],
                           "verified_codes": [], "refusal": None, "crash": None, "monitor": []}
    torch.manual_seed(0)
    t0 = time.perf_counter()
    try:
        p = bug.make(fixed)
    except Exception as e:  # noqa: BLE001 - a broken port is reported, not hidden
        row["crash"] = f"port: {tail(e)}"
        return row
    xb, yb = p.batch()
    findings: list[Any] = []
    trace = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            report = ld.diagnose(p.model, xb, yb, p.loss_fn, p.optimizer)
            findings, trace = list(report.findings), report.trace
        except ld.LossDoctorError as e:
            row["refusal"] = str(e)[:300]
        except Exception as e:  # noqa: BLE001
            row["crash"] = tail(e)
        need_training = bug.scope == "training" or fixed
        if need_training:
            before = evaluate_program(p) if fixed else (None, None)
            mon = None
            if bug.scope == "training":
                mon = ld.Monitor(p.model, p.optimizer, every=MONITOR_EVERY, on_finding="ignore")
            try:
                if mon is not None:
                    with mon:
                        losses = train(p, mon)
                    seen = {f.code for f in findings}
                    extra = [f for f in mon.report().findings if f.code not in seen]
                    row["monitor"] = [f"{f.code}:{f.severity}" for f in extra]
                    findings += extra
                else:
                    losses = train(p, None)
                row["loss_first"], row["loss_last"] = losses[0], losses[-1]
            except ld.LossDoctorError as e:
                row["refusal"] = row["refusal"] or f"monitor: {str(e)[:300]}"
            except Exception as e:  # noqa: BLE001
                row["train_error"] = tail(e)
            if fixed and "train_error" not in row:
                after = evaluate_program(p)
                row["before"], row["after"] = before, after
                row["chance"] = chance(p) if p.accuracy is not None else None
                row["mean_baseline"] = mean_baseline(p) if p.accuracy is None else None
                row["trains"] = trains(before, after, row["chance"], row["mean_baseline"])
    row["found"] = [f"{f.code}:{f.severity}" for f in findings]
    row["first"] = findings[0].code if findings else None
    causes = find_causes(findings, trace)
    row["causes"] = [c.codes for c in causes]
    row["first_cause"] = causes[0].root.code if causes else None
    row["verified_codes"] = sorted({f.code for f in findings if f.verification is not None
                                    and f.verification.status == "verified"})
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def trains(before: tuple, after: tuple, base: float | None, mean_loss: float | None) -> bool:
    """Classification: accuracy at least chance + 0.1 and the loss fell; regression: the loss
    at most half its start and at most 3/4 of the loss of predicting the targets' mean (noisy
    real data such as diabetes does not allow much better)."""
    (l0, _), (l1, a1) = before, after
    if not (l1 == l1) or l1 == float("inf"):
        return False
    if a1 is not None and base is not None:
        return a1 >= min(base + 0.1, 0.99) and l1 < l0
    return l1 <= 0.5 * l0 and (mean_loss is None or l1 <= 0.75 * mean_loss)


def score(bug: Bug) -> dict[str, Any]:
    """Everything measured on one bug."""
    res = run_program(bug, False)
    hit = [c.split(":")[0] for c in res["found"] if c.split(":")[0] in bug.expected]
    out = {
        "id": bug.id, "source": bug.source, "source_id": bug.source_id, "title": bug.title,
        "scope": bug.scope, "cause": bug.cause, "expected": sorted(bug.expected),
        "scored": bug.scored, **res,
        "detected": bool(hit), "top1": res["first"] in bug.expected,
        "top1_cause": res["first_cause"] in bug.expected,
        "verified": any(c in bug.expected for c in res["verified_codes"]),
        "baselines": baselines(bug),
    }
    if bug.has_fix:
        f = run_program(bug, True)
        loud = [c for c in f["found"] if not c.endswith(":info")]
        out["fixed"] = {**f, "loud": loud, "fix": bug.fix}
    return out


def baselines(bug: Bug) -> dict[str, Any]:
    """Published per-bug results of other tools for the same original bug."""
    out: dict[str, Any] = {}
    if bug.source_id in DEEPMUFL_TABLE:
        out["deepmufl_table"] = DEEPMUFL_TABLE[bug.source_id]
    if bug.source_id in DEEPFD_TABLE:
        out["deepfd_table"] = DEEPFD_TABLE[bug.source_id]
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over a set of rows."""
    scored = [r for r in rows if r["scored"]]
    fixed = [r["fixed"] for r in rows if "fixed" in r]
    det = [r for r in scored if r["detected"]]
    return {
        "bugs": len(rows), "scored": len(scored),
        "detected": len(det), "recall": len(det) / len(scored) if scored else 0.0,
        "top1": sum(r["top1"] for r in scored),
        "top1_rate": sum(r["top1"] for r in scored) / len(scored) if scored else 0.0,
        "top1_cause": sum(r["top1_cause"] for r in scored),
        "top1_cause_rate": sum(r["top1_cause"] for r in scored) / len(scored) if scored else 0.0,
        "verified": sum(r["verified"] for r in det),
        "refusals": sum(r["refusal"] is not None for r in rows),
        "crashes": sum(r["crash"] is not None for r in rows)
        + sum(f["crash"] is not None for f in fixed),
        "fixed": len(fixed), "fixed_train": sum(bool(f.get("trains")) for f in fixed),
        "false_alarms": sum(bool(f["loud"]) for f in fixed),
        "false_alarms_on_training": sum(bool(f["loud"]) and bool(f.get("trains")) for f in fixed),
        "seconds": round(sum(r.get("seconds", 0) + r.get("fixed", {}).get("seconds", 0)
                             for r in rows), 1),
    }


def comparison(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """lossdoctor against the published tools, on the same bugs."""
    out: dict[str, Any] = {}
    mu = [r for r in rows if r["scored"] and "deepmufl_table" in r["baselines"]]
    if mu:
        out["deepmufl_bugs"] = {"bugs": len(mu), "lossdoctor": sum(r["detected"] for r in mu),
                                **{t: sum(r["baselines"]["deepmufl_table"][t] for r in mu)
                                   for t in DEEPMUFL_TOOLS}}
    fd = [r for r in rows if r["scored"] and "deepfd_table" in r["baselines"]]
    if fd:
        out["deepfd_bugs"] = {"bugs": len(fd), "lossdoctor": sum(r["detected"] for r in fd),
                              **{f"{t} detect": sum(r["baselines"]["deepfd_table"]["detect"][t]
                                                    for r in fd) for t in DEEPFD_TOOLS},
                              **{f"{t} diagnose":
                                 sum(r["baselines"]["deepfd_table"]["diagnose"][t] for r in fd)
                                 for t in DEEPFD_TOOLS}}
    return out


def run(fast: bool = False, only: tuple[str, ...] = (), progress: Console | None = None
        ) -> dict[str, Any]:
    """Evaluate the catalogue (or a subset)."""
    bugs = [b for b in BUGS if (not fast or b.id in FAST) and (not only or b.id in only
                                                               or b.source_id in only)]
    rows = []
    for i, b in enumerate(bugs, 1):
        r = score(b)
        rows.append(r)
        if progress is not None:
            mark = "ok " if r["detected"] else ("-- " if not r["scored"] else "MISS")
            fx = r.get("fixed")
            fxs = "" if fx is None else (" fixed:" + ("quiet" if not fx["loud"] else "LOUD")
                                          + ("/trains" if fx.get("trains") else "/NO-TRAIN"))
            progress.print(f"[{i}/{len(bugs)}] {mark} {b.id:28s} {r['seconds']:5.1f}s "
                           f"{','.join(r['found'])[:70]}{fxs}", highlight=False)
    sources = sorted({r["source"] for r in rows})
    return {"summary": summarise(rows),
            "per_source": {s: summarise([r for r in rows if r["source"] == s]) for s in sources},
            "comparison": comparison(rows), "bugs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the fast subset")
    parser.add_argument("--only", nargs="*", default=(), help="bug ids or source ids")
    parser.add_argument("--json", type=Path, default=None,
                        help=f"where to write the results (default {RESULTS} for a full run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    console = Console(width=150)
    result = run(args.fast, tuple(args.only), progress=console)
    table = Table(title="real bugs", title_justify="left", show_edge=False)
    for c in ("bug", "scope", "expected", "result", "top-1", "top-1 cause", "fix", "found",
              "fixed program"):
        table.add_column(c, overflow="fold")
    for r in result["bugs"]:
        fx = r.get("fixed")
        fixed = "" if fx is None else (("quiet" if not fx["loud"] else ", ".join(fx["loud"]))
                                       + (" trains" if fx.get("trains") else " DOES NOT TRAIN"))
        res = ("crash" if r["crash"] else "refused" if r["refusal"] and not r["found"] else
               "yes" if r["detected"] else "MISSED" if r["scored"] else "n/a")
        table.add_row(r["id"], r["scope"], ", ".join(r["expected"]) or "(none)", res,
                      "yes" if r["top1"] else "", "yes" if r["top1_cause"] else "",
                      "verified" if r["verified"] else "",
                      ", ".join(r["found"]) or (r["refusal"] or r["crash"] or "")[:80], fixed)
    console.print(table)
    per = Table(title="per source", title_justify="left", show_edge=False)
    for c in ("source", "bugs", "scored", "recall", "top-1", "top-1 cause", "verified", "refusals",
              "crashes",
              "fixed", "fixed train", "false alarms", "seconds"):
        per.add_column(c)
    for name, s in [*result["per_source"].items(), ("all", result["summary"])]:
        per.add_row(name, str(s["bugs"]), str(s["scored"]),
                    f"{s['detected']} ({100 * s['recall']:.0f}%)",
                    f"{s['top1']} ({100 * s['top1_rate']:.0f}%)",
                    f"{s['top1_cause']} ({100 * s['top1_cause_rate']:.0f}%)", str(s["verified"]),
                    str(s["refusals"]), str(s["crashes"]), str(s["fixed"]),
                    str(s["fixed_train"]), str(s["false_alarms"]), str(s["seconds"]))
    console.print(per)
    comp = result["comparison"]
    for name, c in comp.items():
        console.print(f"[bold]same bugs, {name}[/bold] ({c['bugs']} scored bugs): " + "; ".join(
            f"{k} {v}" for k, v in c.items() if k != "bugs"))
    s = result["summary"]
    console.print(
        f"[bold]totals[/bold]: {s['bugs']} bugs ({s['scored']} scored); recall "
        f"{s['detected']}/{s['scored']} = {100 * s['recall']:.1f}%; top-1 {s['top1']}/"
        f"{s['scored']} by finding, {s['top1_cause']}/{s['scored']} by cause; verified fixes "
        f"{s['verified']}; refusals {s['refusals']}; crashes "
        f"{s['crashes']}; fixed programs {s['fixed']} ({s['fixed_train']} train), false alarms "
        f"{s['false_alarms']}/{s['fixed']} ({s['false_alarms_on_training']} on programs that "
        f"train); {s['seconds']} s")
    path = args.json or (RESULTS if not args.fast and not args.only else None)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, default=str))
        console.print(f"written {path}")


if __name__ == "__main__":
    main()
