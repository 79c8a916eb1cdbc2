"""Rebuild the HTML reports in docs/ and their screenshots (``make docs-reports``).

- ``story1-report.html``: ``lossdoctor diagnose --example deep-relu --html ...``;
- ``monitor-report.html``: ``ld.Monitor`` on the benchmark's ``oscillating`` run (digits, SGD
  lr 0.5, momentum 0.9, 300 steps), ``Monitor.report().save_html(...)``;
- a PNG screenshot of each, taken by headless Chromium at laptop width (1280 px).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks" / "faults")]

from runs import RUNS  # noqa: E402

import lossdoctor as ld  # noqa: E402
from browser import screenshot  # noqa: E402
from lossdoctor.examples import EXAMPLES  # noqa: E402

DOCS = ROOT / "docs"


def main() -> None:
    story1 = ld.diagnose(**EXAMPLES["deep-relu"]())
    pages = [(story1.save_html(DOCS / "story1-report.html", "lossdoctor: story 1 (deep-relu)"),
              1900)]
    run = RUNS["oscillating"]()
    pages.append((run.save_html(DOCS / "monitor-report.html",
                                "lossdoctor: monitored run (SGD lr 0.5, momentum 0.9)"), 1500))
    with tempfile.TemporaryDirectory() as tmp:
        for page, height in pages:
            png = page.with_suffix(".png")
            console = screenshot(page, png, Path(tmp), width=1280, height=height)
            if console:
                raise SystemExit(f"{page.name}: console messages {console}")
            print(f"wrote {page.relative_to(ROOT)} and {png.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
