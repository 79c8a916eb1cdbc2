"""The built-in examples (the stories of DESIGN.md) and the rendered report."""

import math
import os
from pathlib import Path

import pytest

import lossdoctor as ld
from lossdoctor.examples import EXAMPLES

GOLDEN = Path(__file__).parent / "golden"


def test_story_1_deep_relu() -> None:
    report = ld.diagnose(**EXAMPLES["deep-relu"]())
    by = {f.code: f for f in report.findings}
    assert {"init-loss-high", "signal-exploding"} <= report.codes
    init = by["init-loss-high"]
    assert init.severity == "error"
    assert init.evidence["chance_level"] == pytest.approx(math.log(10))
    assert init.evidence["loss"] > 1e5  # story 1: a first loss in the millions
    sig = by["signal-exploding"]
    # trunc-normal(0.5): std(w) = 0.5 * sqrt(0.774); ReLU + dropout(0.5) gain per layer is
    # sqrt(750 * 0.1935 / 2 * 2) = 12.0 (8.5 without dropout's 1/keep factor)
    assert sig.evidence["gain_per_layer"] == pytest.approx(12.0, rel=0.1)
    assert sig.evidence["weight_gain_median"] == pytest.approx(0.5 * math.sqrt(0.774 * 750),
                                                             rel=0.05)
    text = str(report)
    assert "init-loss-high" in text and "ln 10 = 2.30" in text


def test_healthy_example_is_clean_and_near_ln_10() -> None:
    report = ld.diagnose(**EXAMPLES["healthy-mlp"]())
    assert not report.has("warning")
    assert report.trace.loss.value == pytest.approx(math.log(10), rel=0.2)


def test_story_2_neuron() -> None:
    sat = ld.diagnose(**EXAMPLES["saturated-neuron"]())
    f = next(f for f in sat.findings if f.code == "mse-on-saturating-output")
    s = 1 / (1 + math.exp(-4))
    assert f.evidence["sigmoid_slope_at_rms"] == pytest.approx(s * (1 - s))
    half = ld.diagnose(**EXAMPLES["half-cross-entropy"]())
    assert "loss-degenerate" in half.codes and half.trace.loss.value == 0


def test_rendered_report_matches_golden_file() -> None:
    text = ld.diagnose(**EXAMPLES["saturated-neuron"]()).render(width=100)
    golden = GOLDEN / "saturated-neuron.txt"
    if os.environ.get("LOSSDOCTOR_UPDATE_GOLDEN") == "1":  # rewrite, then review the diff
        golden.write_text(text)
    assert golden.exists(), f"{golden} is missing: run with LOSSDOCTOR_UPDATE_GOLDEN=1"
    assert text == golden.read_text()
