"""How big the HTML report is and how soon Chromium has drawn all its charts: plotly.js
stored compressed (what ``sweep report`` writes) beside plotly.js inlined as it comes (the
report before, 4.8 MB), the same sweep and charts.

"Drawn" is ``performance.now()`` when the page's loader has drawn the last chart (from the
start of navigation, so it includes reading the file, parsing, expanding plotly.js and
drawing); headless Chromium, software rendering, each page opened ``--runs`` times in a
fresh profile.

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


def open_once(browser: str, page: Path, profile: Path) -> tuple[float, float]:
    """(ms until all charts were drawn, as the page measured it; wall s of the browser)."""
    started = time.perf_counter()
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--no-first-run", f"--user-data-dir={profile}",
                          "--virtual-time-budget=30000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=300).stdout
    wall = time.perf_counter() - started
    drawn = re.search(r'data-drawn-ms="(\d+)"', dom)
    if drawn is None:
        raise SystemExit(f"{page.name}: the charts were not drawn")
    return float(drawn.group(1)), wall


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
        Sweep(name="report", root=root, backend=InProcessBackend(),
              trainer=toy_trainers.quadratic, trainer_args={"num_epochs": 8},
              search_space={"x": {"type": "uniform", "min_value": 0, "max_value": 1},
                            "opt": {"type": "choice", "values": ["sgd", "adamw"]}},
              sampling_algorithm={"type": "random", "seed": 1},
              early_termination={"type": "median", "n_startup_trials": 3},
              limits={"max_total_trials": args.trials, "max_concurrent_trials": 1}).run()
        comparison = compare(["report"], root)
        pages = {"plotly.js inlined (before)": Path(root) / "inline.html",
                 "plotly.js compressed (now)": Path(root) / "compressed.html"}
        build_html(comparison, pages["plotly.js inlined (before)"], compressed=False)
        build_html(comparison, pages["plotly.js compressed (now)"])
        print(f"{args.trials} trials of 8 epochs; headless Chromium, {args.runs} opens each, "
              "medians\n")
        print(f"{'page':<28} {'size MB':>8} {'drawn ms':>9} {'browser s':>10}")
        for i in range(args.runs):  # interleaved, so a slow moment hits both
            for name, page in pages.items():
                drawn, wall = open_once(browser, page, Path(root) / f"profile-{i}-{len(name)}")
                results.setdefault(name, []).append((drawn, wall))
        for name, page in pages.items():
            drawn = statistics.median(d for d, _ in results[name])
            wall = statistics.median(w for _, w in results[name])
            print(f"{name:<28} {page.stat().st_size / 1e6:8.2f} {drawn:9.0f} {wall:10.2f}")


results: dict[str, list[tuple[float, float]]] = {}

if __name__ == "__main__":
    main()
