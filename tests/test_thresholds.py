"""Truth tables on hand-built traces: each line is crossed exactly where its docstring says."""

import math
from dataclasses import replace

import pytest

from lossdoctor.checks import run_checks
from lossdoctor.checks.init_loss import expected_bce, expected_ce
from lossdoctor.trace import (
    InputStats,
    LayerStats,
    LossStats,
    OutputStats,
    StepStats,
    TargetStats,
    TensorStats,
    Trace,
)


def ts(rms: float = 1.0, shape: tuple[int, ...] = (64, 100), mean: float = 0.0) -> TensorStats:
    n = math.prod(shape)
    return TensorStats(shape, n, mean, rms, math.sqrt(max(rms**2 - mean**2, 0)), -3 * rms,
                       3 * rms, 0, 0)


def act(i: int, pre_rms: float, op: str = "relu", **kw: object) -> LayerStats:
    return LayerStats(index=i, name=f"act{i}", kind="activation", op=op, phase="model",
                      inputs=ts(pre_rms), output=ts(pre_rms / 1.4), **kw)  # type: ignore[arg-type]


def lin(i: int, grad_rms: float) -> LayerStats:
    return LayerStats(index=i, name=f"lin{i}", kind="linear", op="Linear", phase="model",
                      inputs=ts(), output=ts(), fan_in=100, weight_rms=0.14, grad_rms=grad_rms)


