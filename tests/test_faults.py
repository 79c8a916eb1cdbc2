"""Truth table: each fault produces its code with the right severity and real evidence."""

import math

import pytest
from scenarios import FAULTS, default_mlp

import lossdoctor as ld
from test_catalog import assert_in_catalogue


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_is_found(name: str) -> None:
    make, code, severity = FAULTS[name]
    report = ld.diagnose(**make())
    hits = [f for f in report.findings if f.code == code]
    assert hits, f"{code} missing; got {sorted(report.codes)}"
    assert hits[0].severity == severity
    assert hits[0].evidence and hits[0].summary and hits[0].explanation and hits[0].fixes
    for fix in hits[0].fixes:
        compile(fix.code, "<fix>", "exec")  # every fix is valid Python
    for f in report.findings:
        assert_in_catalogue(f)


def test_exploding_signal_evidence_matches_the_weight_scale() -> None:
    make, _, _ = FAULTS["exploding-signal"]
    f = next(f for f in ld.diagnose(**make()).findings if f.code == "signal-exploding")
    # He init scaled by 4: each ReLU layer multiplies the pre-activation rms by about 4.
    assert f.evidence["gain_per_layer"] == pytest.approx(4.0, rel=0.15)
    assert f.evidence["ratio"] >= 100
    assert f.evidence["weight_gain_neutral"] == pytest.approx(math.sqrt(2))
    assert f.evidence["weight_gain_median"] == pytest.approx(4 * math.sqrt(2), rel=0.1)


def test_dead_layer_counts_every_unit() -> None:
    make, _, _ = FAULTS["dead-layer"]
    f = next(f for f in ld.diagnose(**make()).findings if f.code == "dead-relu")
    assert f.where == "3" and f.evidence["dead_fraction"] == 1.0
    assert f.evidence["dead_units"] == f.evidence["units"] == 256


def test_nonfinite_names_the_first_op() -> None:
    make, _, _ = FAULTS["nan-sqrt"]
    f = next(f for f in ld.diagnose(**make()).findings if f.code == "nonfinite")
    assert f.evidence["first_op"] == "sqrt"
    assert f.where == "SqrtNet / sqrt"  # the op, inside the (root) module that ran it
    assert f.evidence["first_phase"] == "model"


def test_nonfinite_in_inputs_is_blamed_on_the_inputs() -> None:
    case = FAULTS["huge-head"][0]()
    case["inputs"] = case["inputs"].clone()
    case["inputs"][3, 5] = float("nan")
    f = next(f for f in ld.diagnose(**case).findings if f.code == "nonfinite")
    assert f.where == "inputs"


def test_labels_out_of_range_explains_torchs_own_error() -> None:
    report = ld.diagnose(**FAULTS["one-based-labels"][0]())
    f = next(f for f in report.findings if f.code == "labels-out-of-range")
    assert "out of bounds" in (f.evidence["torch_error"] or "")
    assert (f.evidence["target_min"], f.evidence["target_max"]) == (1, 10)
    assert "1-based" in f.summary


def test_penalty_split_measures_data_and_penalty_terms() -> None:
    case = FAULTS["heavy-l2-in-loss"][0]()
    model = case["model"]
    report = ld.diagnose(**case)
    loss = report.trace.loss
    l2 = sum(float(p.detach().pow(2).sum()) for p in model.parameters())
    assert loss.penalty_value == pytest.approx(0.5 * l2 / 2, rel=1e-5)
    assert loss.data_value + loss.penalty_value == pytest.approx(loss.value, rel=1e-5)
    assert loss.data_value == pytest.approx(math.log(10), abs=0.5)
    f = next(f for f in report.findings if f.code == "regularization-dominates")
    assert f.evidence["value_ratio"] > 10
    biases = [p.name for p in report.trace.params if p.in_loss_penalty and p.role == "bias"]
    assert len(biases) == 3


def test_deep_default_init_really_does_not_train() -> None:
    """grad-vanishing on a 20-layer default-init ReLU MLP is a true finding, not a false alarm:
    with its SGD set-up the first layer's weights barely move and the loss stays at ln 10."""
    import torch

    case = default_mlp(20)()
    model, opt, x, y = case["model"], case["optimizer"], case["inputs"], case["targets"]
    report = ld.diagnose(**case)
    assert "grad-vanishing" in report.codes
    w0 = model[0].weight.detach().clone()
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) == pytest.approx(math.log(10), abs=0.02)
    assert float((model[0].weight.detach() - w0).norm() / w0.norm()) < 1e-4


def test_penalty_on_weights_only_is_not_flagged() -> None:
    import torch.nn.functional as F

    case = FAULTS["heavy-l2-in-loss"][0]()
    model = case["model"]

    def loss_fn(o, t):  # type: ignore[no-untyped-def]
        l2 = sum(p.pow(2).sum() for p in model.parameters() if p.dim() >= 2)
        return F.cross_entropy(o, t) + 1e-4 * l2 / 2

    case["loss_fn"] = loss_fn
    report = ld.diagnose(**case, verify_steps=0)
    assert report.trace.loss.penalty_value is not None and report.trace.loss.penalty_value > 0
    assert "weight-decay-on-bias" not in report.codes
    assert {p.name for p in report.trace.params if p.in_loss_penalty} == {"0.weight", "2.weight",
                                                                           "4.weight"}
