"""``ld.fix`` / ``lossdoctor fix``: repair a copy, train both, the user's objects untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import lossdoctor as ld
from lossdoctor.case import Case
from lossdoctor.cli import main
from lossdoctor.fix import train

FACTORY = '''
import torch
from torch import nn
from lossdoctor.examples import digits


def make(head=True):
    torch.manual_seed(0)
    layers = [nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)]
    model = nn.Sequential(*layers, *([nn.Softmax(dim=1)] if head else []))
    x, y = digits()
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.1)}
'''


_NS: dict[str, object] = {}
exec(FACTORY, _NS)  # the script the CLI tests load is the factory the API tests call


def made(head: bool = True) -> dict[str, object]:
    return _NS["make"](head)  # type: ignore[operator,no-any-return]


def test_fix_repairs_a_double_softmax_to_the_healthy_accuracy() -> None:
    case = made()
    model = case["model"]
    assert isinstance(model, nn.Module)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    result = ld.fix(**case, steps=100)  # type: ignore[arg-type]
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert [a.repair for a in result.applied] == ["drop-final-activation"]
    assert result.clean and "double-softmax" in result.reports[0].codes
    assert not isinstance(list(result.case.model.children())[-1], nn.Softmax)
    healthy = made(head=False)
    report = ld.diagnose(**healthy, verify_steps=0)  # type: ignore[arg-type]
    control = train(Case(healthy["model"], healthy["inputs"], healthy["targets"],  # type: ignore[arg-type]
                         healthy["loss_fn"], healthy["optimizer"]), 100, report.trace)  # type: ignore[arg-type]
    assert control.accuracy is not None and result.repaired.accuracy is not None
    assert result.original.accuracy is not None
    assert result.repaired.accuracy >= 0.9 * control.accuracy
    assert result.repaired.accuracy > result.original.accuracy + 0.1
    assert len(result.repaired.losses) == 101
    text = result.render()
    assert "drop-final-activation for double-softmax" in text and "accuracy" in text


def test_a_healthy_set_up_is_left_as_it_is() -> None:
    result = ld.fix(**made(head=False), steps=5)  # type: ignore[arg-type]
    assert result.applied == [] and len(result.reports) == 1
    assert result.original.losses == result.repaired.losses


@pytest.mark.slow
def test_cli_fix_prints_both_runs_and_writes_the_script(tmp_path: Path) -> None:
    factory = tmp_path / "model.py"
    factory.write_text(FACTORY)
    script = tmp_path / "fixed.py"
    res = CliRunner().invoke(main, ["fix", f"{factory}:make", "--steps", "20", "--script",
                                    str(script)])
    assert res.exit_code == 0, res.output
    assert "original" in res.output and "repaired" in res.output
    text = script.read_text()
    compile(text, str(script), "exec")
    assert "case = drop_final_activation(case)" in text
    res = CliRunner().invoke(main, ["fix", f"{factory}:make", "--script", str(script)])
    assert res.exit_code == 2 and "--force" in res.output


@pytest.mark.slow
def test_story_1_fix_trains_like_the_story_written_right() -> None:
    """Issue 14's bar: the repaired story 1 reaches >= 90% of its hand-fixed twin's accuracy
    (He init, zero biases, the story's dropout, SGD at TensorFlow's default 0.01). 200 steps:
    at 100 the two are within float noise of each other (thread count changes the reduction
    order of a chaotic run: 59.4% vs 60.2% on 1 thread, 50.8% vs 58.6% on 2); at 200 the repair
    leads on both (78.9% vs 68.8%, 82.0% vs 64.8%)."""
    from twins import story_1 as twin_of_story_1

    from lossdoctor.examples import deep_relu

    result = ld.fix(**deep_relu(), steps=200)
    assert [a.repair for a in result.applied] == ["reinit"] and result.clean
    tw = twin_of_story_1()
    report = ld.diagnose(**tw, verify_steps=0)
    assert not report.has("warning"), report.codes  # the twin is healthy: no false alarm
    twin = train(Case(tw["model"], tw["inputs"], tw["targets"], tw["loss_fn"], tw["optimizer"]),
                 200, report.trace)
    assert result.original.accuracy is not None and result.original.accuracy < 0.2
    assert twin.accuracy is not None and result.repaired.accuracy is not None
    assert twin.accuracy > 0.4
    assert result.repaired.accuracy >= 0.9 * twin.accuracy


def test_train_scores_regression_by_r2_and_multilabel_per_label() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.randn(4, 2)
    model = nn.Linear(4, 2)
    case = Case(model, x, y, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1))
    t = train(case, 50, ld.diagnose(**case.__dict__, verify_steps=0).trace)
    with torch.no_grad():
        out = model(x).double()
    yd = y.double()
    expected = 1 - float(((out - yd) ** 2).sum() / ((yd - yd.mean(0)) ** 2).sum())
    assert t.accuracy is None and t.r2 == pytest.approx(expected, rel=1e-9) and t.r2 > 0.9
    logits = nn.Linear(4, 3)
    labels = (torch.randn(64, 3) > 0).float()
    case = Case(logits, x, labels, nn.BCEWithLogitsLoss(), None)
    t = train(case, 1, ld.diagnose(**case.__dict__, verify_steps=0).trace)
    with torch.no_grad():
        share = float(((logits(x) > 0) == (labels > 0.5)).float().mean())
    assert t.r2 is None and t.accuracy == pytest.approx(share)
