"""PBT in synchronous generations against asynchronous PBT when one member is slower.

The schedule toy of the tests (``tests.sweep_tests.toy_trainers.pbt_curve``: a curve whose
best learning rate falls as accuracy rises, so a fixed rate is right for one stretch only),
run as real sweeps in-process: population 8, all 8 at a time, every 2 epochs, 24 epochs,
member 0 three times slower than the rest (each epoch sleeps: 30 ms, 90 ms for member 0).
Per mode and seed: the wall time until any member reported ``--target`` accuracy, the whole
sweep's time, and the best accuracy at its end (every member trains the same epochs in both
modes, so that is the best at equal epochs).

``--raytune`` runs Ray Tune's PBT (asynchronous, its default) on the same toy and budget
beside them, in the same run: a function trainable that keeps the same state in a
``tune.Checkpoint`` each epoch, 8 trials at once on a local Ray (a quarter CPU each), the
same interval, quantile, resample probability and factors, the first trial 3x slower by its
trial id (so the slowness stays with the member, as in ours). Its times exclude Ray's start
(``ray.init`` once for all seeds); ours need no Ray. Needs ``pip install -e '.[bench]'``.

Both start from the same population: Ray Tune's trials are a grid of the 8 learning rates our
synchronous sweep of that seed drew, member 0 first (so the comparison is paired, and the
draw of the first population, which decides most of a run on this toy, is no longer noise
between the two). Ray Tune's PBT takes about two minutes a sweep here: ``--first-seed`` lets
its seeds run in parts (ours are repeatable per seed: synchronous decisions are seeded).

``--raytune-draws own`` lets Ray Tune draw its own first population instead (8 random
learning rates, as a user runs it): ours is a Latin hypercube, one member a stratum of the
range (``sweep/coordination/first_population.py``), which the paired comparison hands Ray Tune
too, so only this form shows what our first population is worth.

Usage: python benchmarks/pbt_async.py [--seeds 8] [--first-seed 0] [--target 0.9] [--raytune]
                                      [--raytune-draws ours|own]
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


def _tune_trainable(config: dict) -> None:
    import json

    from ray import tune

    from tests.sweep_tests.toy_trainers import curve_gain

    slow = tune.get_context().get_trial_id().endswith("_00000")
    start, acc = 0, 0.0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            state = json.loads(Path(folder, "state.json").read_text())
        start, acc = state["epoch"] + 1, state["acc"]
    for epoch in range(start, 24):
        time.sleep(0.09 if slow else 0.03)
        acc += curve_gain(float(config["lr"]), acc)
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "state.json").write_text(json.dumps({"epoch": epoch, "acc": acc}))
            tune.report({"acc": acc}, checkpoint=tune.Checkpoint.from_directory(folder))


def first_population(sweep_dir: Path) -> list[float]:
    """The learning rates a sweep's members started with (their first reports'), member 0
    first."""
    from sweep.records.layout import read_history

    folders = sorted(p for p in (sweep_dir / "trials").iterdir() if p.is_dir())
    return [float(read_history(folder)[0]["lr"]) for folder in folders]


def run_raytune(
    seed: int, first: list[float] | None, target: float, root: Path
) -> tuple[float | None, float, float]:
    import random

    import numpy as np
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    random.seed(seed)
    np.random.seed(seed)
    reached: list[float] = []
    started = time.monotonic()

    class Clock(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):  # type: ignore[no-untyped-def]
            if not reached and result.get("acc", 0.0) >= target:
                reached.append(time.monotonic() - started)

    pbt = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=2,
        hyperparam_mutations={"lr": tune.loguniform(1e-4, 0.1)},
        quantile_fraction=0.25,
        resample_probability=0.25,
        perturbation_factors=(2.0, 0.5),
    )
    results = tune.Tuner(
        tune.with_resources(_tune_trainable, {"cpu": 0.25}),
        # trial _00000 is first[0]: the slow one; without ``first``, Ray Tune's own 8 draws
        param_space={"lr": tune.grid_search(first) if first else tune.loguniform(1e-4, 0.1)},
        tune_config=tune.TuneConfig(
            metric="acc",
            mode="max",
            scheduler=pbt,
            num_samples=1 if first else 8,
            max_concurrent_trials=8,
        ),
        run_config=tune.RunConfig(
            name=f"pbt-{seed}",
            storage_path=str(root / "raytune"),
            verbose=0,
            callbacks=[Clock()],
        ),
    ).fit()
    whole = time.monotonic() - started
    best = max(float(r.metrics.get("acc", 0.0)) for r in results)
    return (reached[0] if reached else None), whole, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--raytune", action="store_true", help="Ray Tune's PBT beside ours")
    parser.add_argument(
        "--raytune-draws",
        choices=["ours", "own"],
        default="ours",
        help="Ray Tune's first population: our synchronous sweep's (paired, the default) or "
        "its own 8 random draws, as a user runs it",
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    out: dict[str, list[tuple[float | None, float, float]]] = {
        "synchronous": [],
        "asynchronous": [],
    }
    if args.raytune:
        import os

        import ray

        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        out["Ray Tune"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for name, sync in (("synchronous", True), ("asynchronous", False)):
                out[name].append(run(seed, sync, args.target, Path(tmp)))
            if args.raytune:
                first = (
                    first_population(Path(tmp) / f"pbt-{seed}-True")
                    if args.raytune_draws == "ours"
                    else None
                )
                out["Ray Tune"].append(run_raytune(seed, first, args.target, Path(tmp)))
            print(
                f"seed {seed}: "
                + ", ".join(f"{k} best {v[-1][2]:.4f} in {v[-1][1]:.1f} s" for k, v in out.items()),
                flush=True,
            )
    print(
        f"PBT, population 8 at once, member 0 3x slower, 24 epochs, {args.seeds} seeds "
        f"from seed {args.first_seed} "
        f"(medians; 'never': seeds that did not reach {args.target})"
    )
    for name, runs in out.items():
        reached = [r for r, _, _ in runs if r is not None]
        bests = [b for _, _, b in runs]
        print(
            f"  {name:<13} time to {args.target}: "
            + (f"{statistics.median(reached):.2f} s" if reached else "-")
            + f" (never in {len(runs) - len(reached)}), whole sweep "
            f"{statistics.median(w for _, w, _ in runs):.2f} s, best at its end: median "
            f"{statistics.median(bests):.4f}, worst {min(bests):.4f}"
        )


if __name__ == "__main__":
    main()
