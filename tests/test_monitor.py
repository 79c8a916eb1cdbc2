"""The monitor on real short training runs with injected faults, and healthy runs."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from scenarios import SmallCNN, relu_mlp
from torch import nn

import lossdoctor as ld
from lossdoctor.lab.datasets import load
from lossdoctor.monitor import FindingRaised, LossDoctorWarning, NonFiniteLoss

SPLIT = load("digits")


def train(model: nn.Module, opt: torch.optim.Optimizer, *, steps: int = 300, every: int = 50,
          zero: bool = True, accumulate: int = 1, nan_at: int | None = None,
          shift_at: int | None = None, images: bool = False, **kw: object) -> ld.Report:
    g = torch.Generator().manual_seed(1)
    with ld.Monitor(model, opt, every=every, on_finding="ignore", **kw) as mon:  # type: ignore[arg-type]
        for step in range(1, steps + 1):
            idx = torch.randint(0, len(SPLIT.y_train), (64,), generator=g)
            x, y = SPLIT.x_train[idx], SPLIT.y_train[idx]
            if images:
                x = x.reshape(-1, 1, 8, 8)
            if nan_at == step:
                x = x.clone()
                x[0, 0] = float("inf")
            if shift_at == step:
                with torch.no_grad():
                    model[2].bias.sub_(50.0)  # type: ignore[index, union-attr]
            if zero and (step - 1) % accumulate == 0:
                opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            if step % accumulate == 0:
                opt.step()
            mon.observe(loss)
    return mon.report()


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return relu_mlp(2, width=128, d=64, init="he")


def codes(report: ld.Report) -> dict[str, tuple[str, int]]:
    return {f.code: (f.severity, f.evidence.get("step")) for f in report.findings}


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
