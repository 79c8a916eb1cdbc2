"""Oracle tests: every probe statistic against a direct torch computation."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lossdoctor as ld
from lossdoctor.probe.readback import FIELDS, reduce
from lossdoctor.probe.run import with_dropout_off
from lossdoctor.task import infer_task


def rms(t: torch.Tensor) -> float:
    return float(t.detach().double().pow(2).mean().sqrt())


class Functional(nn.Module):
    """Activations as functions, an in-place ReLU module and a residual addition."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 16)
        self.b = nn.Linear(16, 16)
        self.act = nn.ReLU(inplace=True)
        self.c = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.a(x))
        r = self.act(self.b(h))
        h = h + r
        return self.c(F.relu(h))


def manual(model: Functional, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    za = model.a(x)
    za.retain_grad()
    h = torch.tanh(za)
    zb = model.b(h)
    zb.retain_grad()
    pre_inplace = zb.detach().clone()
    r = torch.relu(zb)
    s = h + r
    out = model.c(F.relu(s))
    out.retain_grad()
    loss = F.cross_entropy(out, y)
    loss.backward()
    return {"za": za, "zb": zb, "pre_inplace": pre_inplace, "r": r, "s": s, "out": out,
            "loss": loss}


def test_layer_statistics_match_torch() -> None:
    torch.manual_seed(0)
    model = Functional()
    with torch.no_grad():
        model.a.weight.mul_(4)  # some tanh saturation
        model.b.bias[:5] = -10.0  # five dead units
    x, y = torch.randn(64, 6), torch.randint(0, 4, (64,))
    report = ld.diagnose(model, x, y, nn.CrossEntropyLoss())
    ref = manual(model, x, y)
    by = {layer.name: layer for layer in report.trace.layers}
    assert list(by) == ["a", "fn:tanh#1", "b", "act", "fn:add#1", "fn:relu#1", "c"]
    assert by["a"].output.rms == pytest.approx(rms(ref["za"]), rel=1e-6)
    assert by["a"].grad_rms == pytest.approx(rms(ref["za"].grad), rel=1e-6)
    assert by["b"].grad_rms == pytest.approx(rms(ref["zb"].grad), rel=1e-6)
    assert by["c"].grad_rms == pytest.approx(rms(ref["out"].grad), rel=1e-6)
    assert by["c"].is_output and by["c"].fan_in == 16
    assert by["c"].weight_rms == pytest.approx(rms(model.c.weight), rel=1e-6)
    # tanh saturation: share of |z| >= 2.5
    sat = float((ref["za"].abs() >= 2.5).double().mean())
    assert 0 < sat < 1 and by["fn:tanh#1"].saturated == pytest.approx(sat)
    # the in-place ReLU is measured on its input before it was overwritten
    assert by["act"].inputs.rms == pytest.approx(rms(ref["pre_inplace"]), rel=1e-6)
    assert by["act"].inputs.min == pytest.approx(float(ref["pre_inplace"].min()))
    dead = float(((ref["r"] > 0).sum(0) == 0).double().mean())
    assert dead == 5 / 16 and by["act"].dead_units == pytest.approx(dead)
    assert by["fn:add#1"].output.rms == pytest.approx(rms(ref["s"]), rel=1e-6)
    assert report.trace.loss.value == pytest.approx(float(ref["loss"].detach()), rel=1e-6)
    for p in report.trace.params:
        param = model.get_parameter(p.name)
        assert p.grad_rms == pytest.approx(rms(param.grad), rel=1e-6)
        assert p.rms == pytest.approx(rms(param), rel=1e-6)


def test_reduce_matches_numpy_and_counts_nonfinite() -> None:
    t = torch.tensor([[1.0, -2.0, 0.0], [float("nan"), 4.0, float("inf")]])
    vals = dict(zip(FIELDS, reduce(t), strict=False))
    finite = np.array([1.0, -2.0, 0.0, 4.0])
    assert vals["mean"] == pytest.approx(finite.mean())
    assert vals["rms"] == pytest.approx(math.sqrt((finite**2).mean()))
    assert vals["std"] == pytest.approx(finite.std())
    assert (vals["min"], vals["max"], vals["nonfinite"], vals["zeros"]) == (-2.0, 4.0, 2.0, 1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64])
