"""Shared studies and tracking, each beside its baseline measured in the same run.

1. Engine cost per trial, trivial trials (3 reports each, one at a time, in-process): the
   journal file vs a PostgreSQL server on this machine.
2. Trials per hour on one PostgreSQL study, one coordinator vs two (each ``sweep run
   --parallel 1`` with its own local Ray): trivial trials, and trials of 1 second.
3. MLflow logging (a local ``mlflow server``, SQLite backend): cost per trial and per report
   beside the same sweep untracked.

Usage: python benchmarks/shared_storage.py [--trials 60]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPACE = {"x": {"type": "uniform", "min_value": 0, "max_value": 1}}


def in_process(root: Path, trials: int, storage: str = "default") -> float:
    """Seconds per trial of a trivial sweep run in-process (no Ray): the engine alone."""
    from sweep import Sweep
    from sweep.backends import InProcessBackend
    from tests.sweep_tests import toy_trainers

    sweep = Sweep(
        name=f"s{time.time_ns()}",
        search_space=SPACE,
        trainer=toy_trainers.quadratic,
        root=root,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 3},
        storage=storage,
        sampling_algorithm={"type": "random"},
        limits={"max_total_trials": trials, "max_concurrent_trials": 1},
    )
    started = time.perf_counter()
    sweep.run()
    return (time.perf_counter() - started) / trials


def coordinators(folder: Path, url: str, count: int, trials: int, epoch_s: float) -> float:
    """Trials per hour of ``count`` coordinators sharing one study of ``trials`` trials."""
    name = f"c{time.time_ns()}"
    (folder / f"{name}.yaml").write_text(
        yaml.safe_dump(
            {
                "name": name,
                "trainer": {
                    "entry": "tests.sweep_tests.toy_trainers:quadratic",
                    "args": {"num_epochs": 1, "epoch_s": epoch_s},
                },
                "search_space": SPACE,
                "sampling_algorithm": {"type": "random"},
                "limits": {"max_total_trials": trials},
                "storage": url,
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sweep.cli",
                "run",
                f"{name}.yaml",
                "--root",
                f"root{i}",
                "--parallel",
                "1",
            ],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(err[-2000:])
    return trials / (time.perf_counter() - started) * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    args = parser.parse_args()
    from tests.sweep_tests.postgres_server import postgres_server
    from tests.sweep_tests.test_tracking import mlflow_server

    with tempfile.TemporaryDirectory() as tmp, postgres_server() as url:
        folder = Path(tmp)
        journal = in_process(folder, args.trials)
        pg = in_process(folder, args.trials, url)
        print(
            f"1. engine per trivial trial (3 reports, in-process, {args.trials} trials): "
            f"journal {journal * 1000:.1f} ms, PostgreSQL {pg * 1000:.1f} ms "
            f"({pg / journal:.1f}x)"
        )
        print("2. trials per hour on one PostgreSQL study (2 CPUs)")
        for label, trials, epoch_s in (("trivial", 40, 0.0), ("1-second", 16, 1.0)):
            one = coordinators(folder, url, 1, trials, epoch_s)
            two = coordinators(folder, url, 2, trials, epoch_s)
            print(
                f"   {label:<9} {trials} trials: one coordinator {one:,.0f}/h, "
                f"two {two:,.0f}/h ({two / one:.2f}x)"
            )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plain = in_process(folder, args.trials)
        with mlflow_server(folder) as (uri, _):
            os.environ["MLFLOW_TRACKING_URI"] = uri
            try:
                tracked = in_process(folder, args.trials)
            finally:
                del os.environ["MLFLOW_TRACKING_URI"]
        extra = tracked - plain
        print(
            f"3. MLflow tracking, trivial trials: untracked {plain * 1000:.1f} ms a trial, "
            f"tracked {tracked * 1000:.1f} ms (+{extra * 1000:.1f} ms a trial for its 7 "
            "calls to the server: run, params, 3 reports, end state; they run in a "
            "background thread, so only a sweep of trivial trials waits for them, at its "
            "end)"
        )


if __name__ == "__main__":
    main()
