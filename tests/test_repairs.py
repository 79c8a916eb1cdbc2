"""Verified fixes: applied to deep copies, measured, and written out as a script."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from scenarios import FAULTS
from torch import nn

import lossdoctor as ld
from lossdoctor.examples import EXAMPLES
from lossdoctor.repairs import Case, reinit


def verification(report: ld.Report, code: str) -> ld.Finding:
    f = next(f for f in report.findings if f.code == code)
    assert f.verification is not None, code
    return f


def test_story_1_init_fix_is_verified_near_ln_10() -> None:
    f = verification(ld.diagnose(**EXAMPLES["deep-relu"]()), "init-loss-high")
    v = f.verification
    assert v is not None and v.status == "verified", v.message
    assert v.before["loss_at_init"] > 1e5
    assert v.after["loss_at_init"] == pytest.approx(math.log(10), rel=0.2)
    assert v.after["signal_gain_per_layer"] == pytest.approx(1.0, abs=0.15)
    assert "init-loss-high" not in v.after["all_codes"]


def test_story_2_as_a_network_learns_faster_with_cross_entropy() -> None:
    v = verification(ld.diagnose(**EXAMPLES["saturated-neuron"]()),
                     "mse-on-saturating-output").verification
    assert v is not None and v.status == "verified"
    assert v.after["relative_decrease"] > 10 * v.before["relative_decrease"]


@pytest.mark.parametrize(("fault", "code"), [
    ("softmax-into-ce", "double-softmax"),
    ("sigmoid-into-bce-logits", "double-softmax"),
    ("decay-everything", "weight-decay-on-bias"),
    ("adam-with-l2", "adam-coupled-l2"),
    ("summed-ce", "sum-reduction"),
    ("summed-squares", "sum-reduction"),
    ("raw-pixels", "input-not-normalized"),
    ("dead-layer", "dead-relu"),
    ("vanishing-grad-default-20", "grad-vanishing"),
])
def test_fix_is_verified(fault: str, code: str) -> None:
    f = verification(ld.diagnose(**FAULTS[fault][0]()), code)
    v = f.verification
    assert v is not None and v.status == "verified", v.message
    assert code not in v.after["all_codes"]
    # "codes" lists the warnings and errors before the fix: this one exactly when it is loud
    assert (code in v.before["codes"]) == (f.severity in ("warning", "error"))
    assert math.isfinite(v.after["loss_after_steps"])


def test_functional_softmax_cannot_be_removed_mechanically() -> None:
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.lin(x), dim=1)

    report = ld.diagnose(Net(), torch.randn(32, 8), torch.randint(0, 4, (32,)),
                         nn.CrossEntropyLoss())
    v = verification(report, "double-softmax").verification
    assert v is not None and v.status == "failed" and "functional" in v.message


def test_verification_off() -> None:
    report = ld.diagnose(**EXAMPLES["deep-relu"](), verify_steps=0)
    assert report.findings and all(f.verification is None for f in report.findings)


def test_reinit_helper_keeps_the_rng_and_reaches_unit_scale() -> None:
    torch.manual_seed(5)
    case = EXAMPLES["deep-relu"]()
    state = torch.get_rng_state()
    reinit(case["model"], case["inputs"], "relu")
    assert torch.equal(state, torch.get_rng_state())
    loss = nn.functional.cross_entropy(case["model"](case["inputs"]), case["targets"])
    assert float(loss.detach()) == pytest.approx(math.log(10), rel=0.05)


@pytest.mark.slow
def test_fix_script_runs_and_is_clean(tmp_path: Path) -> None:
    target = tmp_path / "story.py"
    target.write_text("from lossdoctor.examples import deep_relu as make\n")
    script = tmp_path / "fixed.py"
    done = subprocess.run([sys.executable, "-m", "lossdoctor", "diagnose", f"{target}:make",
                           "--fix-script", str(script), "--verify-steps", "5"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    text = script.read_text()
    assert "reinit(case.model, case.inputs, family='relu')" in text
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert "no problems found" in run.stdout


def test_case_copy_leaves_the_original_alone() -> None:
    case = FAULTS["adam-with-l2"][0]()
    from lossdoctor.repairs import adamw, copy_case

    original = Case(case["model"], case["inputs"], case["targets"], case["loss_fn"],
                    case["optimizer"])
    copy, mapping = copy_case(original)
    fixed = adamw(copy)
    assert type(original.optimizer).__name__ == "Adam"
    assert type(fixed.optimizer).__name__ == "AdamW"
    orig_ids = {id(p) for p in original.model.parameters()}
    assert not orig_ids & {id(p) for g in fixed.optimizer.param_groups for p in g["params"]}
    assert len(mapping) == len(orig_ids)


def test_reinit_is_one_forward_per_pass_and_leaves_unit_scale() -> None:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(60):
        layers += [nn.Linear(32, 32), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(32, 5))
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(1))
    x = torch.randn(64, 32)
    reinit(model, x, "relu")
    assert len(calls) == 2  # linear in depth: one forward per pass, not one per layer
    rms = []
    for m in model:
        x = m(x)
        if isinstance(m, nn.Linear):
            rms.append(float(x.detach().pow(2).mean().sqrt()))
    assert rms[:-1] == pytest.approx([1.0] * 60, rel=1e-3)
    assert rms[-1] == pytest.approx(0.1, rel=1e-3)


def test_a_budget_that_nothing_fits_skips_verification_and_says_so() -> None:
    report = ld.diagnose(**EXAMPLES["deep-relu"](), budget=1e-9)
    checked = [f.verification for f in report.findings if f.verification is not None]
    assert checked and all(v.status == "not verified" and "budget" in v.message
                           for v in checked)
    note = next(n for n in report.trace.notes if n.startswith("budget"))
    assert "probe steps stopped after" in note and "reinit not verified" in note
    with pytest.raises(ld.LossDoctorError, match="budget"):
        ld.diagnose(**EXAMPLES["deep-relu"](), budget=0)


def test_deep_sigmoid_falls_back_to_relu_and_leaves_the_users_model() -> None:
    """Xavier re-init cannot undo sigmoid's slope <= 1/4 over 10 layers (still grad-vanishing);
    the fallback swaps the hidden sigmoids for ReLU with He init and is verified by training."""
    from scenarios import deep_sigmoid

    case = deep_sigmoid()
    report = ld.diagnose(**case)
    v = verification(report, "grad-vanishing").verification
    assert v is not None and v.status == "verified" and v.repair == "relu-activations", v.message
    assert "grad-vanishing" not in v.after["all_codes"]
    assert v.after["loss_after_steps"] < v.before["loss_after_steps"] - 0.05  # 2.31 -> 2.18
    assert sum(isinstance(m, nn.Sigmoid) for m in case["model"].modules()) == 10  # untouched
    lines = ld.repairs.verify.script_lines(report.trace, report.findings)
    assert "relu_activations(case.model, case.inputs)" in lines


def test_relu_swap_keeps_the_output_activation_and_refuses_functional_ones() -> None:
    from lossdoctor.repairs import relu_activations

    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid())
    relu_activations(model, torch.randn(16, 4))
    assert isinstance(model[1], nn.ReLU) and isinstance(model[3], nn.Sigmoid)
    with pytest.raises(ld.LossDoctorError, match="no hidden"):
        relu_activations(nn.Sequential(nn.Linear(4, 1)), torch.randn(16, 4))


@pytest.mark.parametrize(("fault", "code"), [("saturated-tanh", "saturation"),
                                             ("huge-head", "init-loss-high")])
def test_an_init_fix_that_does_not_train_better_is_not_verified(fault: str, code: str) -> None:
    """On separable blobs these nets learn fast as they are (tanh x5: 4.40 -> 0.215 in 10 steps;
    a 30x head: 22 -> 5e-6): the re-init fixes the statistic but not the training, so it is
    reported as tried and not verified (a verified fix must make training better)."""
    v = verification(ld.diagnose(**FAULTS[fault][0]()), code).verification
    assert v is not None and v.status == "not verified", v.message
    assert code not in v.after["all_codes"]  # the statistic is fixed ...
    lowest = min(x for x in v.before["losses"] if math.isfinite(x))
    assert min(v.after["losses"]) >= lowest  # ... the training is not better
    assert "the unfixed run" in v.message