def test_reduce_fast_path_matches_numpy(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    t = (torch.randn(64, 33) * 3 + 1).to(dtype)
    t[0, :5] = 0
    x = t.double().numpy()
    *vals, saturated = reduce(t, saturation_z=2.0)
    got = dict(zip(FIELDS, vals, strict=True))
    assert got["mean"] == pytest.approx(x.mean(), rel=1e-5)
    assert got["rms"] == pytest.approx(math.sqrt((x**2).mean()), rel=1e-5)
    assert got["std"] == pytest.approx(x.std(), rel=1e-4)
    assert (got["min"], got["max"]) == (x.min(), x.max())
    assert (got["nonfinite"], got["zeros"]) == (0, (x == 0).sum())
    assert saturated == pytest.approx((np.abs(x) >= 2.0).mean())


@pytest.mark.parametrize(
    ("loss_fn", "kind", "reduction"),
    [
        (nn.CrossEntropyLoss(), "cross_entropy", "mean"),
        (nn.CrossEntropyLoss(reduction="sum"), "cross_entropy", "sum"),
        (F.cross_entropy, "cross_entropy", "mean"),
        (lambda o, t: F.nll_loss(F.log_softmax(o, 1), t, reduction="sum"), "nll", "sum"),
        (lambda o, t: -F.log_softmax(o, 1).gather(1, t[:, None]).sum(), "custom", "sum"),
        (lambda o, t: -F.log_softmax(o, 1).gather(1, t[:, None]).mean(), "custom", "mean"),
    ],
)
def test_loss_kind_and_reduction(loss_fn: object, kind: str, reduction: str) -> None:
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    trace = ld.diagnose(model, torch.randn(16, 5), torch.randint(0, 3, (16,)), loss_fn).trace
    assert (trace.loss.kind, trace.loss.reduction) == (kind, reduction)


def test_output_producer_through_views_and_functions() -> None:
    model = nn.Sequential(nn.Linear(5, 1), nn.Sigmoid(), nn.Flatten(0))
    trace = ld.diagnose(model, torch.randn(16, 5), torch.rand(16).round(),
                        nn.BCELoss()).trace
    assert trace.output is not None and trace.output.producer == "sigmoid"
    assert trace.task == "binary" and trace.loss.kind == "bce"


def test_task_inference_table() -> None:
    from lossdoctor.trace import TargetStats, TensorStats

    def targets(dtype: str, binary: bool) -> TargetStats:
        st = TensorStats((8, 3), 24, 0.5, 0.5, 0.5, 0, 1, 0, 0)
        return TargetStats(st, dtype, True, binary, False, False, {}, 0.25, 0.5)

    assert infer_task("cross_entropy", (8, 10), None) == ("multiclass", 10)
    assert infer_task("bce_logits", (8, 1), None) == ("binary", 1)
    assert infer_task("bce_logits", (8, 5), None) == ("multilabel", 5)
    assert infer_task("mse", (8, 2), None) == ("regression", 2)
    assert infer_task("custom", (8, 3), targets("float", True)) == ("multilabel", 3)
    assert infer_task("custom", (8, 3), targets("float", False)) == ("regression", 3)
    assert infer_task("custom", (8, 3), None, given="multiclass") == ("multiclass", 3)


def test_dropout_off_loss_is_the_eval_mode_loss_and_leaves_the_modes() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4),
                          nn.BatchNorm1d(4))
    x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))
    with torch.no_grad():
        bn = model[4]
        z = model[3](torch.relu(model[0](x)))  # dropout off: the identity
        expected = float(nn.functional.cross_entropy(
            (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + bn.eps) * bn.weight + bn.bias,
            y))
    trace = ld.diagnose(model, x, y, nn.CrossEntropyLoss(), verify_steps=0).trace
    assert trace.loss.dropout_off_value is None  # a loss near chance: not measured
    trace = with_dropout_off(trace, model, x, y, nn.CrossEntropyLoss())
    assert trace.loss.dropout_off_value == pytest.approx(expected, rel=1e-5)
    assert all(m.training for m in model.modules())
    model.eval()  # nothing active: nothing measured
    assert with_dropout_off(trace, model, x, y, nn.CrossEntropyLoss()) is trace
