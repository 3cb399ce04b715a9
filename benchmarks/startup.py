"""A short sweep end to end: ``sweep run`` of 10 trivial trials (3 reports each, 2 at a
time, local Ray), whole process timed from outside, beside its floor measured in the same
run: a Python process that only starts a local Ray and stops it.

Ray's own start is bimodal on a 2-CPU machine (``ray.init`` 2.2 s, or 3.2 s when the raylet
misses a one-second poll; its stop 1.1-2.3 s), on both sides at random: five runs put the
ratio of medians anywhere from 1.1x to 1.4x. The ratio of the fastest runs, where neither
side drew Ray's slow start, says what the sweep adds; both ratios are printed.

Usage: python benchmarks/startup.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAINER = """
def train(params, report):
    for epoch in range(3):
        if report(epoch, {"score": params["x"] * (epoch + 1)}):
            break
    return {"score": params["x"] * 3}
"""
SWEEP = """name: ten
trainer: {entry: "trivial:train"}
search_space: {x: {type: uniform, min_value: 0, max_value: 1}}
objective: {primary_metric: score, goal: maximize}
sampling_algorithm: {type: random, seed: 0}
early_termination: {type: median, n_startup_trials: 5}
limits: {max_total_trials: 10, max_concurrent_trials: 2}
resources: {cpus_per_trial: 1}
"""
RAY_ONLY = (
    "import os, ray; ray.init(address='local', num_cpus=os.cpu_count(), "
    "include_dashboard=False, log_to_driver=False); ray.shutdown()"
)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{argv} failed:\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    sweep = str(Path(sys.executable).with_name("sweep"))
    runs: list[float] = []
    floor: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "trivial.py").write_text(TRAINER)
        (folder / "ten.yaml").write_text(SWEEP)
        env = {**os.environ, "PYTHONPATH": str(folder), "RAY_AUTH_MODE": "token"}
        for i in range(args.repeat):
            runs.append(timed([sweep, "run", "ten.yaml", "--root", f"r{i}"], folder, env))
            floor.append(timed([sys.executable, "-c", RAY_ONLY], folder, env))
    print(f"{args.repeat} runs each, interleaved; median (min-max)")
    for label, times in (
        ("sweep run, 10 trivial trials", runs),
        ("python: ray.init + ray.shutdown only", floor),
    ):
        print(f"{label:<38} {statistics.median(times):5.2f} s ({min(times):.2f}-{max(times):.2f})")
    print(
        f"sweep against Ray alone: {statistics.median(runs) / statistics.median(floor):.2f}x "
        f"(medians), {min(runs) / min(floor):.2f}x (fastest runs)"
    )


if __name__ == "__main__":
    main()
