"""The lab: the three stories reproduce their numbers with fixed seeds."""

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from lossdoctor.cli import main
from lossdoctor.examples import trunc_normal_tf
from lossdoctor.lab import losses, neuron
from lossdoctor.lab.datasets import load
from lossdoctor.lab.mlp import Config, batches, build, train


def cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize(("loss", "w", "b", "end"), [
    ("mse", 0.6, 0.9, 0.094), ("mse", 2.0, 2.0, 0.203), ("ce", 0.6, 0.9, 0.012),
    ("ce", 2.0, 2.0, 0.012),
])
def test_story_2_numbers(loss: str, w: float, b: float, end: float) -> None:
    run = neuron.run(loss, w, b)
    assert round(run.outputs[300], 3) == end
    z = w + b
    a = 1 / (1 + math.exp(-z))
    expected = a * a * (1 - a) if loss == "mse" else a  # dC/dw at x = 1, y = 0
    assert run.first_grad[0] == pytest.approx(expected, rel=1e-5)


def test_story_2_quadratic_from_2_2_stalls() -> None:
    run = neuron.run("mse", 2.0, 2.0)
    assert run.outputs[150] > 0.9  # still near 1 after half the run
    half = neuron.run("half-ce", 2.0, 2.0)
    assert set(half.losses) == {0.0} and len(set(half.outputs)) == 1


def test_lab_neuron_cli(tmp_path: Path) -> None:
    code, out, _ = cli("lab", "neuron", "--json", "--plot", str(tmp_path / "n.png"))
    assert code == 0
    data = json.loads(out)
    assert round(data["runs"][1]["outputs"][-1], 3) == 0.203
    assert "loss-degenerate" in data["diagnoses"]["-mean(y*log(a)) from (2, 2)"]
    assert "mse-on-saturating-output" in data["diagnoses"]["quadratic from (2, 2)"]
    assert (tmp_path / "n.png").stat().st_size > 10_000
    code, _, err = cli("lab", "neuron", "--w", "1")
    assert code == 2 and "both --w and --b" in err


def test_story_3_numbers() -> None:
    rows = {r.code: r.value for r in losses.table()}
    assert rows["F.cross_entropy(logits, labels)"] == pytest.approx(
        rows["F.cross_entropy(logits, onehot)"])
    assert rows["l2_loss(w)"] == 45.5
    assert rows["ones.sum(0)"] == [2.0, 2.0, 2.0]
    assert rows["ones.sum(1)"] == [3.0, 3.0]
    assert rows["ones.sum()"] == 6.0
    assert rows["F.cross_entropy(logits, labels, reduction='sum')"] == pytest.approx(
        2 * rows["F.cross_entropy(logits, labels)"])
    model = build(Config(layers=(8,)), 4, 3)
    l2 = losses.l2_both_ways(model)
    biases = sum(float((p.detach() ** 2).sum()) / 2 for p in model.parameters() if p.dim() == 1)
    assert l2["all"] - l2["weights"] == pytest.approx(biases, rel=1e-6)


def test_lab_losses_cli() -> None:
    code, out, _ = cli("lab", "losses")
    assert code == 0 and "45.50" in out and "[2.0, 2.0, 2.0]" in out and "biases" in out


def first_loss(**kw: object) -> float:
    cfg = Config(steps=0, **kw)  # type: ignore[arg-type]
    split = load("digits")
    model = build(cfg, split.x_train.shape[1], split.classes)
    return train(cfg, split, model, batches(split, cfg)()).first_data_loss


def test_story_1_first_losses() -> None:
    assert first_loss() > 1e5                       # six 750-wide ReLU layers, trunc-normal(0.5)
    assert 10 <= first_loss(layers=(750,)) < 100    # one hidden layer: in the tens
    assert first_loss(act="tanh") < 30              # tanh saturates instead of exploding
    he = first_loss(init="he", bias_init="zeros", dropout=0.0)
    assert he == pytest.approx(math.log(10), rel=0.2)
    # dropout(0.5) in train mode doubles the second moment per layer: He alone then grows
    assert first_loss(init="he", bias_init="zeros") > 2 * he


def test_tf_truncated_normal() -> None:
    t = trunc_normal_tf(torch.empty(200_000), 0.5, torch.Generator().manual_seed(0))
    assert float(t.abs().max()) <= 1.0
    assert float(t.std()) == pytest.approx(0.5 * math.sqrt(0.7737), rel=0.01)


def test_lab_mlp_cli_trains_and_plots(tmp_path: Path) -> None:
    code, out, _ = cli("lab", "mlp", "--layers", "64", "64", "--init", "he", "--bias-init",
                       "zeros", "--no-dropout", "--optimizer", "adam", "--lr", "0.003",
                       "--steps", "60", "--plot", str(tmp_path / "loss.png"), "--l2", "1e-4",
                       "--l2-on", "weights")
    assert code == 0, out
    assert "first batch loss" in out and "test accuracy" in out and "no problems found" in out
    assert (tmp_path / "loss.png").stat().st_size > 10_000
    code, out, _ = cli("lab", "mlp", "--layers", "64", "--steps", "30", "--json", "--optimizer",
                       "momentum", "--lr", "0.05", "--init", "he", "--bias-init", "zeros")
    data = json.loads(out)
    assert data["test_accuracy"] > 0.8 and len(data["losses"]) == 30


def test_lab_mlp_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    import numpy as np

    np.savez(bad, X=np.zeros((4, 2)), y=np.array([0.5, 1, 0, 1]))
    for args, message in (
        (["--init", "normal"], "give a standard deviation"),
        (["--dataset", str(bad)], "integer class labels"),
        (["--dataset", "mnist"], "unknown dataset"),
        (["--dropout", "1.5"], "dropout must be in"),
    ):
        code, _, err = cli("lab", "mlp", "--steps", "0", *args)
        assert code == 2 and message in err, (args, err)


def test_help_has_examples() -> None:
    for cmd in ("mlp", "neuron", "losses"):
        code, out, _ = cli("lab", cmd, "--help")
        assert code == 0 and "Example" in out
