"""What pruning buys: time and epochs until a sweep first reaches the best accuracy that the
same sweep without pruning reaches (within 0.5 points), per early-termination policy.

The digits sweep (ResNet-18, 32 px, 6 epochs a trial), trials one at a time (2 CPUs each),
a seeded random sampler: every policy tries the same parameters in the same order, and a
trial's curve up to any epoch is the same whether or not it is pruned later (training on
CPU is deterministic for a seed). So each seed's sweep runs once for real without pruning,
and every policy is replayed over its recorded curves with the sweep's own pruner (the
same ``report``/``should_prune`` calls the coordinator makes), a pruned trial costing the
epochs it ran plus its start. ``--verify POLICY`` also runs that policy for real on the
first seed and prints the real sweep next to its replay.

Usage: python benchmarks/pruning_payoff.py [--seeds 7 8 9] [--trials 12] [--epochs 6]
                                           [--verify bandit]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from search_spaces import example_path, parse_sweep, read_sweep_file, to_dict
from sweep import Sweep
from sweep.layout import read_history, trial_dir
from sweep.pruners import make_pruner

POLICIES: dict[str, dict[str, Any]] = {
    "none": {"type": "none"},
    "bandit": {"type": "bandit", "slack_factor": 0.1, "evaluation_interval": 1,
               "delay_evaluation": 1},
    "median_stopping": {"type": "median_stopping", "evaluation_interval": 1,
                        "delay_evaluation": 1},
    "truncation_selection": {"type": "truncation_selection", "truncation_percentage": 25,
                             "evaluation_interval": 1, "delay_evaluation": 1},
    "asha": {"type": "asha", "min_resource": 1, "reduction_factor": 3},
    "hyperband": {"type": "hyperband", "min_resource": 1, "reduction_factor": 3},
}
TOLERANCE = 0.005
METRIC = "best_val_acc"


@dataclass
class Trial:
    curve: list[float]  # the primary metric at each epoch
    epoch_s: list[float]
    start_s: float  # what a trial costs besides its epochs (model, data, worker)


@dataclass
class Outcome:
    timeline: list[tuple[float, int, float | None]]  # (seconds, epochs so far, value) per trial
    pruned: int

    @property
    def seconds(self) -> float:
        return self.timeline[-1][0]

    @property
    def epochs(self) -> int:
        return self.timeline[-1][1]

    @property
    def best(self) -> float:
        return max((v for _, _, v in self.timeline if v is not None), default=float("nan"))

    def reached(self, target: float) -> tuple[float, int] | None:
        return next(((s, e) for s, e, v in self.timeline if v is not None and v >= target), None)


def sweep_data(policy: str, seed: int, trials: int, epochs: int) -> dict[str, Any]:
    data = to_dict(read_sweep_file(example_path("digits")))
    data["trainer"]["args"]["num_epochs"] = epochs
    data["search_space"].pop("num_epochs")
    data["sampling_algorithm"] = {"type": "random", "seed": seed}
    data["early_termination"] = POLICIES[policy]
    data["limits"] = {"max_total_trials": trials, "max_concurrent_trials": 1}
    data["resources"] = {"cpus_per_trial": 2}
    data.pop("register", None)
    data["name"] = f"payoff-{policy}-{seed}"
    return data


def run_for_real(policy: str, seed: int, trials: int, epochs: int, root: str
                 ) -> tuple[list[Trial], Outcome]:
    """The sweep itself: each trial's recorded curve, and what the sweep did."""
    data = sweep_data(policy, seed, trials, epochs)
    result = Sweep(config=parse_sweep(data), root=root).run()
    assert result.study is not None
    frozen = sorted(result.study.get_trials(deepcopy=False), key=lambda t: t.number)
    first = min(t.datetime_start for t in frozen if t.datetime_start)
    recorded, timeline, epochs_so_far = [], [], 0
    for t in frozen:
        assert t.datetime_start and t.datetime_complete
        history = read_history(trial_dir(result.sweep_dir, t.number))
        wall = (t.datetime_complete - t.datetime_start).total_seconds()
        epoch_s = [float(h["epoch_s"]) for h in history]
        recorded.append(Trial([float(h[METRIC]) for h in history], epoch_s,
                              max(0.0, wall - sum(epoch_s))))
        epochs_so_far += len(history)
        value = t.value if t.state == TrialState.COMPLETE else None
        timeline.append(((t.datetime_complete - first).total_seconds(), epochs_so_far, value))
    pruned = sum(t.state == TrialState.PRUNED for t in frozen)
    return recorded, Outcome(timeline, pruned)


