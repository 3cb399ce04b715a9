"""What pruning and the pausing schedulers buy: time and epochs until a sweep first reaches
the best accuracy that the same sweep without pruning reaches (within 0.5 points), per
early-termination policy, promotion ASHA and Hyperband among them; and PBT beside random and
TPE sampling at an equal number of epochs.

The digits sweep (ResNet-18, 32 px, 6 epochs a trial), trials one at a time (2 CPUs each),
a seeded random sampler: every policy tries the same parameters in the same order, and a
trial's curve up to any epoch is the same whether or not it is pruned later (training on
CPU is deterministic for a seed). So each seed's sweep runs once for real without pruning,
and every policy is replayed over its recorded curves with the sweep's own pruner (the
same ``report``/``should_prune`` calls the coordinator makes), a pruned trial costing the
epochs it ran plus its start. Promotion ASHA and Hyperband are replayed the same way with
the coordinator's own scheduler (``sweep.promotion``): a paused trial continues from its
checkpoint, so its curve is the recorded one, and each continuation costs a start again.
PBT changes the curves (a member continues from another's weights), so it runs for real, as
does TPE; all trials use ``lr_schedule: none`` (the learning rate PBT sets is the one used).
``--verify POLICY`` also runs that policy for real on the first seed and prints the real
sweep next to its replay.

Usage: python benchmarks/pruning_payoff.py [--seeds 7 8 9] [--trials 12] [--epochs 6]
                                           [--verify asha_promotion] [--no-samplers]
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
from sweep.pausing import PAUSED, paused
from sweep.promotion import Promotion, promoted_from
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
    "asha_promotion": {"type": "asha", "mode": "promotion", "min_resource": 1,
                       "reduction_factor": 3},
    "hyperband_promotion": {"type": "hyperband", "mode": "promotion", "min_resource": 1,
                            "reduction_factor": 3},
}
SAMPLERS = ("tpe", "pbt")
"""Run for real, without early termination, beside the random sampler's sweep."""
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
    data["trainer"]["args"].update(num_epochs=epochs, lr_schedule="none")
    data["search_space"].pop("num_epochs")
    if policy in SAMPLERS:
        data["sampling_algorithm"] = {"type": policy, "seed": seed}
        if policy == "pbt":
            data["sampling_algorithm"].update(population_size=trials, perturbation_interval=2)
        data["early_termination"] = POLICIES["none"]
    else:
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
    failed = result.trials[result.trials["state"] == "failed"]
    if not failed.empty:  # a figure from a broken run would mislead: stop and say why
        raise SystemExit(f"{data['name']}: {len(failed)} trials failed, e.g. "
                         f"{failed['reason'].iloc[0]}")
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
    # Epochs run by the time each trial ended (paused trials end late: count by end time).
    for t in sorted(frozen, key=lambda t: t.datetime_complete or first):
        assert t.datetime_complete
        epochs_so_far += len(read_history(trial_dir(result.sweep_dir, t.number)))
        value = t.value if t.state == TrialState.COMPLETE else None
        timeline.append(((t.datetime_complete - first).total_seconds(), epochs_so_far, value))
    pruned = sum(t.state == TrialState.PRUNED for t in frozen)
    return recorded, Outcome(timeline, pruned)


def replay(policy: str, seed: int, trials: list[Trial], epochs: int) -> Outcome:
    """The sweep under ``policy``, its pruner fed the recorded curves in the same order."""
    config = parse_sweep(sweep_data(policy, seed, len(trials), epochs))
    scheduler = Promotion.of(config.early_termination.policy, True, epochs)
    if scheduler is not None:
        return _replay_pausing(scheduler, trials, epochs)
    study = optuna.create_study(study_name=config.name, direction="maximize",
                                pruner=make_pruner(config.early_termination))
    clock, epochs_so_far, pruned = 0.0, 0, 0
    timeline: list[tuple[float, int, float | None]] = []
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


