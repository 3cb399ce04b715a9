"""Engine overhead per trial: sweep vs Optuna alone vs Ray Tune, whole processes timed.

Every contender runs trivial trials that report 3 epochs, 2 at a time where it runs trials in
parallel, with the same median pruner, at 100 and 300 trials. The marginal cost per trial is
(t300 - t100) / 200; the rest is start-up. Each run is its own process, timed from outside.
That difference of two noisy times moves by several ms between runs, so each contender also
stamps its trials' starts inside the run (our listener, Ray Tune's ``on_trial_start``
callback): "in-run" is the time per trial from the 20th start to the last.

- sweep: ``Sweep`` on the local Ray backend, default storage (a journal file).
- optuna-memory / optuna-journal: ``study.optimize`` in one process (no parallel workers).
- raytune: ``Tuner`` + ``OptunaSearch`` + ASHA at its best settings for short trials
  (reuse_actors, max_concurrent_trials=2, auto loggers off). Needs ``pip install -e '.[bench]'``.

Usage: python benchmarks/engine_overhead.py [--sizes 100 300] [--repeat 3] [--only sweep raytune]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def trivial(params, report):  # type: ignore[no-untyped-def]
    for epoch in range(3):
        if report(epoch, {"score": params["x"] * (epoch + 1)}):
            break
    return {"score": params["x"] * 3}


SKIPPED_STARTS = 20
"""Trial starts left out of the in-run figure: the first ones wait on worker processes."""


def print_in_run(starts: list[float]) -> None:
    """The time per trial between the 20th start and the last, for the parent to collect."""
    if len(starts) > SKIPPED_STARTS + 1:
        per = (starts[-1] - starts[SKIPPED_STARTS]) / (len(starts) - SKIPPED_STARTS - 1)
        print(f"in-run ms per trial: {per * 1000:.3f}")


class StartTimes:
    """A sweep listener that stamps each trial's start."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def trial_started(self, number, params) -> None:  # type: ignore[no-untyped-def]
        self.starts.append(time.perf_counter())

    def trial_reported(self, number, epoch, value) -> None:  # type: ignore[no-untyped-def]
        pass

    def trial_ended(self, number, state, value, reason) -> None:  # type: ignore[no-untyped-def]
        pass


def run_sweep(n: int, root: str) -> None:
    from sweep import Sweep
    from sweep.backends.ray_local import LocalRayBackend

    space = {"x": {"type": "uniform", "min_value": 0, "max_value": 1}}
    backend = LocalRayBackend()
    stamps = StartTimes()
    result = Sweep(
        name="bench",
        search_space=space,
        backend=backend,
        trainer=trivial,
        root=root,
        objective={"primary_metric": "score", "goal": "maximize"},
        sampling_algorithm={"type": "random", "seed": 0},
        early_termination={"type": "median", "n_startup_trials": 5},
        limits={"max_total_trials": n, "max_concurrent_trials": 2},
        resources={"cpus_per_trial": 1},
    ).run(listener=stamps)
    finished = result.counts.get("complete", 0) + result.counts.get("pruned", 0)
    if finished != n:
        raise SystemExit(f"only {finished} of {n} trials finished: {result.counts}")
    print(f"workers started: {backend.workers_started}")
    print_in_run(stamps.starts)