def replay(policy: str, seed: int, trials: list[Trial], epochs: int) -> Outcome:
    """The sweep under ``policy``, its pruner fed the recorded curves in the same order."""
    config = parse_sweep(sweep_data(policy, seed, len(trials), epochs))
    study = optuna.create_study(study_name=config.name, direction="maximize",
                                pruner=make_pruner(config.early_termination))
    clock, epochs_so_far, timeline, pruned = 0.0, 0, [], 0
    for recorded in trials:
        trial = study.ask()
        clock += recorded.start_s
        stopped = False
        for epoch, (value, seconds) in enumerate(zip(recorded.curve, recorded.epoch_s,
                                                     strict=True)):
            clock += seconds
            epochs_so_far += 1
            trial.report(value, epoch)
            if trial.should_prune():
                stopped = True
                break
        if stopped:
            study.tell(trial, state=TrialState.PRUNED)
            pruned += 1
            timeline.append((clock, epochs_so_far, None))
        else:
            study.tell(trial, recorded.curve[-1])
            timeline.append((clock, epochs_so_far, recorded.curve[-1]))
    return Outcome(timeline, pruned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--verify", nargs="*", default=[], choices=list(POLICIES)[1:])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"digits, ResNet-18 32 px, {args.trials} trials of {args.epochs} epochs, random "
          f"sampler, one trial at a time; target: each seed's best without pruning less "
          f"{TOLERANCE * 100:.1f} points\n")
    header = (f"{'seed':>4} {'policy':<21} {'to target s':>11} {'epochs':>7} {'sooner':>7}   "
              f"{'whole sweep s':>13} {'epochs':>7} {'pruned':>7} {'best':>7}")
    print(header)
    sooner: dict[str, list[float]] = {name: [] for name in POLICIES}
    whole: dict[str, list[float]] = {name: [] for name in POLICIES}
    with tempfile.TemporaryDirectory() as root:
        for seed in args.seeds:
            started = time.perf_counter()
            trials, real = run_for_real("none", seed, args.trials, args.epochs, root)
            baseline = replay("none", seed, trials, args.epochs)
            target = real.best - TOLERANCE
            base_at = baseline.reached(target)
            assert base_at is not None
            for name in POLICIES:
                out = replay(name, seed, trials, args.epochs)
                at = out.reached(target)
                sooner[name].append(base_at[0] / at[0] if at else 0.0)
                whole[name].append(baseline.seconds / out.seconds)
                cells = (f"{at[0]:11.0f} {at[1]:7d} {base_at[0] / at[0]:6.1f}x" if at
                         else f"{'not reached':>11} {'-':>7} {'-':>7}")
                print(f"{seed:>4} {name:<21} {cells}   {out.seconds:13.0f} {out.epochs:7d} "
                      f"{out.pruned:7d} {out.best:7.4f}", flush=True)
            print(f"     (no-pruning sweep ran for real in {time.perf_counter() - started:.0f} s;"
                  f" replay of its timeline: {baseline.seconds:.0f} s)")
            if seed == args.seeds[0]:
                for name in args.verify:
                    _, out = run_for_real(name, seed, args.trials, args.epochs, root)
                    again = replay(name, seed, trials, args.epochs)
                    print(f"     verify {name}: real {out.epochs} epochs, {out.pruned} pruned, "
                          f"best {out.best:.4f}, {out.seconds:.0f} s; replay {again.epochs} "
                          f"epochs, {again.pruned} pruned, best {again.best:.4f}, "
                          f"{again.seconds:.0f} s")
    print(f"\nover seeds {', '.join(map(str, args.seeds))}: median (each seed's) speed-up")
    print(f"{'policy':<21} {'to target':>10} {'whole sweep':>12}")
    for name in POLICIES:
        reached = ", ".join(f"{x:.1f}x" if x else "never" for x in sooner[name])
        median = statistics.median(sooner[name])
        cell = f"{median:9.1f}x" if median else f"{'never':>10}"
        print(f"{name:<21} {cell} {statistics.median(whole[name]):11.1f}x   ({reached})")


if __name__ == "__main__":
    main()
