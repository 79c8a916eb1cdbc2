"""Theory against measurement: mean-field predictions of per-layer scale and the first loss."""

import math
import statistics

import pytest
import torch
from torch import nn

import lossdoctor as ld
from lossdoctor.lab.mlp import ACTIVATIONS, Config, build
from lossdoctor.theory.activations import moments, unit_moments
from lossdoctor.theory.propagate import critical_gain

OPS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "gelu": "gelu", "silu": "silu",
       "leaky-relu": "leaky_relu:0.01"}


def mlp(act: str, depth: int, scale: float, seed: int, width: int = 256, d: int = 64,
        k: int = 10) -> nn.Sequential:
    """Weights of std scale * g_c / sqrt(fan_in), g_c the activation's critical gain."""
    g = torch.Generator().manual_seed(seed)
    gain = scale * (critical_gain(OPS[act]) or 1.0)
    layers: list[nn.Module] = []
    n = d
    for i in range(depth + 1):
        out = width if i < depth else k
        lin = nn.Linear(n, out)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * gain / math.sqrt(n))
            lin.bias.copy_(torch.randn(out, generator=g) * 0.05)
        layers.append(lin)
        if i < depth:
            layers.append(ACTIVATIONS[act]())
        n = out
    return nn.Sequential(*layers)


def measured_rms(model: nn.Sequential, x: torch.Tensor) -> list[float]:
    out, h = [], x
    with torch.no_grad():
        for m in model:
            h = m(h)
            if isinstance(m, nn.Linear):
                out.append(float(h.double().pow(2).mean().sqrt()))
    return out


X = torch.randn(128, 64, generator=torch.Generator().manual_seed(99)) * 0.8 + 0.3
Y = torch.randint(0, 10, (128,), generator=torch.Generator().manual_seed(98))


@pytest.mark.parametrize("act", sorted(OPS))
@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("depth", [2, 20])
def test_per_layer_rms_within_10_percent(act: str, scale: float, depth: int) -> None:
    ratios = []
    for seed in range(5):
        model = mlp(act, depth, scale, seed)
        pred = [p.rms for p in ld.predict(model, X).layers if p.op == "Linear"]
        ratios.append([p / m for p, m in zip(pred, measured_rms(model, X), strict=True)])
    for i in range(depth + 1):
        assert statistics.median(r[i] for r in ratios) == pytest.approx(1.0, abs=0.10), i


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu", "sigmoid"])
@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_initial_loss_inside_the_measured_band(act: str, scale: float) -> None:
    losses = []
    for seed in range(20):
        model = mlp(act, 6, scale, seed)
        with torch.no_grad():
            losses.append(float(nn.functional.cross_entropy(model(X), Y)))
    losses.sort()
    lo, hi = losses[1], losses[18]  # 5% and 95% of 20 draws
    predicted = ld.predict(mlp(act, 6, scale, 100), X).initial_loss
    assert predicted is not None and lo <= predicted <= hi, (lo, predicted, hi)


def test_story_1_predictions() -> None:
    stats = (784, -0.082, 0.213)  # MNIST scaled to [-0.5, 0.5]
    six = ld.predict(build(Config(), 784, 10), input_stats=stats)
    assert six.initial_loss == pytest.approx(2.7e7, rel=0.05)  # reported: 28,593,700
    assert six.band[0] < 2.86e7 < six.band[1]
    one = ld.predict(build(Config(layers=(750,)), 784, 10), input_stats=stats)
    assert one.initial_loss == pytest.approx(1.0e2, rel=0.1)   # reported: 96.38
    assert one.band[0] < 96.38 < one.band[1]
    no_drop = ld.predict(build(Config(dropout=0.0), 784, 10), input_stats=stats)
    assert no_drop.initial_loss == pytest.approx(3.4e6, rel=0.05)


