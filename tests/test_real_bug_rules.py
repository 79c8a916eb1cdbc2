"""The rules added for the categories real bugs hit: both sides of each line, healthy twins quiet."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lossdoctor as ld
from test_catalog import assert_in_catalogue


def mlp(d: int = 16, k: int = 3, head: nn.Module | None = None) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, k)]
    return nn.Sequential(*layers, *([head] if head is not None else []))


def found(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[..., torch.Tensor],
          code: str) -> list[str]:
    report = ld.diagnose(model, x, y, loss_fn, verify_steps=0)
    for f in report.findings:
        assert_in_catalogue(f)
    return [f.severity for f in report.findings if f.code == code]


GEN = torch.Generator().manual_seed(1)
X = torch.randn(64, 16, generator=GEN)
Y = torch.arange(64) % 3
NOISE = torch.randn(64, 1, generator=GEN)
UNIT = torch.rand(64, 1, generator=GEN)


def keras_sparse_ce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return F.nll_loss(torch.log(p / p.sum(-1, keepdim=True)), y)


def hand_cce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(y * torch.log(p / p.sum(-1, keepdim=True))).sum(-1).mean()


@pytest.mark.parametrize(("head", "targets", "loss_fn", "expected"), [
    (nn.ReLU(), (Y == 1).float().unsqueeze(1), nn.BCELoss(), ["error"]),  # ReLU into BCE
    (None, (Y == 1).float().unsqueeze(1), lambda o, t: -(t * torch.log(o.clamp(1e-7))).mean(),
     ["error"]),  # linear output into a hand-written log-likelihood
    (nn.Sigmoid(), F.one_hot(Y, 5).float(), hand_cce, ["warning"]),  # sigmoids over 5 classes
    (nn.Sigmoid(), (Y == 1).float().unsqueeze(1), nn.BCELoss(), []),
    (nn.Softmax(dim=1), F.one_hot(Y, 5).float(), hand_cce, []),
    (nn.Softmax(dim=1), Y, keras_sparse_ce, []),  # NLL on log of a softmax, renormalised
    (None, Y, lambda o, t: F.nll_loss(torch.log(torch.softmax(o, 1)), t), []),
    (None, (Y == 1).float().unsqueeze(1), nn.BCEWithLogitsLoss(), []),
])
def test_non_probability_into_prob_loss(head: nn.Module | None, targets: torch.Tensor,
                                        loss_fn: Callable[..., torch.Tensor],
                                        expected: list[str]) -> None:
    k = targets.shape[1] if targets.dim() == 2 else 3
    assert found(mlp(k=k, head=head), X, targets, loss_fn,
                 "non-probability-into-prob-loss") == expected


@pytest.mark.parametrize(("head", "targets", "expected"), [
    (nn.Sigmoid(), 3000 + 25000 * UNIT, ["error"]),  # prices through a sigmoid
    (nn.Tanh(), NOISE * 3, ["warning"]),  # standardised x3: the tails are out of (-1, 1)
    (nn.ReLU(), NOISE - 1, ["error"]),  # mostly negative targets: even the mean is unreachable
    (nn.ReLU(), NOISE + 1, ["warning"]),  # the lower tail is negative
    (nn.Sigmoid(), UNIT, []),  # targets in [0, 1]
    (nn.ReLU(), UNIT * 10, []),  # non-negative targets
    (None, NOISE * 100, []),  # a linear output reaches anything
])
def test_output_range_mismatch(head: nn.Module | None, targets: torch.Tensor,
                               expected: list[str]) -> None:
    assert found(mlp(k=1, head=head), X, targets, nn.MSELoss(),
                 "output-range-mismatch") == expected


@pytest.mark.parametrize(("batch", "labels", "k", "expected"), [
    (32, torch.full((32,), 2), 10, ["warning"]),  # one class of ten in a batch of 32
    (32, torch.zeros(32, dtype=torch.long), 2, ["info"]),  # binary: can be imbalance
    (8, torch.full((8,), 2), 10, []),  # below min_label_batch
    (32, torch.arange(32) % 10, 10, []),
])
def test_labels_degenerate(batch: int, labels: torch.Tensor, k: int, expected: list[str]) -> None:
    x = torch.randn(batch, 16)
    assert found(mlp(k=k), x, labels, nn.CrossEntropyLoss(), "labels-degenerate") == expected


def test_constant_regression_targets_are_degenerate() -> None:
    assert found(mlp(k=1), X, torch.full((64, 1), -1.0), nn.MSELoss(),
                 "labels-degenerate") == ["warning"]
    assert found(mlp(k=1), X, torch.randn(64, 1), nn.MSELoss(), "labels-degenerate") == []


def test_head_label_mismatch_is_a_finding_and_a_batch_mismatch_a_refusal() -> None:
    onehot = F.one_hot(Y, 3).float()
    report = ld.diagnose(mlp(k=1, head=nn.Sigmoid()), X, onehot, nn.BCELoss(), verify_steps=0)
    f = next(f for f in report.findings if f.code == "head-label-mismatch")
    assert f.evidence["outputs_per_example"] == 1 and f.evidence["targets_per_example"] == 3
    assert f.severity == "error"
    with pytest.raises(ld.LossDoctorError, match="loss_fn raised"):
        ld.diagnose(mlp(k=1, head=nn.Sigmoid()), X, onehot[:10], nn.BCELoss(), verify_steps=0)
