"""Diagnosing never changes the model, its gradients, modes, buffers, optimizer or any RNG."""

import copy
import random

import numpy as np
import pytest
import torch
from scenarios import FAULTS, HEALTHY
from torch import nn

import lossdoctor as ld

CASES = {**{f"healthy/{k}": v for k, v in HEALTHY.items()},
         **{f"fault/{k}": v[0] for k, v in FAULTS.items()}}


def state(model: nn.Module, opt: torch.optim.Optimizer | None) -> dict:
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "grad_ids": {n: id(p.grad) for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "buffers": {n: b.clone() for n, b in model.named_buffers()},
        "modes": {n: m.training for n, m in model.named_modules()},
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                     for m in model.modules()),
        "opt": None if opt is None else copy.deepcopy(opt.state_dict()),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state()[1].copy(),
        "python_rng": random.getstate(),
        "grad_enabled": torch.is_grad_enabled(),
    }


def same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(
            torch.nan_to_num(a), torch.nan_to_num(b)) and bool((a.isnan() == b.isnan()).all())
    if isinstance(a, np.ndarray):
        return bool((a == b).all())
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)  # type: ignore[union-attr]
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=False))  # type: ignore[arg-type]
    return a == b


def give_grads_and_state(case: dict) -> None:
    """Put real .grad tensors and optimizer state in place, as mid-training."""
    model, opt = case["model"], case.get("optimizer")
    out = model(case["inputs"])
    torch.nn.functional.mse_loss(out, torch.zeros_like(out)).backward()
    if opt is not None:
        opt.step()


@pytest.mark.parametrize("name", sorted(CASES))
def test_diagnose_leaves_everything_bit_identical(name: str) -> None:
    case = CASES[name]()
    give_grads_and_state(case)
    model, opt = case["model"], case.get("optimizer")
    before = state(model, opt)
    try:
        ld.diagnose(**case)
    except ld.LossDoctorError:
        pass
    after = state(model, opt)
    for key in before:
        assert same(before[key], after[key]), key


def test_untouched_when_the_model_raises() -> None:
    class Boom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.bn = nn.BatchNorm1d(4)
            self.drop = nn.Dropout(0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.drop(self.bn(self.lin(x)))  # moves running stats, draws random numbers
            raise ValueError("boom")

    model = Boom()
    x = torch.randn(8, 4)
    before = state(model, None)
    with pytest.raises(ld.LossDoctorError, match="boom"):
        ld.diagnose(model, x, torch.zeros(8), nn.MSELoss())
    after = state(model, None)
    for key in before:
        assert same(before[key], after[key]), key


def test_untouched_when_the_loss_raises() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 3))
    x = torch.randn(8, 4)
    before = state(model, None)

    def bad_loss(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("bad loss")

    with pytest.raises(ld.LossDoctorError, match="bad loss"):
        ld.diagnose(model, x, torch.zeros(8, dtype=torch.long), bad_loss)
    after = state(model, None)
    for key in before:
        assert same(before[key], after[key]), key


def test_eval_mode_is_kept_and_used() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.9), nn.Linear(16, 3)).eval()
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    expected = float(nn.functional.cross_entropy(model(x), y).detach())
    report = ld.diagnose(model, x, y, nn.CrossEntropyLoss())
    assert report.trace.loss.value == pytest.approx(expected, rel=1e-6)
    assert not any(m.training for m in model.modules())


def test_the_state_comparison_can_fail() -> None:
    """Guard against a vacuous test: a plain train-mode forward does change the state."""
    case = HEALTHY["cnn-bn"]()
    model = case["model"]
    before = state(model, None)
    model(case["inputs"])
    torch.rand(1)
    after = state(model, None)
    assert not same(before["buffers"], after["buffers"])
    assert not same(before["torch_rng"], after["torch_rng"])


class WritesItsWeights(nn.Module):
    """A forward that edits its own parameters in place, both ways people write it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.bn = nn.BatchNorm1d(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.lin.weight.mul_(0.9)  # bumps the version counter
        self.head.weight.data.add_(0.01)  # .data: a separate version counter
        return self.head(torch.relu(self.bn(self.lin(x))))


def test_a_forward_that_writes_its_parameters_is_restored() -> None:
    torch.manual_seed(0)
    model = WritesItsWeights()
    case = {"model": model, "inputs": torch.randn(16, 6), "targets": torch.randint(0, 3, (16,)),
            "loss_fn": nn.CrossEntropyLoss(), "optimizer": torch.optim.Adam(model.parameters())}
    give_grads_and_state(case)
    before = state(model, case["optimizer"])
    ld.diagnose(**case)
    after = state(model, case["optimizer"])
    for key in before:
        assert same(before[key], after[key]), key


def test_nested_snapshots_share_the_outer_parameter_copies() -> None:
    from lossdoctor.probe.guard import Snapshot, untouched

    model = WritesItsWeights()
    original = model.lin.weight.detach().clone()
    with untouched(model) as outer:
        inner = Snapshot(model)
        assert all(a is b for a, b in zip(inner.params, outer.params, strict=True))
        model(torch.randn(4, 6))
        assert not torch.equal(model.lin.weight, original)
        inner.restore()  # back to the outer values, compared before written
        assert torch.equal(model.lin.weight, original)
    copy_snap = Snapshot(WritesItsWeights(), params=False)
    assert all(r[1] is None for r in copy_snap.params)
