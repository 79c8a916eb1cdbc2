"""Real architectures from the zoo: the Hugging Face ``out.loss`` path, GPT-2's Conv1D, masked
NaN/Inf, residual branches with a layer scale, a hand-reduced ELBO, token labels."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import lossdoctor as ld

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks" / "zoo"))
import bugs  # noqa: E402
import models  # noqa: E402

pytestmark = pytest.mark.integration


def _diagnose(case: dict, verify_steps: int = 0) -> ld.Report:
    torch.manual_seed(0)
    return ld.diagnose(case["model"], case["inputs"], case["targets"], case["loss_fn"],
                       case.get("optimizer"), verify_steps=verify_steps)


def _loud(report: ld.Report) -> list[str]:
    return [f"{f.code}:{f.severity}" for f in report.findings if f.severity != "info"]


def test_the_models_own_loss_is_read_like_an_external_one() -> None:
    torch.manual_seed(0)
    inside = _diagnose(models.bert_cls())
    torch.manual_seed(0)
    outside = _diagnose(models.bert_cls_external())
    a, b = inside.trace, outside.trace
    assert a.loss.source == "model" and b.loss.source == "expression"
    assert a.loss.kind == b.loss.kind == "cross_entropy"
    assert a.task == b.task == "multiclass" and a.n_classes == b.n_classes == 3
    assert a.loss.ignore_index == -100
    assert a.loss.value == pytest.approx(b.loss.value, rel=1e-5)
    assert a.targets is not None and b.targets is not None
    assert a.targets.class_counts == b.targets.class_counts
    assert a.batch_size == 16
    assert _loud(inside) == [] and _loud(outside) == []


def test_labels_the_models_own_loss_refuses_are_explained_not_refused() -> None:
    report = _diagnose(bugs._bert_labels_one_based(), verify_steps=5)
    f = report.findings[0]
    assert f.code == "labels-out-of-range" and f.severity == "error"
    assert f.evidence["n_classes"] == 3 and f.evidence["target_max"] == 3
    assert "IndexError" in f.evidence["torch_error"]


def test_gpt2_conv1d_projections_are_linear_layers_with_their_fan_in() -> None:
    report = _diagnose(models.gpt2())
    lin = [la for la in report.trace.layers if la.op == "Conv1D"]
    # four blocks: c_attn, c_proj (attention), c_fc, c_proj (MLP)
    assert len(lin) == 16 and all(la.kind == "linear" for la in lin)
    # weights stored (in, out): c_attn 128 -> 384, c_proj 128 -> 128, c_fc 128 -> 512,
    # c_proj 512 -> 128
    assert [la.fan_in for la in lin[:4]] == [128, 128, 128, 512]
    assert lin[0].weight_rms == pytest.approx(0.02, rel=0.1)  # GPT-2's N(0, 0.02) init


def test_masked_infinities_are_a_note_not_an_error() -> None:
    report = _diagnose(models.simclr())  # the diagonal of the similarity masked with -inf
    f = next(f for f in report.findings if f.code == "nonfinite")
    assert f.severity == "info" and f.evidence["masked"] is True
    assert math.isfinite(report.trace.loss.value)


def test_a_log_of_zero_that_torch_where_discards_is_info() -> None:
    class Buckets(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            d = torch.arange(8.0).expand(x.shape[0], 8)
            big = torch.log(d) * 0.5   # log(0) at d = 0, as T5's relative-position buckets
            return self.lin(x + torch.where(d > 0, big, torch.zeros_like(d)))

    case = {"model": Buckets(), "inputs": torch.randn(32, 8), "targets": torch.randint(0, 4, (32,)),
            "loss_fn": nn.CrossEntropyLoss()}
    report = _diagnose(case)
    assert {f.code: f.severity for f in report.findings}.get("log-of-zero") == "info"
    assert not _loud(report)
    # the same log(0) reaching the loss stays an error
    def leaking(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out, y) + torch.log(torch.zeros(())) * 0
    bad = _diagnose({**case, "loss_fn": leaking})
    assert {f.code: f.severity for f in bad.findings}["nonfinite"] == "error"


def test_layer_scale_residual_branches_are_not_depth() -> None:
    report = _diagnose(models.convnext())  # gamma = 1e-6 on every block's branch
    assert not [f for f in report.findings if f.code.startswith("grad-")]
    adds = [la for la in report.trace.layers if la.kind == "add"]
    assert adds and all(la.skip_index is not None for la in adds)


def test_an_elbo_summed_per_example_is_judged_per_element() -> None:
    report = _diagnose(models.vae())
    assert report.trace.loss.reduction == "none"
    assert report.trace.loss.elementwise_mean == pytest.approx(math.log(2), rel=0.2)
    assert "init-loss-high" not in report.codes


@pytest.mark.parametrize("name", ["gpt2-padding-counted", "bert-mlm-unmasked-labels",
                                  "tagger-padding-as-class", "gpt2-unshifted-external-loss"])
def test_token_label_bugs_are_found_on_real_models(name: str) -> None:
    bug = next(b for b in bugs.BUGS if b.name == name)
    report = _diagnose(bug.make())
    assert report.findings[0].code in bug.expected, report.codes


def test_the_healthy_token_models_count_no_padding() -> None:
    for make in (models.gpt2, models.llama, models.gru_tagger):
        tk = _diagnose(make()).trace.tokens
        assert tk is not None and tk.padded > 0 and tk.padded_counted == 0
        assert tk.copied / max(tk.positions, 1) < 0.05


def test_a_hugging_face_model_and_its_optimizer_are_untouched() -> None:
    case = bugs._bert_labels_one_based()  # the refused-labels path, with verification
    model, opt = case["model"], case["optimizer"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt_before = repr(opt.state_dict())
    rng = torch.get_rng_state()
    ld.diagnose(model, case["inputs"], case["targets"], case["loss_fn"], opt, verify_steps=3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert repr(opt.state_dict()) == opt_before
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training and all(p.grad is None for p in model.parameters())
