"""Thousands of trials: the coordinator's cost and memory per trial stay flat.

Runs N trivial trials (3 reports each, 2 at a time) on the local Ray with the default
sampler (random) and a median pruner, one process, and prints per 200 trials the wall time
per trial, the coordinator's own CPU time per trial and its resident memory; then the end
report's time and size, and whether headless Chromium renders it without a script error.

Then, Optuna alone (no Ray, no files): the sampler's ``ask`` cost at the study's start and
at its end, for random, QMC, CMA-ES and TPE (whose cost grows with the trials it has seen:
it refits its estimators on every finished trial, and Optuna has no option to bound that).

Usage: python benchmarks/scale.py [--trials 2000] [--window 200]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def trivial(params, report):  # type: ignore[no-untyped-def]
    for epoch in range(3):
        if report(epoch, {"score": params["x"] * (epoch + 1) + params["y"]}):
            break
    return {"score": params["x"] * 3 + params["y"]}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class Meter:
    """A listener: a row per ``window`` trials ended."""

    def __init__(self, window: int) -> None:
        self.window, self.ended = window, 0
        self.last = (time.perf_counter(), time.process_time())
        self.rows: list[tuple[int, float, float, float]] = []

    def trial_started(self, number: int, params: Any) -> None: ...
    def trial_reported(self, number: int, epoch: int, value: float | None) -> None: ...

    def trial_ended(self, number: int, state: str, value: float | None, reason: str) -> None:
        self.ended += 1
        if self.ended % self.window:
            return
        wall, cpu = time.perf_counter(), time.process_time()
        row = (
            self.ended,
            (wall - self.last[0]) / self.window * 1000,
            (cpu - self.last[1]) / self.window * 1000,
            rss_mb(),
        )
        self.rows.append(row)
        print(f"{row[0]:>7} {row[1]:12.1f} {row[2]:14.1f} {row[3]:10.0f}", flush=True)
        self.last = (wall, cpu)


def run_sweep(trials: int, window: int, root: Path) -> Path:
    from sweep import Sweep

    space = {
        "x": {"type": "uniform", "min_value": 0, "max_value": 1},
        "y": {"type": "choice", "values": [0, 0.5, 1]},
    }
    sweep = Sweep(
        name="scale",
        search_space=space,
        trainer=trivial,
        root=root,
        objective={"primary_metric": "score", "goal": "maximize"},
        sampling_algorithm={"type": "random", "seed": 0},
        early_termination={"type": "median", "n_startup_trials": 5},
        limits={"max_total_trials": trials, "max_concurrent_trials": 2},
        resources={"cpus_per_trial": 1},
    )
    print(f"{trials} trials, random sampler, median pruner, local Ray, 2 at a time")
    print(f"{'trials':>7} {'wall ms/trial':>12} {'coord. CPU ms':>14} {'RSS MB':>10}")
    meter = Meter(window)
    started = time.perf_counter()
    # The end report is timed apart: run() = trials + finish().
    import sweep.api as api

    finish, timed_finish = api.Sweep.finish, {}

    def finish_timed(self, result):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return finish(self, result)
        finally:
            timed_finish["s"] = time.perf_counter() - t

    api.Sweep.finish = finish_timed  # type: ignore[method-assign]
    result = sweep.run(listener=meter)
    total = time.perf_counter() - started
    done = sum(result.counts.values())
    assert done == trials, result.counts
    first, last = meter.rows[0], meter.rows[-1]
    grown = max(r[3] for r in meter.rows[1:]) - first[3] if len(meter.rows) > 1 else 0.0
    report = root / "scale" / "report.html"
    print(f"\ncounts: {result.counts}; {total:.1f} s in all")
    print(
        f"memory from trial {first[0]} to {last[0]}: +{grown:.0f} MB "
        f"(target <= +50 MB); wall ms/trial first window {first[1]:.1f}, last {last[1]:.1f}"
    )
    print(
        f"end report: {timed_finish['s']:.2f} s, report.html {report.stat().st_size / 1e6:.1f} MB"
    )
    return report


def renders(report: Path) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return "not checked (no chromium)"
    with tempfile.TemporaryDirectory() as profile:
        started = time.perf_counter()
        dom = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=30000",
                "--dump-dom",
                report.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        took = time.perf_counter() - started
    errors = re.search(r'<pre id="js-errors">(.*?)</pre>', dom.stdout, re.S)
    charts = len(re.findall(r'class="plot-container', dom.stdout))
    if dom.returncode or errors is None or errors.group(1).strip():
        return f"FAILED ({dom.returncode}; {errors.group(1)[:200] if errors else 'no page'})"
    return f"renders in headless Chromium: {charts} charts drawn, no script error ({took:.1f} s)"


def ask_costs(trials: int) -> None:
    """Optuna alone: ms per ask+tell near the start and the end of a study of ``trials``."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    samplers = {
        "random": lambda: optuna.samplers.RandomSampler(seed=0),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=0),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=0, warn_independent_sampling=False),
        "tpe (ours: multivariate, constant liar)": lambda: optuna.samplers.TPESampler(
            seed=0, multivariate=True, constant_liar=True
        ),
    }
    print(f"\nOptuna alone, in memory: ms per ask+tell at trial 200 and at trial {trials}")
    for name, make in samplers.items():
        study = optuna.create_study(direction="maximize", sampler=make())
        marks: dict[int, float] = {}
        t = time.perf_counter()
        for n in range(1, trials + 1):
            trial = study.ask()
            x = trial.suggest_float("x", 0, 1)
            y = trial.suggest_categorical("y", [0, 0.5, 1])
            study.tell(trial, x * 3 + y)
            if n % 100 == 0:
                now = time.perf_counter()
                marks[n] = (now - t) / 100 * 1000
                t = now
        print(f"  {name:<42} {marks[200]:7.2f} ms -> {marks[trials]:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--window", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        report = run_sweep(args.trials, args.window, Path(root))
        print(f"report: {renders(report)}")
    ask_costs(args.trials)


if __name__ == "__main__":
    main()
