"""The command line: reports, JSON, --fail-on, and one-line errors with exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lossdoctor.cli import main

GOOD = '''
import torch
from torch import nn

def make():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3), nn.Softmax(dim=1))
    return {"model": model, "inputs": torch.randn(32, 8),
            "targets": torch.randint(0, 3, (32,)), "loss_fn": nn.CrossEntropyLoss()}

def healthy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    return {"model": model, "inputs": torch.randn(32, 8),
            "targets": torch.randint(0, 3, (32,)), "loss_fn": nn.CrossEntropyLoss()}

def raises():
    raise ValueError("no data today")

def wrong_keys():
    return {"model": None, "inputs": None}

def not_a_dict():
    return 3

def bad_shapes():
    model = nn.Linear(8, 3)
    return {"model": model, "inputs": torch.randn(4, 8), "targets": torch.randn(5, 2),
            "loss_fn": nn.MSELoss()}

def model_raises():
    return {"model": nn.Linear(8, 3), "inputs": torch.randn(4, 5),
            "targets": torch.zeros(4, dtype=torch.long), "loss_fn": nn.CrossEntropyLoss()}
'''


@pytest.fixture
def target(tmp_path: Path) -> Path:
    p = tmp_path / "my_model.py"
    p.write_text(GOOD)
    return p


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_report_and_fail_on(target: Path) -> None:
    code, out, _ = run("diagnose", f"{target}:make")
    assert code == 0 and "double-softmax" in out and "per-layer measurements" in out
    assert run("diagnose", f"{target}:make", "--fail-on", "error")[0] == 1
    assert run("diagnose", f"{target}:healthy", "--fail-on", "warning")[0] == 0


def test_json(target: Path) -> None:
    code, out, _ = run("diagnose", f"{target}:make", "--json")
    data = json.loads(out)
    assert code == 0 and data["codes"] == ["double-softmax"]
    assert data["findings"][0]["evidence"]["output_op"] == "softmax"
    assert data["trace"]["task"] == "multiclass" and data["trace"]["n_classes"] == 3


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":raises", "raised ValueError: no data today"),
        (":wrong_keys", "missing targets, loss_fn"),
        (":not_a_dict", "must return a dict"),
        (":nothing_here", "has no 'nothing_here'"),
        (":bad_shapes", "loss_fn raised"),
        (":model_raises", "the model raised RuntimeError"),
        ("", "expected FILE.py:FACTORY"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(target: Path, suffix: str, message: str) -> None:
    code, out, err = run("diagnose", f"{target}{suffix}")
    assert code == 2, out
    assert message in err and err.startswith("lossdoctor: error: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_file_and_no_target() -> None:
    code, _, err = run("diagnose", "no/such/file.py:make")
    assert code == 2 and "no such file" in err
    code, _, err = run("diagnose")
    assert code == 2 and "either TARGET" in err


@pytest.mark.slow
def test_console_script_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "lossdoctor", "diagnose", "--example",
                           "saturated-neuron", "--fail-on", "warning"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "mse-on-saturating-output" in done.stdout
