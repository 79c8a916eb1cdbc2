"""torch.distributed: the ranks' exchange, the cross-rank checks, diagnose on a DDP model.

The slow tests run one real two-process gloo job (``benchmarks/faults/ddp_runs.py``) with every
scenario in it, under a hard timeout: each distributed bug injected and found, healthy DDP and
FSDP2 runs quiet, no hang when a rank raises or stalls. The truth tables below drive the checks
with hand-made exchanged rows (both sides of every line).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from ddp_runs import BATCH, N, launch
from torch import nn

from lossdoctor.checks import run_checks
from lossdoctor.findings import Finding
from lossdoctor.probe.wrappers import clean_name, unwrap
from lossdoctor.trace import LossStats, RankStats, RunStats, Trace
from test_catalog import assert_in_catalogue

# ---------------------------------------------------------------- truth tables (fast)


def rank_stats(**kw: Any) -> RankStats:
    """Two healthy ranks: identical parameters, different batches, applied = average."""
    base: dict[str, Any] = dict(
        world=2, step=5, wrapper="ddp", params=("w", "b"),
        param_sums=((1.5, -0.25), (1.5, -0.25)), param_norms=((3.0, 0.5), (3.0, 0.5)),
        param_eps=(2.0 ** -23, 2.0 ** -23), param_numel=(64, 8),
        batch=((1.0, 4.0), (2.0, 4.5)), repeat_period=(0, 0), first_nonfinite=(0, 0),
        grad_local=((0.2, -0.1), (0.4, 0.3)), grad_synced=((0.3, 0.1), (0.3, 0.1)),
        no_grad=((), ()), never_grad=(), exchanges=2, stale=(False, False))
    base.update(kw)
    return RankStats(**base)


def findings(rs: RankStats) -> dict[str, Finding]:
    trace = Trace(task="unknown", n_classes=None, batch_size=1, layers=(), params=(),
                  loss=LossStats(value=1.0, kind="custom", reduction=None, source="monitor",
                                 requires_grad=True),
                  output=None, targets=None, inputs=None, optimizer=None,
                  run=RunStats(step=rs.step, losses=(1.0,) * rs.step, window=10, ranks=rs))
    found = {f.code: f for f in run_checks(trace, scopes=("run",))}
    for f in found.values():
        assert_in_catalogue(f)
    return found


def test_healthy_ranks_are_quiet() -> None:
    assert findings(rank_stats()) == {}


def test_params_differ_beyond_rounding_only() -> None:
    eps = 2.0 ** -23
    # one float32 ulp of the norm on every element: rounding, quiet
    assert "ranks-params-differ" not in findings(rank_stats(
        param_norms=((3.0, 0.5), (3.0 * (1 + eps), 0.5))))
    f = findings(rank_stats(param_norms=((3.0, 0.5), (3.0 * (1 + 100 * eps), 0.5))))
    assert f["ranks-params-differ"].evidence["ranks"] == [0, 1]
    assert f["ranks-params-differ"].evidence["params"] == ["w"]
    assert f["ranks-params-differ"].evidence["max_relative_diff"] == pytest.approx(100 * eps)
    # the sum's line scales with sqrt(numel): 8 ulps x norm x sqrt(64) = 8 x 3 x 8 eps
    assert "ranks-params-differ" not in findings(rank_stats(
        param_sums=((1.5, -0.25), (1.5 + 100 * eps, -0.25))))
    assert "ranks-params-differ" in findings(rank_stats(
        param_sums=((1.5, -0.25), (1.5 + 300 * eps, -0.25))))
    # sharded (FSDP) parameters are not compared
    nan = math.nan
    assert findings(rank_stats(param_sums=((nan, nan), (nan, nan)),
                               param_norms=((nan, nan), (1.0, 2.0)))) == {}


def test_grad_factor_fires_at_n_and_one_over_n_only() -> None:
    mean = (0.3, 0.1)
    for k, fires in ((2.0, True), (0.5, True), (1.0, False), (1.5, False), (0.7, False),
                     (2.0 * 1.02, False), (2.0 * 1.005, True)):
        synced = tuple(k * m for m in mean)
        got = findings(rank_stats(grad_synced=(synced, synced)))
        assert ("grad-world-size" in got) == fires, k
        if fires:
            assert got["grad-world-size"].evidence["factor"] == pytest.approx(k)
    # stale gradients mix old steps into .grad: not judged
    s2 = tuple(2 * m for m in mean)
    assert "grad-world-size" not in findings(rank_stats(grad_synced=(s2, s2), stale=(True, False)))
    # ranks that disagree (not one factor): not judged here
    assert "grad-world-size" not in findings(rank_stats(grad_synced=(s2, mean)))


def test_buffers_differ_beyond_rounding_only() -> None:
    eps = 2.0 ** -23
    kw = dict(buffers=("bn.running_mean",), buffer_sums=((0.5,), (0.5,)))
    assert findings(rank_stats(**kw, buffer_norms=((2.0,), (2.0 * (1 + 4 * eps),)))) == {}
    f = findings(rank_stats(**kw, buffer_norms=((2.0,), (2.0 * 1.01,))))
    assert f["ranks-buffers-differ"].evidence["buffers"] == ["bn.running_mean"]
    assert f["ranks-buffers-differ"].evidence["max_relative_diff"] == pytest.approx(0.01)


def test_same_batch_order_unused_and_nonfinite_rows() -> None:
    f = findings(rank_stats(batch=((1.0, 4.0), (1.0, 4.0))))
    assert f["ranks-same-batch"].evidence["ranks"] == [0, 1]
    assert "ranks-same-batch" not in findings(rank_stats(batch=((1.0, 4.0), (1.0, 4.25))))
    f = findings(rank_stats(repeat_period=(0, 8)))
    assert f["epochs-same-order"].evidence == {"ranks": [1], "batches_per_epoch": 8, "step": 5}
    f = findings(rank_stats(never_grad=("head.weight",), exchanges=2))
    assert f["params-without-grad"].evidence["params"] == ["head.weight"]
    assert "params-without-grad" not in findings(rank_stats(never_grad=("head.weight",),
                                                            exchanges=1))
    f = findings(rank_stats(first_nonfinite=(6, 4)))
    assert f["nonfinite"].evidence["first_rank"] == 1
    assert f["nonfinite"].evidence["ranks"] == [0, 1]


def test_bad_timeout_is_a_clear_error() -> None:
    from lossdoctor import LossDoctorError, Monitor

    with pytest.raises(LossDoctorError, match="timeout must be a positive number of seconds"):
        Monitor(nn.Linear(2, 2), timeout=0)


def test_wrapper_names_and_no_process_group_on_import() -> None:
    import lossdoctor  # noqa: F401

    assert not dist.is_initialized()
    assert clean_name("enc._fsdp_wrapped_module.layers.0._checkpoint_wrapped_module.fc") == \
        "enc.layers.0.fc"
    inner = nn.Linear(2, 2)
    assert unwrap(torch.nn.DataParallel(inner)) is inner
    assert unwrap(inner) is inner


# ---------------------------------------------------------------- real jobs (slow)

SCENARIOS = ["healthy", "fsdp-healthy", "accumulate", "not-wrapped", "reinit-after-wrap",
             "nudged-on-one-rank", "no-sampler", "bn-healthy", "bn-unsynced", "no-set-epoch",
             "allreduce-sum", "divide-twice", "unused-param", "diagnose-ddp",
             "diagnose-raises-on-rank1", "accelerate", "accelerate-unsharded-loader", "hf-trainer",
             "nan-on-rank1", "raise-mode", "nan-stop", "raise-on-rank1", "stall-on-rank1"]


@pytest.fixture(scope="module")
def job() -> list[dict[str, Any]]:
    return launch(SCENARIOS, world=2, timeout=240)


def codes(job: list[dict[str, Any]], name: str, rank: int = 0) -> dict[str, Any]:
    return job[rank][name]["codes"]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_batchnorm_buffers_broadcast_by_ddp_are_quiet(job: list[dict[str, Any]]) -> None:
    assert codes(job, "bn-healthy") == {} and codes(job, "bn-healthy", 1) == {}
    # 2 ranks x (9 + 5 x 6 parameters + 2 x 2 float buffers + one per code) float64s
    from lossdoctor.checks.catalog import RULES
    assert job[0]["bn-healthy"]["extra"]["bytes_per_exchange"] == \
        2 * 8 * (9 + 5 * 6 + 2 * 2 + len(RULES))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["healthy", "fsdp-healthy"])
def test_healthy_runs_are_quiet_and_exchange_compact_rows(job: list[dict[str, Any]],
                                                          name: str) -> None:
    assert codes(job, name) == {} and codes(job, name, 1) == {}
    extra = job[0][name]["extra"]
    assert extra["steps"] == 3 * N // (2 * BATCH)
    # names as the user wrote them, without DDP's "module." or FSDP's wrapper levels
    assert extra["layers"] == ["net.0", "net.1", "net.2"]
    assert extra["params"] == ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"]
    # 2 ranks x (9 header + 5 x 4 parameters + one per catalogue code) float64s
    from lossdoctor.checks.catalog import RULES
    assert extra["bytes_per_exchange"] == 2 * 8 * (9 + 5 * 4 + len(RULES))


@pytest.mark.slow
def test_gradient_accumulation_with_no_sync_is_quiet(job: list[dict[str, Any]]) -> None:
    # observe after every micro-batch: scheduled step 10 sees micro-batch 1's unsynced gradient
    # in .grad, which DDP averages together with micro-batch 2's
    assert job[0]["accumulate"]["extra"]["steps"] == 2 * N // (2 * BATCH)
    assert codes(job, "accumulate") == {} and codes(job, "accumulate", 1) == {}


@pytest.mark.slow
def test_on_finding_raise_raises_on_every_rank_at_the_same_step(
        job: list[dict[str, Any]]) -> None:
    for rank in (0, 1):
        extra = job[rank]["raise-mode"]["extra"]
        assert extra["raised"] == "FindingRaised"
        assert extra["message"].startswith("ranks-same-batch: step 1:"), extra["message"]


@pytest.mark.slow
@pytest.mark.parametrize("name, code, evidence", [
    ("not-wrapped", "ranks-params-differ", {"wrapper": "none", "count": 4, "step": 1}),
    ("reinit-after-wrap", "ranks-params-differ", {"wrapper": "ddp", "count": 4, "step": 1}),
    ("nudged-on-one-rank", "ranks-params-differ",
     {"wrapper": "ddp", "count": 1, "params": ["net.0.bias"], "step": 5}),
    ("no-sampler", "ranks-same-batch", {"ranks": [0, 1], "step": 1}),
    ("bn-unsynced", "ranks-buffers-differ",
     {"buffers": ["net.1.running_mean", "net.1.running_var"], "wrapper": "ddp", "step": 5}),
    ("no-set-epoch", "epochs-same-order", {"ranks": [0, 1], "batches_per_epoch": 8}),
    ("allreduce-sum", "grad-world-size", {"world": 2, "step": 1}),
    ("divide-twice", "grad-world-size", {"world": 2, "step": 1}),
    ("unused-param", "params-without-grad",
     {"params": ["head2.bias", "head2.weight"], "exchanges": 2}),
    ("nan-on-rank1", "nonfinite", {"first_rank": 1, "rank_steps": [5, 4], "step": 4}),
])
def test_each_distributed_bug_is_found_once_with_its_ranks(
        job: list[dict[str, Any]], name: str, code: str, evidence: dict[str, Any]) -> None:
    found = codes(job, name)
    assert code in found, found
    for key, value in evidence.items():
        assert found[code]["evidence"][key] == value, (key, found[code]["evidence"])
    assert found[code]["evidence"]["ranks"]
    assert codes(job, name, 1) == found  # every rank holds the same findings
    others = set(found) - {code}
    assert not others & {"ranks-params-differ", "ranks-same-batch", "epochs-same-order",
                         "grad-world-size", "params-without-grad", "ranks-buffers-differ"}, others


@pytest.mark.slow
def test_grad_factor_is_the_world_size(job: list[dict[str, Any]]) -> None:
    assert codes(job, "allreduce-sum")["grad-world-size"]["evidence"]["factor"] == \
        pytest.approx(2.0, rel=1e-5)
    assert codes(job, "divide-twice")["grad-world-size"]["evidence"]["factor"] == \
        pytest.approx(0.5, rel=1e-5)


@pytest.mark.slow
def test_stop_on_nonfinite_stops_every_rank_at_the_step_naming_the_rank(
        job: list[dict[str, Any]]) -> None:
    for rank in (0, 1):
        extra = job[rank]["nan-stop"]["extra"]
        assert extra["raised"] == "NonFiniteLoss"
        assert extra["message"].startswith("step 4:")
        assert "on rank 1 (the first to go non-finite; 1 other rank(s) still finite)" in \
            extra["message"]


@pytest.mark.slow
def test_a_rank_that_raises_or_stalls_leaves_no_one_blocked(job: list[dict[str, Any]]) -> None:
    r0, r1 = job[0]["raise-on-rank1"]["extra"], job[1]["raise-on-rank1"]["extra"]
    assert r1["raised"] == "ValueError"
    assert r0["raised"] == "RankFailed" and "rank 1 raised an exception before step 3" in \
        r0["message"]
    assert r0["seconds"] < 10  # told at once, not after the 30 s timeout
    s0 = job[0]["stall-on-rank1"]["extra"]
    assert s0["raised"] == "RankFailed" and "did not join within 2 s" in s0["message"]
    assert 2 <= s0["seconds"] < 5


@pytest.mark.slow
def test_diagnose_on_ddp_one_report_every_rank_bit_identical(job: list[dict[str, Any]]) -> None:
    found = codes(job, "diagnose-ddp")
    assert codes(job, "diagnose-ddp", 1) == found
    assert found["sum-reduction"]["evidence"]["ranks"] == [0, 1]
    assert found["input-not-normalized"]["evidence"]["ranks"] == [1]  # x 50 on rank 1 only
    assert found["input-not-normalized"]["evidence"]["input_rms"] > 10
    for rank in (0, 1):
        assert job[rank]["diagnose-ddp"]["extra"] == {"bit_identical": True,
                                                      "grads_synced": True}


@pytest.mark.slow
def test_diagnose_that_raises_on_one_rank_stops_the_others_at_once(
        job: list[dict[str, Any]]) -> None:
    r0, r1 = (job[r]["diagnose-raises-on-rank1"]["extra"] for r in (0, 1))
    assert r1["raised"] == "LossFnError" and "target batch_size (16)" in r1["message"]
    assert r0["raised"] == "RankFailed"
    assert r0["message"].startswith("rank 1's diagnosis raised LossFnError: loss_fn raised")
    assert r0["seconds"] < 10  # not the 60 s timeout


@pytest.mark.slow
@pytest.mark.integration
def test_accelerate_prepared_model(job: list[dict[str, Any]]) -> None:
    ok, bug = job[0]["accelerate"], job[0]["accelerate-unsharded-loader"]
    assert ok["codes"] == {} and ok["extra"]["steps"] == 2 * N // (2 * BATCH)
    assert ok["extra"]["wrapper"] == "ddp" and ok["extra"]["layers"] == ["net.0", "net.1", "net.2"]
    # a loader left out of accelerator.prepare() is not sharded: both ranks read the same batches
    assert set(bug["codes"]) == {"ranks-same-batch"}
    assert bug["codes"]["ranks-same-batch"]["evidence"]["ranks"] == [0, 1]
    assert job[1]["accelerate-unsharded-loader"]["codes"] == bug["codes"]


@pytest.mark.slow
@pytest.mark.integration
def test_hugging_face_trainer_under_ddp_through_the_callback(job: list[dict[str, Any]]) -> None:
    for rank in (0, 1):
        run = job[rank]["hf-trainer"]
        assert run["codes"] == {}
        assert run["extra"] == {"steps": 10, "wrapper": "ddp", "ddp": "DistributedDataParallel",
                                "layers": ["bert.embeddings.word_embeddings",
                                           "bert.embeddings.token_type_embeddings",
                                           "bert.embeddings.position_embeddings"]}


@pytest.mark.slow
@pytest.mark.integration
def test_lightning_ddp_two_processes_one_report(tmp_path: Path) -> None:
    """Lightning strategy="ddp", devices=2 on CPU, through LossDoctorCallback."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "faults" / "ddp_lightning.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, timeout=180,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1  # the same findings on both ranks
    assert r0["healthy"]["codes"] == {}
    assert r0["healthy"]["steps"] == 16  # 256 examples / 2 ranks / 16 per batch x 2 epochs
    assert r0["healthy"]["layers"] == ["net.0", "net.1", "net.2"]
    assert r0["healthy"]["wrapper"] == "ddp"
    bug = r0["no-sampler"]
    assert bug["steps"] == 32  # every rank reads all 256 examples
    assert bug["codes"]["ranks-same-batch"] == {"severity": "warning", "ranks": [0, 1], "step": 1}
    assert bug["codes"]["epochs-same-order"]["ranks"] == [0, 1]
    assert set(bug["codes"]) == {"ranks-same-batch", "epochs-same-order"}