def _replay_pausing(scheduler: Promotion, trials: list[Trial], epochs: int) -> Outcome:
    """One worker, as the coordinator runs it: when the worker is free the scheduler
    promotes a paused trial if it can, else a new trial starts; each start costs one."""
    study = optuna.create_study(direction="maximize")
    clock, epochs_so_far = 0.0, 0
    timeline: list[tuple[float, int, float | None]] = []
    next_epoch: dict[int, int] = {}
    launched = 0
    while True:
        frozen = study.get_trials(deepcopy=False)
        moves = scheduler.moves(frozen, (), launched >= len(trials))
        if moves:
            number = moves[0].number
            trial = optuna.Trial(study, frozen[number]._trial_id)
            for key, value in {**moves[0].attrs, PAUSED: 0}.items():
                trial.set_user_attr(key, value)
        elif launched < len(trials):
            trial, launched = study.ask(), launched + 1
            number = trial.number
        else:
            break
        recorded = trials[number]
        clock += recorded.start_s
        left = promoted_from(study.get_trials(deepcopy=False)[number])
        for epoch in range(next_epoch.get(number, 0), epochs):
            clock += recorded.epoch_s[epoch]
            epochs_so_far += 1
            trial.report(recorded.curve[epoch], epoch)
            next_epoch[number] = epoch + 1
            if scheduler.pauses_at(number, epoch + 1, epochs, left):
                trial.set_user_attr(PAUSED, epoch + 1)
                break
        else:
            study.tell(trial, recorded.curve[-1])
            timeline.append((clock, epochs_so_far, recorded.curve[-1]))
    pruned = len(paused(study.get_trials(deepcopy=False)))  # left at their rungs, which
    timeline += [(clock, epochs_so_far, None)] * pruned    # end with the sweep
    return Outcome(timeline, pruned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--verify", nargs="*", default=[], choices=list(POLICIES)[1:])
    parser.add_argument("--no-samplers", action="store_true",
                        help="skip the real TPE and PBT sweeps (policies only)")
    args = parser.parse_args()
    samplers = () if args.no_samplers else SAMPLERS
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"digits, ResNet-18 32 px, {args.trials} trials of {args.epochs} epochs, random "
          f"sampler, one trial at a time; target: each seed's best without pruning less "
          f"{TOLERANCE * 100:.1f} points\n")
    header = (f"{'seed':>4} {'policy':<21} {'to target s':>11} {'epochs':>7} {'sooner':>7}   "
              f"{'whole sweep s':>13} {'epochs':>7} {'pruned':>7} {'best':>7}")
    print(header)
    names = [*POLICIES, *samplers]
    sooner: dict[str, list[float]] = {name: [] for name in names}
    whole: dict[str, list[float]] = {name: [] for name in names}
    best: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as root:
        for seed in args.seeds:
            started = time.perf_counter()
            trials, real = run_for_real("none", seed, args.trials, args.epochs, root)
            baseline = replay("none", seed, trials, args.epochs)
            target = real.best - TOLERANCE
            base_at = baseline.reached(target)
            assert base_at is not None
            for name in names:
                if name in SAMPLERS:  # for real, its own time line
                    _, out = run_for_real(name, seed, args.trials, args.epochs, root)
                else:
                    out = replay(name, seed, trials, args.epochs)
                at = out.reached(target)
                best[name].append(out.best)
                sooner[name].append(base_at[0] / at[0] if at else 0.0)
                whole[name].append(baseline.seconds / out.seconds)
                cells = (f"{at[0]:11.0f} {at[1]:7d} {base_at[0] / at[0]:6.1f}x" if at
                         else f"{'not reached':>11} {'-':>7} {'-':>7}")
                print(f"{seed:>4} {name:<21} {cells}   {out.seconds:13.0f} {out.epochs:7d} "
                      f"{out.pruned:7d} {out.best:7.4f}", flush=True)
            print(f"     (this seed's real sweeps took {time.perf_counter() - started:.0f} s in "
                  f"all; the no-pruning one's timeline: {baseline.seconds:.0f} s)")
            if seed == args.seeds[0]:
                for name in args.verify:
                    _, out = run_for_real(name, seed, args.trials, args.epochs, root)
                    again = replay(name, seed, trials, args.epochs)
                    print(f"     verify {name}: real {out.epochs} epochs, {out.pruned} pruned, "
                          f"best {out.best:.4f}, {out.seconds:.0f} s; replay {again.epochs} "
                          f"epochs, {again.pruned} pruned, best {again.best:.4f}, "
                          f"{again.seconds:.0f} s")
    print(f"\nover seeds {', '.join(map(str, args.seeds))}: median (each seed's) speed-up")
    print(f"{'policy':<21} {'to target':>10} {'whole sweep':>12} {'best':>7}")
    for name in names:
        reached = ", ".join(f"{x:.1f}x" if x else "never" for x in sooner[name])
        median = statistics.median(sooner[name])
        cell = f"{median:9.1f}x" if median else f"{'never':>10}"
        print(f"{name:<21} {cell} {statistics.median(whole[name]):11.1f}x "
              f"{statistics.median(best[name]):7.4f}   ({reached})")
    print("\n(tpe and pbt: real sweeps without early termination, beside the random sampler's "
          "'none' row; pbt's population is the trials, each trained the same epochs)")


if __name__ == "__main__":
    main()
