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
from lossdoctor.examples import digits
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


def made(head: bool = True) -> dict[str, object]:
    torch.manual_seed(0)
    layers = [nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)]
    model = nn.Sequential(*layers, *([nn.Softmax(dim=1)] if head else []))
    x, y = digits()
    return {"model": model, "inputs": x, "targets": y, "loss_fn": nn.CrossEntropyLoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.1)}


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
