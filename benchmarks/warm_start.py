"""What a warm start saves: trials a second sweep over a changed space needs to reach the
first sweep's best, warm-started from the first against cold, and what the warm start costs.

The function is Hartmann-6 (six parameters in [0, 1], one peak of 3.32237 among local ones;
the objective is maximised). The first sweep searches a narrower space (x1 in [0, 0.6]); the
second the whole of it, as a user widens a range after a sweep. Per seed: the first sweep
(TPE, ``--first`` trials), then the second cold and warm-started (TPE, up to ``--second``
trials each, the same seed), both run by ``Sweep`` with function trials in this process.
Printed: per seed, the first trial of each second sweep at or above the first sweep's best
(``--second`` + 1 when none did), their medians, and the ratio. Then the cost of loading
1,000 earlier trials and the first suggestion made with them.

``--problem digits`` is the digits trainer through its recorded curve bank
(``benchmarks/curves/digits.jsonl.gz``, 300 configurations; a tabular benchmark): a trial's
value is the final best validation accuracy of the recorded configuration nearest its
params (the same model, image size, schedule, batch size and weight decay count most, then
the distance in log learning rate and momentum). The first sweep searches learning rates
up to 0.02, the second up to 0.5, the bank's whole range.

``--problem digits-trainer`` trains for real: the built-in trainer on the built-in digits
(ResNet-18 from scratch at 16 px, batch 128, 3 epochs, one thread a trial, 2 trials at a
time: the cheapest configuration of the bank, about 6 s a trial here), tuning learning rate
(up to 0.02 first, 0.5 second) and momentum; the value is ``best_val_acc``. Each second
sweep runs 2 trials at a time and stops once a trial reaches the target, so a seed costs
the first sweep plus what each second sweep needed.

Usage: python benchmarks/warm_start.py [--problem hartmann6|digits|digits-trainer]
                                       [--seeds 10] [--first 30] [--second 60]
                                       [--warm-trials all|best:K]
                                       [--noise K] [--within ACC] [--first-seed S]

``--noise K`` (digits-trainer) retrains seed 0's first best with K other trainer seeds:
the spread of one configuration's value. ``--within ACC`` also counts the trials a second
sweep needs to come within ACC of the first sweep's best (the first best is the maximum of
20 or 30 such noisy draws, which an equal configuration beats only half the time).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
NAMES = [f"x{i}" for i in range(1, 7)]


def hartmann6(params, report):  # type: ignore[no-untyped-def]
    x = np.array([params[n] for n in NAMES])
    value = float(np.sum(_ALPHA * np.exp(-np.sum(_A * (x - _P) ** 2, axis=1))))
    report(0, {"score": value})
    return {"score": value}


def _space(x1_max: float) -> dict:
    return {
        n: {"type": "uniform", "min_value": 0.0, "max_value": x1_max if n == "x1" else 1.0}
        for n in NAMES
    }


class DigitsBank:
    """The digits trainer as a table (``digits_table``): a trial's value is the final best
    validation accuracy of the recorded configuration nearest its params."""

    def __init__(self) -> None:
        from benchmarks.digits_table import DigitsTable

        self.table = DigitsTable()
        self.space = self.table.space

    def __call__(self, params, report):  # type: ignore[no-untyped-def]
        value = max(self.table.nearest(params)[1])
        report(0, {"score": value})
        return {"score": value}


WARM_TRIALS = ["all"]
"""``warm_start.trials`` of the warm-started sweeps (``--warm-trials``)."""

TRAINER_ARGS = {
    "data": "digits",
    "weights": "none",
    "threads": 1,
    "device": "cpu",
    "amp": False,
    "model": "resnet18",
    "image_size": 16,
    "batch_size": 128,
    "num_epochs": 3,
    "lr_schedule": "none",
    "weight_decay": 0.0,
}
"""The digits trainer's fixed settings in ``--problem digits-trainer``."""


def _trainer_space(lr_max: float) -> dict:
    return {
        "learning_rate": {"type": "float", "low": 3e-4, "high": lr_max, "log": True},
        "momentum": {"type": "uniform", "min_value": 0.0, "max_value": 0.99},
    }


def _problem(name: str):  # type: ignore[no-untyped-def]
    """The trainer, the first sweep's space and the second's."""
    if name == "digits":
        bank = DigitsBank()
        return bank, bank.space(0.02), bank.space(0.5)
    if name == "digits-trainer":
        return "trainer", _trainer_space(0.02), _trainer_space(0.5)
    return hartmann6, _space(0.6), _space(1.0)


def _metric(problem) -> str:  # type: ignore[no-untyped-def]
    return "best_val_acc" if problem == "trainer" else "score"


