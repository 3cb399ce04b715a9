"""Headless Chromium for the tests that open a report: the DOM after its scripts ran."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    """The browser, or the test skips (fails in CI, where .ci/run installs it)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return browser


def rendered_dom(page: Path, profile: Path, *flags: str) -> str:
    """``page`` as Chromium has it once its scripts ran (up to 15 s of virtual time)."""
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            *flags,
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def drew_svg(dom: str, chart_id: str) -> bool:
    """Whether the chart in the div ``chart_id`` was drawn (plotly's SVG is inside it)."""
    start = dom.index(f'id="{chart_id}"')
    return 'class="main-svg"' in dom[start : start + 20000]
