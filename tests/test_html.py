"""The HTML report: self-contained, its numbers are the JSON's, and it renders in Chromium."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from runs import RUNS

import lossdoctor as ld
from browser import chromium, dump_dom, screenshot
from lossdoctor.cli import main
from lossdoctor.examples import EXAMPLES
from lossdoctor.report.html import data_values
from lossdoctor.report.plots import BLUE, GREEN, ORANGE, RED
from lossdoctor.report.report import strict

needs_chromium = pytest.mark.skipif(
    chromium() is None, reason="chromium is not installed (apt-get install -y chromium; CI does)")


class Data(HTMLParser):
    """Every ``<data data-key value>`` and the text of ``<code data-key>`` in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[tuple[str, str]] = []
        self.codes: list[tuple[str, str]] = []
        self._code: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "data" and a.get("data-key"):
            self.values.append((str(a["data-key"]), str(a["value"])))
        if tag == "code" and a.get("data-key"):
            self._code = a["data-key"]

    def handle_data(self, data: str) -> None:
        if self._code is not None:
            self.codes.append((self._code, data))
            self._code = None


def parse(page: str) -> Data:
    d = Data()
    d.feed(page)
    return d


def assert_numbers_match(page: str, report: ld.Report) -> int:
    """Each number on the page equals the JSON's value at its key; returns how many."""
    data = json.loads(json.dumps(strict(report.to_dict())))
    found = parse(page)
    for key, value in found.values:
        want = data_values(data, key)
        if isinstance(want, str):  # "nan" / "inf" in strict JSON
            assert value == want, key
        else:
            assert float(value) == pytest.approx(float(want), rel=1e-12), key
    for key, text in found.codes:
        assert text == data_values(data, key), key
    return len(found.values)


def assert_self_contained(page: str) -> None:
    low = page.lower()
    for bad in ("<script", "<link", "<img", "<iframe", "@import", "url(", "src="):
        assert bad not in low, bad
    assert low.count("http") == low.count('xmlns="http://www.w3.org/2000/svg"')


def test_story_1_page_leads_with_the_cause_and_its_numbers_are_the_json(
        story1: ld.Report) -> None:
    page = story1.to_html()
    assert_self_contained(page)
    assert page.index("Cause 1") < page.index("Per-layer scale") < page.index("Per-layer meas")
    assert page.count("kaiming_normal_") == 1
    assert "activation rms (predicted)" in page  # the mean-field prediction is drawn
    # one verification: the cause's re-init (lr-too-high, its symptom, is judged by it)
    assert page.count("class=\"ct\">Loss without and with the fix") == 1
    n = assert_numbers_match(page, story1)
    assert n >= 2 * len(story1.trace.layers)
    assert dict(parse(page).codes)["causes.0.code"] == "signal-exploding"
    assert story1._repr_html_() == page


def test_verification_records_both_loss_curves(story1: ld.Report) -> None:
    v = story1.causes[0].verification
    assert v is not None
    before, after = v.before["losses"], v.after["losses"]
    assert before[0] == pytest.approx(v.before["loss_at_init"])
    assert after[-1] == pytest.approx(v.after["loss_after_steps"])
    assert len(after) == 21 and not math.isfinite(before[-1])  # story 1 blows up to NaN


def monitored() -> ld.Report:
    return RUNS["oscillating"]()


def test_monitor_report_draws_the_whole_run_with_findings_at_their_steps() -> None:
    report = monitored()
    assert report.trace.run is not None and len(report.trace.run.losses) == 300
    steps = {f.code: f.evidence["step"] for f in report.findings if "step" in f.evidence}
    assert steps, report.codes
    page = report.to_html("monitored run")
    assert_self_contained(page)
    assert "Training loss (monitored run)" in page
    for code in steps:
        assert f">{code}</text>" in page  # the marker's label
    assert_numbers_match(page, report)


def test_cli_writes_the_html_report(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["diagnose", "--example", "saturated-neuron", "--html",
                                    str(out)])
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert "mse-on-saturating-output" in page and "Per-layer scale" in page
    res = CliRunner().invoke(main, ["diagnose", "--example", "saturated-neuron", "--html",
                                    str(tmp_path / "no" / "r.html")])
    assert res.exit_code == 2 and "no such directory" in res.output


def test_clean_report_says_so() -> None:
    report = ld.diagnose(**EXAMPLES["healthy-mlp"]())
    page = report.to_html()
    assert "No problems found." in page and "Cause 1" not in page
    assert_numbers_match(page, report)


def _regions(mask: np.ndarray[Any, Any]) -> list[tuple[int, int]]:
    """Row ranges where the plot background fills a wide band (one per chart; grid lines and
    curves interrupt a band for a few rows)."""
    rows = np.flatnonzero(mask.sum(axis=1) > 200)
    out: list[list[int]] = []
    for r in rows:
        if out and r - out[-1][1] <= 12:
            out[-1][1] = int(r)
        else:
            out.append([int(r), int(r)])
    return [(a, b) for a, b in out if b - a > 100]


def _near(img: np.ndarray[Any, Any], color: str, tol: int = 40) -> np.ndarray[Any, Any]:
    rgb = np.array([int(color[k:k + 2], 16) for k in (1, 3, 5)])
    return np.abs(img[..., :3].astype(int) - rgb).sum(axis=-1) < tol


@pytest.mark.slow
@needs_chromium
def test_chromium_loads_the_page_offline_and_draws_the_plots(story1: ld.Report,
                                                            tmp_path: Path) -> None:
    import matplotlib.image

    page = story1.save_html(tmp_path / "story1.html")
    dom, console = dump_dom(page, tmp_path)
    assert console == [], console
    assert "<svg" in dom and "Cause 1" in dom
    assert assert_numbers_match(dom, story1) >= 2 * len(story1.trace.layers)
    png = tmp_path / "story1.png"
    assert screenshot(page, png, tmp_path, height=4000) == []
    img = (matplotlib.image.imread(png)[..., :3] * 255).round().astype(np.uint8)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 100  # not blank
    charts = _regions(_near(img, "#f8fafc", tol=3))  # the plot areas' background
    assert len(charts) == 2, charts  # per-layer scale, the re-init's verification curves
    layer = img[charts[0][0]:charts[0][1]]
    assert _near(layer, BLUE).sum() > 200 and _near(layer, ORANGE).sum() > 200
    for a, b in charts[1:]:
        assert _near(img[a:b], RED).sum() > 100 and _near(img[a:b], GREEN).sum() > 200


@pytest.mark.slow
@needs_chromium
def test_console_errors_would_be_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('broken page')</script>"
                   "</body></html>")
    _, console = dump_dom(bad, tmp_path)
    assert any("broken page" in m for m in console), console


@pytest.mark.slow
@needs_chromium
def test_monitor_page_in_chromium(tmp_path: Path) -> None:
    torch.manual_seed(0)
    report = monitored()
    page = report.save_html(tmp_path / "run.html", "monitored run")
    dom, console = dump_dom(page, tmp_path)
    assert console == [] and "Training loss (monitored run)" in dom
    assert_numbers_match(dom, report)