def _sweep(  # type: ignore[no-untyped-def]
    root: Path, name: str, trials: int, seed: int, problem, space: dict, warm: list[str]
):
    """A sweep of TPE trials in this process; real training 2 at a time."""
    from sweep import Sweep
    from sweep.backends import InProcessBackend

    real = problem == "trainer"
    return Sweep(
        name=name,
        trainer=problem,
        **({"trainer_args": TRAINER_ARGS} if real else {}),
        search_space=space,
        objective={"primary_metric": _metric(problem), "goal": "maximize"},
        sampling_algorithm={"type": "tpe", "seed": seed},
        limits={"max_total_trials": trials, "max_concurrent_trials": 2 if real else 1},
        root=root,
        backend=InProcessBackend(),
        keep={"models": 1, "checkpoints": "none"},
        **({"warm_start": {"from": warm, "trials": WARM_TRIALS[0]}} if warm else {}),
    )


def _values(result) -> list:  # type: ignore[no-untyped-def]
    assert result.study is not None
    return [t.value for t in sorted(result.study.get_trials(), key=lambda t: t.number)]


def _run(  # type: ignore[no-untyped-def]
    root: Path, name: str, trials: int, seed: int, problem, space: dict, warm: list[str]
):
    return _values(_sweep(root, name, trials, seed, problem, space, warm).run())


def _until(  # type: ignore[no-untyped-def]
    root: Path,
    name: str,
    trials: int,
    seed: int,
    problem,
    space: dict,
    warm: list[str],
    target: float,
    within: float = 0.0,
) -> tuple[int, int]:
    """A second sweep of real training, 2 trials at a time, until one reaches ``target``:
    how many trials it took to come within ``within`` of it, and to reach it (``trials`` + 1:
    none in ``trials``)."""
    from sweep import Sweep
    from sweep.backends import InProcessBackend

    ran = 2
    result = _sweep(root, name, trials, seed, problem, space, warm).run(max_trials=ran)
    while True:
        values = _values(result)
        reached = _reached(values, target, trials + 1)
        if reached <= trials or ran >= trials:
            return _reached(values, target - within, trials + 1), reached
        ran = min(ran + 2, trials)
        result = Sweep.load(name, root=root, backend=InProcessBackend()).resume(max_trials=ran)


def seed_noise(root: Path, params: dict, k: int) -> list[float]:
    """The digits trainer's ``best_val_acc`` at ``params``, trained ``k`` times with trainer
    seeds 1..k: how far the same configuration moves from run to run (the first sweep's best
    is the maximum of such draws)."""
    from sweep import Sweep
    from sweep.backends import InProcessBackend

    space = {name: {"type": "choice", "values": [value]} for name, value in params.items()}
    space["seed"] = {"type": "choice", "values": list(range(1, k + 1))}
    result = Sweep(
        name="noise",
        trainer="trainer",
        trainer_args=TRAINER_ARGS,
        search_space=space,
        objective={"primary_metric": "best_val_acc", "goal": "maximize"},
        sampling_algorithm="grid",
        limits={"max_total_trials": k, "max_concurrent_trials": 2},
        root=root,
        backend=InProcessBackend(),
        keep={"models": 1, "checkpoints": "none"},
    ).run()
    return [v for v in _values(result) if v is not None]


def _reached(values: list, target: float, none: int) -> int:
    for n, v in enumerate(values, start=1):
        if v is not None and v >= target - 1e-12:
            return n
    return none