def run_optuna(n: int, root: str, journal: bool) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = None
    if journal:
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(os.path.join(root, "j.log")))

    def objective(trial):  # type: ignore[no-untyped-def]
        x = trial.suggest_float("x", 0, 1)
        for epoch in range(3):
            trial.report(x * (epoch + 1), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x * 3

    study = optuna.create_study(
        direction="maximize",
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    study.optimize(objective, n_trials=n)
    if len(study.trials) != n:
        raise SystemExit(f"optuna ran {len(study.trials)} of {n} trials")


def run_raytune(n: int, root: str) -> None:
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = "2"
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    class StartStamps(tune.Callback):
        def __init__(self) -> None:
            self.starts: list[float] = []

        def on_trial_start(self, iteration, trials, trial, **info):  # type: ignore[no-untyped-def]
            self.starts.append(time.perf_counter())

    stamps = StartStamps()

    def trainable(config):  # type: ignore[no-untyped-def]
        for epoch in range(3):
            tune.report({"score": config["x"] * (epoch + 1)})

    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            num_samples=n,
            max_concurrent_trials=2,
            search_alg=OptunaSearch(seed=0),
            scheduler=ASHAScheduler(max_t=3),
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=root, verbose=0, callbacks=[stamps]),
    )
    results = tuner.fit()
    print_in_run(stamps.starts)
    if len(results) != n or results.errors:
        raise SystemExit(f"ray tune ran {len(results)} of {n} trials, {len(results.errors)} errors")


CONTENDERS = ("sweep", "optuna-memory", "optuna-journal", "raytune")


def child(kind: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        if kind == "sweep":
            run_sweep(n, root)
        elif kind == "optuna-memory":
            run_optuna(n, root, journal=False)
        elif kind == "optuna-journal":
            run_optuna(n, root, journal=True)
        else:
            run_raytune(n, root)


WORKERS: dict[int, str] = {}
"""The sweep's trial worker processes, by trial count (its child prints them)."""
IN_RUN: dict[tuple[str, int], list[float]] = {}
"""Each contender's in-run ms per trial, by (contender, trial count)."""


def timed(kind: str, n: int) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(n)], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{kind} {n} failed:\n{proc.stderr[-3000:]}")
    for line in proc.stdout.splitlines():
        if line.startswith("workers started: "):
            WORKERS[n] = line.removeprefix("workers started: ")
        if line.startswith("in-run ms per trial: "):
            IN_RUN.setdefault((kind, n), []).append(float(line.rsplit(" ", 1)[1]))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[100, 300])
    parser.add_argument(
        "--repeat", type=int, default=3, help="interleaved rounds; medians are shown (default 3)"
    )
    parser.add_argument("--child", nargs=2)
    parser.add_argument("--only", nargs="*", default=list(CONTENDERS))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    small, large = args.sizes
    times: dict[tuple[str, int], list[float]] = {}
    for round_ in range(args.repeat):
        for kind in args.only:  # interleaved: a noisy minute hits every contender alike
            for n in (small, large):
                times.setdefault((kind, n), []).append(timed(kind, n))
        print(
            f"round {round_ + 1} of {args.repeat}: "
            + ", ".join(
                f"{kind} {times[kind, small][-1]:.2f}/{times[kind, large][-1]:.2f} s"
                for kind in args.only
            ),
            flush=True,
        )
    print(f"\nmedians of {args.repeat} rounds, whole processes")
    print(
        f"{'contender':<16} {small:>5} trials {large:>5} trials  marginal/trial  start-up"
        f"  in-run/trial ({large} trials)"
    )
    for kind in args.only:
        t_small, t_large = (statistics.median(times[kind, n]) for n in (small, large))
        marginal = (t_large - t_small) / (large - small)
        in_run = IN_RUN.get((kind, large))
        print(
            f"{kind:<16} {t_small:10.2f} s {t_large:10.2f} s  {marginal * 1000:10.1f} ms "
            f"{t_small - marginal * small:8.2f} s"
            + (f"  {statistics.median(in_run):10.1f} ms" if in_run else "")
        )
    if WORKERS:
        print(
            "sweep's trial worker processes (2 trials at a time): "
            + ", ".join(f"{WORKERS[n]} for {n} trials" for n in sorted(WORKERS))
        )
    if "sweep" in args.only and "raytune" in args.only:
        ratio = statistics.median(times["sweep", large]) / statistics.median(
            times["raytune", large]
        )
        print(f"\nsweep / Ray Tune at {large} trials: {ratio:.2f}x")


if __name__ == "__main__":
    main()