def trace(layers: tuple[LayerStats, ...] = (), loss: float = 2.3, input_rms: float = 1.0,
          batch: int = 64) -> Trace:
    targets = TargetStats(ts(4.5, (batch,), 4.5), "int", True, False, False, False,
                          {c: batch // 10 for c in range(10)}, 8.25, 28.5)
    return Trace(
        task="multiclass", n_classes=10, batch_size=batch, layers=layers, params=(),
        loss=LossStats(value=loss, kind="cross_entropy", reduction="mean", source="module",
                       requires_grad=True, output_grad_rms=0.01),
        output=OutputStats(ts(1.0, (batch, 10)), "Linear", False, False),
        targets=targets,
        inputs=InputStats(ts(input_rms, (batch, 32)), 0.9, 1.1, 32),
        optimizer=None,
    )


def codes(t: Trace) -> set[str]:
    return {f.code for f in run_checks(t)}


def test_clean_trace_has_no_findings() -> None:
    assert run_checks(trace((act(0, 1.0), act(1, 1.0), act(2, 1.0)))) == []


@pytest.mark.parametrize(("total", "fires"), [(99.0, False), (101.0, True)])
def test_signal_line_is_100x(total: float, fires: bool) -> None:
    up = trace(tuple(act(i, total ** (i / 3)) for i in range(4)))
    down = trace(tuple(act(i, total ** (-i / 3)) for i in range(4)))
    assert ("signal-exploding" in codes(up)) is fires
    assert ("signal-vanishing" in codes(down)) is fires


@pytest.mark.parametrize(("total", "fires"), [(999.0, False), (1001.0, True)])
def test_gradient_line_is_1e3(total: float, fires: bool) -> None:
    vanish = trace(tuple(lin(i, total ** ((i - 3) / 3)) for i in range(4)))
    explode = trace(tuple(lin(i, total ** ((3 - i) / 3)) for i in range(4)))
    assert ("grad-vanishing" in codes(vanish)) is fires
    assert ("grad-exploding" in codes(explode)) is fires


@pytest.mark.parametrize(("fraction", "fires"), [(0.5, False), (0.51, True)])
def test_saturation_line_is_half(fraction: float, fires: bool) -> None:
    t = trace((act(0, 3.0, op="tanh", saturated=fraction),))
    assert ("saturation" in codes(t)) is fires


@pytest.mark.parametrize(("fraction", "batch", "units", "severity"),
                         [(0.69, 64, 100, None), (0.7, 64, 100, "warning"), (1.0, 64, 100, "error"),
                          (0.9, 7, 100, None),   # partly dead on a small batch: not judged
                          (1.0, 5, 100, "error"),  # a whole layer dead: 2^-(5 * 100)
                          (1.0, 1, 4, None)])   # B * U = 4 < 8: could be chance
def test_dead_relu_line_is_70_percent(fraction: float, batch: int, units: int,
                                      severity: str | None) -> None:
    t = trace((act(0, 1.0, dead_units=fraction, units=units),), batch=batch)
    found = [f.severity for f in run_checks(t) if f.code == "dead-relu"]
    assert found == ([severity] if severity else [])


def test_init_loss_lines_follow_logit_scale() -> None:
    warn, err = expected_ce(10, 3.0), expected_ce(10, 30.0)
    assert "init-loss-high" not in codes(trace(loss=warn * 0.99))
    sev = {f.code: f.severity for f in run_checks(trace(loss=warn * 1.01))}
    assert sev["init-loss-high"] == "warning"
    sev = {f.code: f.severity for f in run_checks(trace(loss=err * 1.01))}
    assert sev["init-loss-high"] == "error"


@pytest.mark.parametrize(("off", "severity"), [(None, "error"), (2.4, "info"), (50.0, "error")])
def test_init_loss_judges_the_network_with_dropout_off(off: float | None, severity: str) -> None:
    """A high training-mode loss whose dropout-off value is under the line is dropout's variance
    (1/(1-p) per layer): info, no reinit offered; a net still high with dropout off is not."""
    t = trace(loss=expected_ce(10, 30.0) * 1.01)
    t = replace(t, loss=replace(t.loss, dropout_off_value=off))
    found = [f for f in run_checks(t) if f.code == "init-loss-high"]
    assert [f.severity for f in found] == [severity]
    assert ("dropout_off_loss" in found[0].evidence) is (severity == "info")
    assert (found[0].fixes == ()) is (severity == "info")


def test_expected_losses_match_their_closed_forms() -> None:
    assert expected_ce(10, 0.0) == pytest.approx(math.log(10))
    # small logits: E[CE] = ln K + s^2 (K - 1) / (2K) + O(s^4)
    assert expected_ce(10, 0.1) == pytest.approx(math.log(10) + 0.01 * 0.45, abs=2e-3)
    assert expected_bce(0.0) == pytest.approx(math.log(2))
    # large logits: E[max_j z_j - z_0] = 1.54 s for K = 10 (story 1)
    assert expected_ce(10, 1000.0) / 1000 == pytest.approx(1.54, rel=0.03)


@pytest.mark.parametrize(("input_rms", "fires"), [(9.9, False), (10.1, True), (0.11, False),
                                                  (0.09, True)])
def test_input_scale_line_is_one_decade(input_rms: float, fires: bool) -> None:
    assert ("input-not-normalized" in codes(trace(input_rms=input_rms))) is fires


def test_sum_reduction_needs_a_batch() -> None:
    t = trace()
    summed = replace(t, loss=replace(t.loss, reduction="sum", value=2.3 * 64))
    assert "sum-reduction" in codes(summed)
    assert "sum-reduction" not in codes(replace(summed, batch_size=1))


@pytest.mark.parametrize(("losses", "code"), [
    # a He net at depth 20 under SGD 0.01 + momentum 0.9: falls, spikes 25x, ends near its start
    ((2.30, 2.0, 1.3, 0.61, 14.9, 4.38, 2.99), "lr-too-high"),
    ((2.30, 2.1, 1.9, 1.7, 1.8, 1.5, 1.4), None),  # a wobble on the way down: healthy
    ((2.30, 2.0, 1.0, 0.5, 1.1, 0.8, 0.6), None),  # 2.2x the low but under 1.5x the first
    ((2.30, 2.25, 3.6, 2.2, 2.1, 2.1, 2.0), None),  # 1.57x the first, 1.6x the low before it
    # story 1 re-initialised at lr 0.5: overshoots once and recovers (trains well over 100 steps)
    ((2.30, 6.68, 3.43, 2.59, 2.48, 2.40, 2.36, 2.33, 2.305, 2.297), None),
])
def test_a_loss_spike_in_the_probe_steps_is_a_learning_rate_too_high(
        losses: tuple[float, ...], code: str | None) -> None:
    t = replace(trace(), steps=StepStats(losses, (5e-5,) * (len(losses) - 1), "SGD", 0.01, True))
    found = [f for f in run_checks(t) if f.code in ("lr-too-high", "lr-too-low")]
    assert [f.code for f in found] == ([code] if code else [])
    if code:
        assert found[0].evidence["loss_peak"] == max(losses) and found[0].severity == "warning"