def test_closed_forms_and_recommendations() -> None:
    assert moments("relu", 2.0) == (1.0, 0.5)
    assert critical_gain("relu") == pytest.approx(math.sqrt(2), rel=1e-6)   # He
    assert critical_gain("tanh") == pytest.approx(1.0, abs=0.05)  # edge of chaos at s_b = 0
    mu = torch.tensor([0.3], dtype=torch.float64)
    var = torch.tensor([2.0], dtype=torch.float64)
    m_gh, v_gh, _ = unit_moments("gelu", mu, var)
    z = 0.3 + math.sqrt(2.0) * torch.randn(4_000_000, generator=torch.Generator().manual_seed(0),
                                            dtype=torch.float64)
    y = nn.functional.gelu(z)
    assert float(m_gh) == pytest.approx(float(y.mean()), abs=2e-3)
    assert float(v_gh) == pytest.approx(float(y.var()), rel=5e-3)
    p = ld.predict(mlp("relu", 4, 1.0, 0), X)
    assert p.recommended_gain == pytest.approx(math.sqrt(2), rel=1e-6)


def test_dropout_and_outside_theory() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 256),
                          nn.ReLU(), nn.MaxPool1d(1), nn.Linear(256, 10))
    p = ld.predict(model, X)
    names = {lp.name: lp for lp in p.layers}
    assert not names["5"].in_theory and any("outside the theory" in n for n in p.notes)
    # dropout doubles the second moment that reaches layer 3
    with torch.no_grad():
        h = model[1](model[0](X))
    expected = 2 * float(h.detach().double().pow(2).mean()) \
        * float(model[3].weight.detach().double().pow(2).mean()) \
        * 256
    assert names["3"].q == pytest.approx(expected + float(model[3].bias.detach().double().pow(2).mean()),
                                         rel=0.05)


def test_predict_input_errors() -> None:
    model = nn.Linear(3, 2)
    with pytest.raises(ld.LossDoctorError, match="either inputs"):
        ld.predict(model)
    with pytest.raises(ld.LossDoctorError, match="second moment"):
        ld.predict(model, input_stats=(3, 1.0, 0.5))


def test_diagnose_cites_the_predicted_gain() -> None:
    from lossdoctor.examples import deep_relu

    report = ld.diagnose(**deep_relu(), verify_steps=0)
    f = next(f for f in report.findings if f.code == "signal-exploding")
    # trunc-normal(0.5), ReLU, dropout 0.5: sqrt(750 * 0.25 * 0.7737) = 12.0 per layer
    assert f.evidence["predicted_gain_per_layer"] == pytest.approx(12.0, rel=0.03)
    assert f.evidence["predicted_gain_per_layer"] == pytest.approx(f.evidence["gain_per_layer"],
                                                                   rel=0.05)
    assert "mean-field theory predicts" in f.summary


def test_predict_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner

    from lossdoctor.cli import main

    r = CliRunner().invoke(main, ["predict", "--input-dim", "784", "--input-mean", "-0.082",
                                  "--input-sq", "0.213", "--json"])
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and data["initial_loss"] == pytest.approx(2.7e7, rel=0.05)
    assert data["band"][0] < data["initial_loss"] < data["band"][1]
    r = CliRunner().invoke(main, ["predict", "--dataset", "digits", "--layers", "256", "256",
                                  "--init", "he", "--bias-init", "zeros", "--no-dropout",
                                  "--plot", str(tmp_path / "rms.png")])
    assert r.exit_code == 0 and "measured" in r.stdout
    assert (tmp_path / "rms.png").stat().st_size > 10_000
    r = CliRunner().invoke(main, ["predict", "--dataset", "digits", "--layers", "256", "--json"])
    rows = json.loads(r.stdout)["rows"]
    assert all(abs(row["ratio"] - 1) < 0.1 for row in rows if row["ratio"] is not None)
    r = CliRunner().invoke(main, ["predict", "nope.py:make"])
    assert r.exit_code == 2 and "no such file" in r.stderr
