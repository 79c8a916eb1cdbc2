"""Headless Chromium (Debian's ``chromium`` package) for the HTML report's tests and docs.

Only the chromium command line is used: ``--dump-dom`` for the DOM after load, ``--screenshot``
for the pixels, ``--enable-logging=stderr`` for the page's console messages.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

FLAGS = ["--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--metrics-recording-only", "--mute-audio", "--hide-scrollbars",
         "--proxy-server=127.0.0.1:9"]  # offline: any http(s) request fails (and is logged)
# The page's console messages (including "Failed to load resource" and uncaught exceptions) on
# stderr: '...:INFO:CONSOLE:1] "message", source: file:///...' (older: 'CONSOLE(1)]')
CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\]\s*(.*)")


def chromium() -> str | None:
    """The chromium binary, or None."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    assert binary, "chromium is not installed (apt-get install -y chromium)"
    env = {**os.environ, "HOME": str(tmp)}
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=180, env=env, check=False)


def console_messages(stderr: str) -> list[str]:
    """The page's console messages in chromium's log."""
    return [m.group(1) for m in map(CONSOLE.search, stderr.splitlines()) if m]


def dump_dom(page: Path, tmp: Path) -> tuple[str, list[str]]:
    """The DOM after load and the console messages."""
    done = _run(["--dump-dom", page.resolve().as_uri()], tmp)
    return done.stdout, console_messages(done.stderr)


def screenshot(page: Path, png: Path, tmp: Path, width: int = 1280, height: int = 2400
               ) -> list[str]:
    """Write a screenshot of the page; return the console messages."""
    done = _run([f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
                 page.resolve().as_uri()], tmp)
    assert png.exists(), f"no screenshot: {done.stderr[-2000:]}"
    return console_messages(done.stderr)
