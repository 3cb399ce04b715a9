"""PBT in synchronous generations against asynchronous PBT when one member is slower.

The schedule toy of the tests (``tests.sweep_tests.toy_trainers.pbt_curve``: a curve whose
best learning rate falls as accuracy rises, so a fixed rate is right for one stretch only),
run as real sweeps in-process: population 8, all 8 at a time, every 2 epochs, 24 epochs,
member 0 three times slower than the rest (each epoch sleeps: 30 ms, 90 ms for member 0).
Per mode and seed: the wall time until any member reported ``--target`` accuracy, the whole
sweep's time, and the best accuracy at its end (every member trains the same epochs in both
modes, so that is the best at equal epochs).

Usage: python benchmarks/pbt_async.py [--seeds 8] [--target 0.9]
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep import Sweep  # noqa: E402
from sweep.backends import InProcessBackend  # noqa: E402
from tests.sweep_tests.toy_trainers import pbt_curve  # noqa: E402


def uneven(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    slow = Path(params["output_dir"]).parent.name == "0000"
    return pbt_curve({**params, "epoch_s": 0.09 if slow else 0.03}, report)


class _Clock:
    def __init__(self, target: float) -> None:
        self.target, self.started, self.reached = target, time.monotonic(), None

    def trial_started(self, number, params):  # type: ignore[no-untyped-def]
        pass

    def trial_reported(self, number, epoch, value):  # type: ignore[no-untyped-def]
        if self.reached is None and value is not None and value >= self.target:
            self.reached = time.monotonic() - self.started

    def trial_ended(self, number, state, value, reason):  # type: ignore[no-untyped-def]
        pass


def run(
    seed: int, synchronous: bool, target: float, root: Path
) -> tuple[float | None, float, float]:
    clock = _Clock(target)
    started = time.monotonic()
    result = Sweep(
        name=f"pbt-{seed}-{synchronous}",
        search_space={
            "lr": {"type": "loguniform", "min_value": math.log(1e-4), "max_value": math.log(0.1)}
        },
        trainer=uneven,
        trainer_args={"num_epochs": 24},
        root=root,
        backend=InProcessBackend(),
        objective={"primary_metric": "acc", "goal": "maximize"},
        sampling_algorithm={
            "type": "pbt",
            "population_size": 8,
            "perturbation_interval": 2,
            "quantile": 0.25,
            "perturbation_factors": [0.5, 2.0],
            "seed": seed,
            "synchronous": synchronous,
        },
        limits={"max_concurrent_trials": 8},
    ).run(listener=clock)
    assert result.best is not None and result.best.value is not None
    return clock.reached, time.monotonic() - started, float(result.best.value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--target", type=float, default=0.9)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    out: dict[str, list[tuple[float | None, float, float]]] = {
        "synchronous": [],
        "asynchronous": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for name, sync in (("synchronous", True), ("asynchronous", False)):
                out[name].append(run(seed, sync, args.target, Path(tmp)))
    print(
        f"PBT, population 8 at once, member 0 3x slower, 24 epochs, {args.seeds} seeds "
        f"(medians; 'never': seeds that did not reach {args.target})"
    )
    for name, runs in out.items():
        reached = [r for r, _, _ in runs if r is not None]
        print(
            f"  {name:<13} time to {args.target}: "
            + (f"{statistics.median(reached):.2f} s" if reached else "-")
            + f" (never in {len(runs) - len(reached)}), whole sweep "
            f"{statistics.median(w for _, w, _ in runs):.2f} s, best at its end "
            f"{statistics.median(b for _, _, b in runs):.4f}"
        )


if __name__ == "__main__":
    main()
