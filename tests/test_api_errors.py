"""The Python API raises the package's own exception type, with a clear message."""

import pytest
import torch
from torch import nn

import lossdoctor as ld
from lossdoctor.errors import LossFnError, ModelError


def test_wrong_argument_types() -> None:
    x, y = torch.randn(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ld.LossDoctorError, match="must be a torch.nn.Module"):
        ld.diagnose("model", x, y, nn.CrossEntropyLoss())  # type: ignore[arg-type]
    with pytest.raises(ld.LossDoctorError, match="loss_fn must be callable"):
        ld.diagnose(nn.Linear(3, 2), x, y, 3)  # type: ignore[arg-type]
    with pytest.raises(ld.LossDoctorError, match="optimizer must be"):
        ld.diagnose(nn.Linear(3, 2), x, y, nn.CrossEntropyLoss(), optimizer="sgd")  # type: ignore[arg-type]
    with pytest.raises(ld.LossDoctorError, match="task must be one of"):
        ld.diagnose(nn.Linear(3, 2), x, y, nn.CrossEntropyLoss(), task="ranking")  # type: ignore[arg-type]


def test_model_and_loss_failures() -> None:
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ModelError, match="the model raised RuntimeError"):
        ld.diagnose(nn.Linear(3, 2), torch.randn(4, 5), y, nn.CrossEntropyLoss())
    with pytest.raises(LossFnError, match="must return a scalar"):
        ld.diagnose(nn.Linear(3, 2), torch.randn(4, 3), y, nn.CrossEntropyLoss(reduction="none"))
    with pytest.raises(LossFnError, match="scalar tensor, got float"):
        ld.diagnose(nn.Linear(3, 2), torch.randn(4, 3), y, lambda o, t: 1.0)


def test_task_override_changes_the_baseline() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    x, y = torch.randn(32, 3), (torch.rand(32, 4) < 0.5).float()
    loss = lambda o, t: nn.functional.binary_cross_entropy_with_logits(o, t)  # noqa: E731
    assert ld.diagnose(model, x, y, loss).trace.task == "multilabel"
    assert ld.diagnose(model, x, y, loss, task="regression").trace.task == "regression"
