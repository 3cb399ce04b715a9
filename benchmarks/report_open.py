"""How big the HTML report is and how soon Chromium has drawn all its charts: plotly.js
stored compressed (what ``sweep report`` writes) beside plotly.js inlined as it comes (the
report before, 4.8 MB), the same sweep and charts.

The time is the browser's wall time to open the page and run its scripts until every chart
is drawn (``--dump-dom`` with a virtual-time budget: it returns once the page is idle),
less the same for an empty page (Chromium's own start, measured in the same run); the page
itself says when its last chart was drawn, or the run stops. Headless Chromium, software
rendering, a fresh profile per open, the pages opened in turn ``--runs`` times. (The page's
own ``performance.now()`` is virtual time under that budget: it does not count script
execution, so it is not used.)

Usage: python benchmarks/report_open.py [--trials 40] [--runs 5]
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports import build_html  # noqa: E402
from sweep import Sweep, compare  # noqa: E402
from sweep.backends import InProcessBackend  # noqa: E402
from tests.sweep_tests import toy_trainers  # noqa: E402


def open_once(browser: str, page: Path, profile: Path, charts: bool = True) -> float:
    """Wall seconds of the browser opening ``page`` until it is idle."""
    started = time.perf_counter()
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=30000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    wall = time.perf_counter() - started
    if charts and re.search(r'data-drawn-ms="(\d+)"', dom) is None:
        raise SystemExit(f"{page.name}: the charts were not drawn")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("Chromium is not installed")
    with tempfile.TemporaryDirectory() as root:
        Sweep(
            name="report",
            root=root,
            backend=InProcessBackend(),
            trainer=toy_trainers.quadratic,
            trainer_args={"num_epochs": 8},
            search_space={
                "x": {"type": "uniform", "min_value": 0, "max_value": 1},
                "opt": {"type": "choice", "values": ["sgd", "adamw"]},
            },
            sampling_algorithm={"type": "random", "seed": 1},
            early_termination={"type": "median", "n_startup_trials": 3},
            limits={"max_total_trials": args.trials, "max_concurrent_trials": 1},
        ).run()
        comparison = compare(["report"], root)
        pages = {
            "plotly.js inlined (before)": Path(root) / "inline.html",
            "plotly.js compressed (now)": Path(root) / "compressed.html",
        }
        build_html(comparison, pages["plotly.js inlined (before)"], compressed=False)
        build_html(comparison, pages["plotly.js compressed (now)"])
        print(
            f"{args.trials} trials of 8 epochs; headless Chromium, {args.runs} opens each, "
            "medians\n"
        )
        empty = Path(root) / "empty.html"
        empty.write_text("<!doctype html><title>empty</title>")
        results: dict[str, list[float]] = {}
        for i in range(args.runs):  # in turn, so a slow moment hits all
            results.setdefault("empty", []).append(
                open_once(browser, empty, Path(root) / f"profile-{i}-e", charts=False)
            )
            for name, page in pages.items():
                results.setdefault(name, []).append(
                    open_once(browser, page, Path(root) / f"profile-{i}-{len(name)}")
                )
        start = statistics.median(results["empty"])
        print(
            f"{'page':<28} {'size MB':>8} {'open + draw s':>14}   (Chromium's own start, "
            f"{start:.2f} s, taken off)"
        )
        for name, page in pages.items():
            wall = statistics.median(results[name]) - start
            print(f"{name:<28} {page.stat().st_size / 1e6:8.2f} {wall:14.2f}")


if __name__ == "__main__":
    main()
