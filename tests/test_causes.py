"""The causes graph: its links hold only on their measured evidence, and story 1 is one cause."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import lossdoctor as ld
from lossdoctor.causes import GRAPH, find_causes
from lossdoctor.causes.graph import Context, links_to, markdown_table
from lossdoctor.checks.catalog import RULES
from lossdoctor.findings import Finding, Fix

DOCS = Path(__file__).resolve().parent.parent / "docs" / "causes.md"


def F(code: str, severity: str = "warning", where: str = "loss", **evidence: Any) -> Finding:
    return Finding(code, severity, where, evidence, f"{code} summary.", "why.",  # type: ignore[arg-type]
                   (Fix(f"fix {code}", f"# fix {code}"),))


def explains(cause: Finding, symptom: Finding, *others: Finding) -> str | None:
    ctx = Context([cause, symptom, *others], None)
    link = next(x for x in links_to(symptom.code) if x.cause == cause.code)
    return link.holds(cause, symptom, ctx)


def test_every_linked_code_is_catalogued_and_the_graph_is_acyclic() -> None:
    known = {r.code for r in RULES}
    edges: dict[str, set[str]] = {}
    for link in GRAPH:
        assert link.cause in known and link.symptom in known, link
        assert link.mechanism and link.condition
        edges.setdefault(link.cause, set()).add(link.symptom)
    state: dict[str, int] = {}

    def visit(code: str) -> None:
        assert state.get(code) != 1, f"cycle through {code}"
        if state.get(code) == 2:
            return
        state[code] = 1
        for nxt in edges.get(code, ()):
            visit(nxt)
        state[code] = 2

    for code in list(edges):
        visit(code)


def test_docs_table_is_generated_from_the_graph() -> None:
    text = DOCS.read_text()
    table = re.search(r"(?s)<!-- graph:start -->\n(.*?)\n<!-- graph:end -->", text)
    assert table is not None and table.group(1) == markdown_table(), "run make causes-table"


def test_lr_is_a_symptom_of_the_init_only_when_the_signal_explodes() -> None:
    lr = F("lr-too-high", "error", "optimizer", optimizer="SGD", lr=0.5, loss_first=6.7e6,
           loss_last=float("nan"))
    grows = F("signal-exploding", "error", "layer 1 -> 16", gain_per_layer=12.1, ratio=2.6e5,
              from_layer="1", to_layer="16", rms_from=1.55, rms_to=4.05e5)
    why = explains(grows, lr)
    assert why is not None and "12.1x per layer" in why
    shrinks = F("signal-exploding", "error", "layer 1 -> 16", gain_per_layer=0.9, ratio=0.1)
    assert explains(shrinks, lr) is None


def test_sum_reduction_explains_a_high_lr_only_for_sgd_like_optimizers() -> None:
    summed = F("sum-reduction", batch_size=128, per_example_loss=2.3)
    sgd = F("lr-too-high", "error", "optimizer", optimizer="SGD", lr=0.01)
    why = explains(summed, sgd)
    assert why is not None and "batch size 128" in why and "1.28" in why
    assert explains(summed, F("lr-too-high", "error", "optimizer", optimizer="Adam",
                              lr=0.01)) is None


def test_unscaled_inputs_explain_a_high_first_loss_only_when_the_layers_keep_their_scale() -> None:
    inputs = F("input-not-normalized", "warning", "inputs", input_rms=233.0,
               lines={"input_rms_low": 0.1, "input_rms_high": 10.0})
    loss = F("init-loss-high", "error", ratio_to_chance=19.7)
    assert explains(inputs, loss) is not None
    assert explains(inputs, loss, F("signal-exploding", gain_per_layer=3.0)) is None
    small = F("input-not-normalized", "warning", "inputs", input_rms=0.01,
              lines={"input_rms_low": 0.1, "input_rms_high": 10.0})
    assert explains(small, loss) is None


def test_softmax_regression_explains_a_stuck_loss_but_not_a_zero_loss() -> None:
    rng = F("output-range-mismatch", "error", output_op="softmax", excess_share=0.99)
    assert explains(rng, F("loss-degenerate", "error", loss=31.0)) is not None
    assert explains(rng, F("loss-degenerate", "error", loss=0.0)) is None
    sig = F("output-range-mismatch", "error", output_op="sigmoid", excess_share=1.0)
    assert explains(sig, F("loss-degenerate", "error", loss=31.0)) is None


def test_single_logit_cross_entropy_explains_labels_out_of_range() -> None:
    task = F("loss-task-mismatch", "error")
    assert explains(task, F("labels-out-of-range", "error", n_classes=1, target_max=1)) is not None
    assert explains(task, F("labels-out-of-range", "error", n_classes=10, target_max=10)) is None


def test_grouping_keeps_every_finding_once_and_orders_by_severity() -> None:
    findings = [
        F("lr-too-high", "error", "optimizer", optimizer="SGD", lr=1.0),
        F("saturation", "warning", "layer 1", saturated_fraction=0.9),
        F("sum-reduction", "warning", batch_size=64, per_example_loss=1.0),
        F("saturation", "warning", "layer 3", saturated_fraction=0.7),
        F("weight-decay-on-bias", "info", "optimizer"),
    ]
    causes = find_causes(findings)
    assert [c.root.code for c in causes] == ["sum-reduction", "saturation",
                                             "weight-decay-on-bias"]
    assert causes[0].severity == "error" and causes[0].codes == ["sum-reduction", "lr-too-high"]
    assert [s.because for s in causes[1].symptoms] == ["the same problem at layer 3"]
    indices = sorted([c.index for c in causes] + [s.index for c in causes for s in c.symptoms])
    assert indices == list(range(len(findings)))
    assert find_causes([]) == []


def test_story_1_is_one_cause_with_three_symptoms_and_one_verified_fix(story1: ld.Report) -> None:
    causes = story1.causes
    assert len(causes) == 1
    cause = causes[0]
    assert cause.root.code == "signal-exploding" and cause.severity == "error"
    assert {s.finding.code for s in cause.symptoms} == {"init-loss-high", "lr-too-high",
                                                        "grad-exploding"}
    assert cause.verification is not None and cause.verification.status == "verified"
    gone, left = cause.gone()
    assert set(gone) == set(cause.codes) and left == []
    text = story1.render(width=100)
    assert text.index("CAUSE 1") < text.index("per-layer measurements")
    assert text.count("kaiming_normal_") == 1  # each fix printed once
    assert "explains 3 more findings" in text and "gone after the fix" in text
    data = json.loads(json.dumps(ld.report.report.strict(story1.to_dict())))
    assert data["schema_version"] == 2
    (c,) = data["causes"]
    assert c["code"] == "signal-exploding" and data["findings"][c["finding"]]["code"] == c["code"]
    assert {data["findings"][s["finding"]]["code"] for s in c["symptoms"]} == {
        "init-loss-high", "lr-too-high", "grad-exploding"}
    assert c["verification"]["status"] == "verified" and c["verification"]["left"] == []


@pytest.mark.parametrize("code", ["init-loss-high", "lr-too-high", "grad-exploding"])
def test_story_1_symptoms_say_why_with_numbers(story1: ld.Report, code: str) -> None:
    s = next(s for s in story1.causes[0].symptoms if s.finding.code == code)
    assert re.search(r"\d", s.because), s.because


def test_an_infinite_loss_explains_a_sign_test_it_makes_meaningless() -> None:
    nonfinite = F("nonfinite", "error", loss=float("inf"), first_op="log")
    assert explains(nonfinite, F("loss-maximized", "error", loss=float("inf"))) is not None
    assert explains(nonfinite, F("loss-maximized", "error", loss=-2.3)) is None
