"""No false alarms: every healthy control gets no warning and no error."""

import math

import pytest
from scenarios import HEALTHY

import lossdoctor as ld
from test_catalog import assert_in_catalogue


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_model_has_no_warning_or_error(name: str) -> None:
    report = ld.diagnose(**HEALTHY[name]())
    loud = [(f.code, f.severity, f.summary) for f in report.findings if f.severity != "info"]
    assert loud == []
    # and the measurement is real: a finite loss near the chance level of its task
    assert math.isfinite(report.trace.loss.value)
    for f in report.findings:
        assert_in_catalogue(f)
    assert report.trace.layers


def test_healthy_classifiers_start_near_ln_k() -> None:
    import math

    for name in ("he-mlp-20", "cnn-bn", "prenorm-residual", "default-mlp-6", "xavier-tanh"):
        trace = ld.diagnose(**HEALTHY[name]()).trace
        assert trace.task == "multiclass" and trace.n_classes == 10
        assert abs(trace.loss.value - math.log(10)) < 0.35, name
