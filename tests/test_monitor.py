"""The monitor on real short training runs with injected faults, and healthy runs."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from runs import SPLIT, codes, mlp, train
from scenarios import SmallCNN
from torch import nn

import lossdoctor as ld
from lossdoctor.monitor import FindingRaised, LossDoctorWarning, NonFiniteLoss
from test_catalog import assert_in_catalogue


def test_healthy_runs_are_quiet() -> None:
    model = mlp()
    assert codes(train(model, torch.optim.Adam(model.parameters(), lr=1e-3))) == {}
    model = mlp()
    assert codes(train(model, torch.optim.SGD(model.parameters(), lr=0.1))) == {}
    torch.manual_seed(0)
    cnn = SmallCNN()
    report = train(cnn, torch.optim.Adam(cnn.parameters(), lr=1e-3), images=True, steps=200)
    assert not report.has("warning"), codes(report)


def test_lr_ten_times_too_high_diverges() -> None:
    model = mlp()
    found = codes(train(model, torch.optim.SGD(model.parameters(), lr=1.0)))  # healthy: 0.1
    assert "loss-diverging" in found or "lr-too-high" in found


def test_missing_zero_grad_is_stale_but_accumulation_is_not() -> None:
    model = mlp()
    found = codes(train(model, torch.optim.SGD(model.parameters(), lr=0.01), zero=False))
    assert found["stale-gradients"] == ("error", 50)
    model = mlp()
    found = codes(train(model, torch.optim.Adam(model.parameters(), lr=1e-3), accumulate=4))
    assert "stale-gradients" not in found and not found


def test_nan_at_step_k_names_the_step_and_layer() -> None:
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with pytest.raises(NonFiniteLoss, match=r"step 77: the loss became nan, first produced by layer 0"):
        train(model, opt, nan_at=77, stop_on_nonfinite=True)
    model = mlp()
    found = codes(train(model, torch.optim.Adam(model.parameters(), lr=1e-3), nan_at=77))
    assert found["nonfinite"] == ("error", 77)  # found at the next scheduled step, named 77


def test_dead_units_growing_after_a_bias_shift() -> None:
    model = mlp()
    report = train(model, torch.optim.Adam(model.parameters(), lr=1e-3), shift_at=120)
    dead = [f for f in report.findings if f.code == "dead-relu"]
    assert dead and dead[0].evidence["step"] == 150 and dead[0].where == "3"


def test_on_finding_modes_and_detach() -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(FindingRaised, match="stale-gradients"):
        with ld.Monitor(model, opt, every=5, on_finding="raise") as mon:
            for _ in range(20):
                loss = F.cross_entropy(model(SPLIT.x_train[:32]), SPLIT.y_train[:32])
                loss.backward()
                opt.step()
                mon.observe(loss)
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    assert hooks == 0 and all(not p._backward_hooks for p in model.parameters())
    seen: list[str] = []
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ld.Monitor(model, opt, every=5) as mon, ld.Monitor(
                model, opt, every=5, on_finding=lambda f: seen.append(f.code)) as mon2:
            for _ in range(10):
                loss = F.cross_entropy(model(SPLIT.x_train[:32]), SPLIT.y_train[:32])
                loss.backward()
                opt.step()
                mon.observe(loss)
                mon2.observe(loss)
    assert any(issubclass(w.category, LossDoctorWarning) for w in caught)
    assert "stale-gradients" in seen


@pytest.mark.slow
@pytest.mark.parametrize("name, code, absent", [
    ("plateau", "loss-plateau", {"loss-diverging", "loss-oscillating"}),
    ("oscillating", "loss-oscillating", {"loss-diverging", "loss-plateau"}),
    ("missing-zero-grad", "stale-gradients", {"lr-too-low"}),  # it does diverge: a consequence
])
def test_named_fault_runs_raise_their_code(name: str, code: str, absent: set[str]) -> None:
    from runs import RUNS

    report = RUNS[name]()
    for f in report.findings:
        assert_in_catalogue(f)
    assert code in codes(report), codes(report)
    assert not absent & set(codes(report)), codes(report)


def test_lr_too_low_is_never_reported_after_a_blow_up() -> None:
    model = mlp()
    found = codes(train(model, torch.optim.SGD(model.parameters(), lr=5.0)))
    assert "lr-too-low" not in found
    assert {"loss-diverging", "lr-too-high", "nonfinite"} & set(found), found


def test_first_step_gets_the_full_diagnosis() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))
    report = train(model, torch.optim.Adam(model.parameters(), lr=1e-3), steps=60,
                   loss_fn=F.cross_entropy)
    found = codes(report)
    assert found["double-softmax"] == ("error", 1), found
    model = mlp()
    quiet = train(model, torch.optim.Adam(model.parameters(), lr=1e-3), steps=60,
                  loss_fn=F.cross_entropy)
    assert codes(quiet) == {}


def test_without_loss_fn_the_first_step_is_not_diagnosed() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))
    found = codes(train(model, torch.optim.Adam(model.parameters(), lr=1e-3), steps=60))
    assert "double-softmax" not in found


def run_of(losses: list[float]) -> ld.Report:
    with ld.Monitor(nn.Linear(2, 2), every=10, on_finding="ignore") as mon:
        for v in losses:
            mon.observe(v)
    return mon.report()


def test_an_early_plateau_the_run_left_behind_is_withdrawn_with_a_note() -> None:
    stuck_then_learns = [1.0] * 40 + [1.0 * 0.98 ** i for i in range(260)]
    report = run_of(stuck_then_learns)
    assert "loss-plateau" not in report.codes
    assert any(n.startswith("loss-plateau at step") and "withdrawn" in n for n in report.trace.notes)
    stuck = run_of([1.0 + 0.001 * (i % 2) for i in range(300)])
    assert "loss-plateau" in stuck.codes and not stuck.trace.notes