def load_cost(root: Path) -> tuple[float, float]:
    """Seconds to load 1,000 earlier trials, and to make the first suggestion with them."""
    import optuna
    import yaml

    from search_spaces import parse_sweep, to_dict, to_optuna
    from sweep.coordination.study import open_study
    from sweep.coordination.warm_start import WarmStartSampler, load_history

    old = parse_sweep(
        {
            "name": "thousand",
            "search_space": _space(1.0),
            "objective": {"primary_metric": "score", "goal": "maximize"},
            "sampling_algorithm": {"type": "tpe"},
        }
    )
    folder = root / "thousand"
    folder.mkdir()
    (folder / "sweep.yaml").write_text(yaml.safe_dump(to_dict(old)))
    study = open_study(old, to_optuna(old.search_space), folder)
    rng = np.random.default_rng(0)
    dists = to_optuna(old.search_space).distributions()
    for _ in range(1000):
        params = {n: float(rng.uniform()) for n in NAMES}
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                value=hartmann6(params, lambda *a: None)["score"],
            )
        )
    new = parse_sweep(
        {
            "name": "new",
            "search_space": _space(1.0),
            "objective": {"primary_metric": "score", "goal": "maximize"},
            "sampling_algorithm": {"type": "tpe"},
            "warm_start": {"from": ["thousand"]},
        }
    )
    space = to_optuna(new.search_space)
    started = time.perf_counter()
    history = load_history(new, space, root)
    loaded = time.perf_counter() - started
    assert len(history.trials) == 1000
    fresh = optuna.create_study(
        direction="maximize",
        sampler=WarmStartSampler(
            optuna.samplers.TPESampler(seed=0, multivariate=True), history.trials
        ),
    )
    started = time.perf_counter()
    fresh.ask(space.distributions())
    return loaded, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--problem", choices=["hartmann6", "digits", "digits-trainer"], default="hartmann6"
    )
    parser.add_argument(
        "--warm-trials",
        default="all",
        help="warm_start.trials of the second sweep: all (default) or best:K",
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="the first seed to run: to finish a long digits-trainer run in parts",
    )
    parser.add_argument("--first", type=int, default=30)
    parser.add_argument("--second", type=int, default=60)
    parser.add_argument(
        "--within",
        type=float,
        default=0.0,
        help="digits-trainer: also count the trials to come within this much of the first "
        "sweep's best (e.g. the seed-to-seed spread that --noise measures)",
    )
    parser.add_argument(
        "--noise",
        type=int,
        default=0,
        metavar="K",
        help="digits-trainer: retrain seed 0's first best K times with other trainer seeds "
        "and print the spread",
    )
    args = parser.parse_args()
    WARM_TRIALS[0] = args.warm_trials
    import logging

    logging.disable(logging.WARNING)
    cold_n, warm_n = [], []
    problem, narrow, whole = _problem(args.problem)
    changed = "x1 <= 0.6" if args.problem == "hartmann6" else "learning_rate <= 0.02"
    print(
        f"{args.problem}; first sweep {args.first} TPE trials on {changed}, second up to "
        f"{args.second} on the whole space; trials to reach the first sweep's best"
    )
    real = problem == "trainer"
    cold_w: list[int] = []
    warm_w: list[int] = []
    print(
        f"{'seed':>4} {'first best':>10} {'cold':>5} {'warm':>5}"
        + (f"   within {args.within:g}: cold warm" if real and args.within else "")
    )
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            ran = _sweep(root, "first", args.first, seed, problem, narrow, []).run()
            first = _values(ran)
            target = max(v for v in first if v is not None)
            if real and args.noise and seed == 0 and ran.best is not None:
                noise = seed_noise(root, dict(ran.best.params), args.noise)
                print(
                    f"seed 0's first best {ran.best.value:.4f} at {dict(ran.best.params)}; "
                    f"retrained with {len(noise)} other trainer seeds: "
                    f"{', '.join(f'{v:.4f}' for v in noise)} (mean "
                    f"{statistics.mean(noise):.4f}, sd {statistics.stdev(noise):.4f})",
                    flush=True,
                )
            if real:
                pairs = [
                    _until(
                        root,
                        name,
                        args.second,
                        1000 + seed,
                        problem,
                        whole,
                        warm,
                        target,
                        args.within,
                    )
                    for name, warm in (("cold", []), ("warm", ["first"]))
                ]
                second = [exact for _, exact in pairs]
                cold_w.append(pairs[0][0])
                warm_w.append(pairs[1][0])
            else:
                second = [
                    _reached(
                        _run(root, name, args.second, 1000 + seed, problem, whole, warm),
                        target,
                        args.second + 1,
                    )
                    for name, warm in (("cold", []), ("warm", ["first"]))
                ]
        cold_n.append(second[0])
        warm_n.append(second[1])
        near = f"   {cold_w[-1]:>17} {warm_w[-1]:>4}" if real and args.within else ""
        print(f"{seed:>4} {target:>10.4f} {cold_n[-1]:>5} {warm_n[-1]:>5}{near}", flush=True)
    cold_m, warm_m = statistics.median(cold_n), statistics.median(warm_n)
    print(
        f"median: cold {cold_m:g}, warm {warm_m:g} trials ({warm_m / cold_m:.2f}x; target "
        f"at most 1/3); '{args.second + 1}' = not reached in {args.second}"
    )
    if real and args.within:
        cold_m, warm_m = statistics.median(cold_w), statistics.median(warm_w)
        print(
            f"within {args.within:g} of the first best, median: cold {cold_m:g}, warm "
            f"{warm_m:g} trials ({warm_m / cold_m:.2f}x)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        loaded, first_ask = load_cost(Path(tmp))
    print(
        f"1,000 earlier trials: loaded in {loaded:.2f} s, first suggestion with them in "
        f"{first_ask:.2f} s (target: under 1 s)"
    )
    assert not math.isnan(cold_m)


if __name__ == "__main__":
    main()
