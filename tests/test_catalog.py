"""The rule catalogue holds the checks, repairs, thresholds, README and scenarios together."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from catalog import CONTROLS, FAULTS
from click.testing import CliRunner
from ddp_runs import DDP_RUNS
from runs import RUNS

from lossdoctor.checks import REGISTRY
from lossdoctor.checks.catalog import (
    BY_CODE,
    EXPLAINS_LOSS_ERROR,
    RANKS,
    RULES,
    Rule,
    markdown_table,
)
from lossdoctor.cli import main
from lossdoctor.findings import Finding
from lossdoctor.repairs.registry import REPAIRS
from lossdoctor.thresholds import Thresholds

ROOT = Path(__file__).resolve().parent.parent


def test_every_declared_code_is_catalogued_and_every_rule_has_a_check() -> None:
    declared = {code for c in REGISTRY for code in c.codes}
    assert declared == set(BY_CODE)
    assert len(BY_CODE) == len(RULES)


def test_scopes_agree() -> None:
    for c in REGISTRY:
        for code in c.codes:
            rule = BY_CODE[code]
            # a rule's scope is the widest context it needs; its checks may run in less
            assert rule.scope == "run" or c.scope in ("batch", "layers", "run"), (code, c.name)
            if rule.scope == "run":
                assert c.scope == "run", (code, c.name)


def test_thresholds_and_repairs_named_in_rules_exist() -> None:
    fields = {f.name for f in dataclasses.fields(Thresholds)}
    used = {t for r in RULES for t in r.thresholds}
    assert used <= fields
    assert fields <= used, f"thresholds no rule uses: {fields - used}"
    names = {r.name for r in REPAIRS}
    fallbacks = {r.fallback for r in REPAIRS if r.fallback}  # tried when another one fails
    assert fallbacks <= names
    assert {r.repair for r in RULES if r.repair} | fallbacks == names
    for repair in REPAIRS:
        assert repair.codes or repair.name in fallbacks, repair.name


def test_every_rule_has_a_fault_and_a_control_scenario() -> None:
    faults = {s.name: s for s in FAULTS}
    controls = {s.name for s in CONTROLS}
    for rule in RULES:
        kind, _, name = rule.fault.partition(":")
        if kind == "faults":
            assert name in faults and rule.code in faults[name].expected, rule.code
        elif kind == "ddp":  # distributed runs (tests/test_distributed.py runs them)
            assert name in DDP_RUNS, rule.code
        else:
            assert kind == "runs" and name in RUNS, rule.code
        kind, _, name = rule.control.partition(":")
        assert (kind == "controls" and name in controls) or (kind == "runs" and name in RUNS) \
            or (kind == "ddp" and name in DDP_RUNS), rule.code


def test_explains_loss_error_is_derived() -> None:
    assert EXPLAINS_LOSS_ERROR == {"labels-out-of-range", "loss-task-mismatch",
                                   "non-probability-into-prob-loss", "head-label-mismatch",
                                   "loss-arguments-swapped"}


def assert_in_catalogue(f: Finding) -> None:
    """A finding's code, severity, evidence keys and lines match its catalogue entry."""
    rule: Rule = BY_CODE[f.code]
    assert f.severity in rule.severities, (f.code, f.severity)
    allowed = set(rule.evidence) | set(RANKS)  # any finding of a distributed run has its ranks
    assert set(f.evidence) <= allowed, (f.code, set(f.evidence) - allowed)
    assert set(f.evidence.get("lines", {})) <= set(rule.thresholds), f.code


def test_readme_table_is_generated_from_the_catalogue() -> None:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- rules:start -->\n(.*?)\n<!-- rules:end -->", readme, re.S)
    assert m, "README lacks the generated rules table"
    assert m.group(1) == markdown_table(), "run: lossdoctor rules --markdown"


@pytest.mark.parametrize("args, code, text", [
    (["rules"], 0, "stale-gradients"),
    (["rules", "dead-relu"], 0, "dead_fraction = 0.7"),
    (["rules", "--markdown"], 0, "| `init-loss-high` |"),
    (["rules", "dead"], 2, "unknown code 'dead' (did you mean dead-relu?)"),
])
def test_rules_command(args: list[str], code: int, text: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code
    assert text in result.output
