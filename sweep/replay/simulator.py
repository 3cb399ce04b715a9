"""Recorded learning curves re-run under any early-termination policy, on a simulated clock.

A replay answers "which policy for my next sweep?" from curves that already exist (a finished
sweep's trials, or a bank of curves), in seconds: ``workers`` simulated workers take trials in
order, each epoch of a trial arrives when its recorded time has passed, and the sweep's own
pruner (``sweep.scheduling.pruners``) or pausing scheduler (``sweep.scheduling.promotion``)
judges each report exactly as the coordinator does, on an Optuna study in memory. Nothing waits:
events are taken in time order (as Syne Tune's simulator backend does), so hundreds of trials
under many policies and orders take seconds.

Two ways to run one:
- **The same trials** in a given order (the recorded one first): what each policy spends, and
  whether it keeps the best model the sweep without pruning finds. One worker and the
  recorded order reproduce the real sweep of that policy (same pruned trials, same epochs).
- **An open stream at equal compute** (``budget_s``): trials keep coming, drawn from the
  curves in a shuffled order, until the simulated clock reaches the budget (the
  no-pruning sweep's time). This is what pruning is for: more configurations in the same
  hours. Its ``timeline`` is the best found so far against time.

A curve recorded from a trial that was pruned ends where it was pruned. A policy that would
have let it go on stops it there: it is ``censored`` (counted, never completed).
"""

from __future__ import annotations

import heapq
import json
import math
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from search_spaces import EarlyTermination
from sweep.coordination.study import log_like_a_library
from sweep.coordination.warm_start import teach_scheduler
from sweep.records.trial_attrs import PAUSED, promoted_from
from sweep.scheduling.finished_trials import FinishedTrials
from sweep.scheduling.pausing import paused
from sweep.scheduling.promotion import Promotion
from sweep.scheduling.pruners import ForecastPruner, make_pruner
from sweep.scheduling.verdicts import Referee


@dataclass(frozen=True)
class Curve:
    """One trial's recorded curve: the primary metric after each epoch, and what it cost."""

    values: tuple[float, ...]
    epoch_s: tuple[float, ...]
    planned: int
    """The epochs the trial asked for (its curve is shorter when it was pruned)."""
    start_s: float = 0.0
    """What starting it cost besides its epochs (a worker, the model, the data)."""
    label: str = ""
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """The hyperparameters that made it, where known: a replayed trial has them, so a
    policy that reads them (the forecast calibrated on an earlier sweep) sees them."""

    def __post_init__(self) -> None:
        if len(self.values) != len(self.epoch_s):
            raise ValueError(
                f"curve {self.label}: {len(self.values)} values but {len(self.epoch_s)} epoch times"
            )

    @property
    def complete(self) -> bool:
        return len(self.values) >= self.planned


@dataclass
class Run:
    """What one replay did."""

    epochs: int = 0
    seconds: float = 0.0
    trials: int = 0
    pruned: int = 0
    censored: int = 0
    completed: list[float] = field(default_factory=list)
    timeline: list[tuple[float, float]] = field(default_factory=list)
    """(simulated seconds, best so far) each time the best improved."""

    def best(self, maximize: bool) -> float | None:
        if not self.completed:
            return None
        return max(self.completed) if maximize else min(self.completed)

    def reached(self, target: float, maximize: bool) -> float | None:
        """When the best so far first reached ``target`` (None: never)."""
        return next(
            (s for s, v in self.timeline if (v >= target if maximize else v <= target)), None
        )

    def best_at(self, seconds: float, maximize: bool) -> float | None:
        found = [v for s, v in self.timeline if s <= seconds]
        return found[-1] if found else None


class KeepTopAfter(BasePruner):
    """A baseline, not a policy of the sweep file: after ``epochs`` epochs, keep a trial only
    when it is in the top ``share`` of the trials that reached that epoch (the cheapest rule
    there is, "keep the top third after one epoch")."""

    def __init__(self, epochs: int = 1, share: float = 1 / 3) -> None:
        self.epochs, self.share = epochs, share

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = self.epochs - 1
        if max(trial.intermediate_values, default=-1) != step:
            return False
        peers = sorted(
            (
                t.intermediate_values[step]
                for t in study.get_trials(deepcopy=False)
                if step in t.intermediate_values
            ),
            reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE,
        )
        kept = max(1, math.ceil(len(peers) * self.share))
        return bool(trial.intermediate_values[step] not in peers[:kept])


RECORDED_END = "replay_recorded_end"
"""Trial attribute in a replay of ``Hindsight``: the value its recorded curve ends at."""


class Hindsight(BasePruner):
    """A bound, not a policy: a forecast that is never wrong. From ``epochs`` epochs on, a
    trial stops as soon as its recorded curve ends below the best finished value (above, when
    minimizing). No policy that asks "can it still beat the best so far?" (``forecast``)
    saves more time to the best on these curves when it judges from that epoch on: the
    forecast's row is measured against this one."""

    def __init__(self, epochs: int = 3) -> None:
        self.epochs = epochs
        self._trials = FinishedTrials()
        self._best: float | None = None

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        new, _ = self._trials.update(study.get_trials(deepcopy=False))
        for t in new:
            if t.state == TrialState.COMPLETE and t.value is not None:
                better = self._best is None or (
                    t.value > self._best if maximize else t.value < self._best
                )
                self._best = t.value if better else self._best
        if len(trial.intermediate_values) < self.epochs or self._best is None:
            return False
        end = float(trial.user_attrs[RECORDED_END])
        return end < self._best if maximize else end > self._best


ReplayPolicy = EarlyTermination | KeepTopAfter | Hindsight
"""What a replay runs: a sweep file's policy, a baseline, or the hindsight bound."""

STANDARD: dict[str, ReplayPolicy] = {
    "none": EarlyTermination("none"),
    "bandit": EarlyTermination(
        "bandit", {"slack_factor": 0.1, "evaluation_interval": 1, "delay_evaluation": 1}
    ),
    "median_stopping": EarlyTermination(
        "median_stopping", {"evaluation_interval": 1, "delay_evaluation": 1}
    ),
    "truncation_selection": EarlyTermination(
        "truncation_selection",
        {"truncation_percentage": 25, "evaluation_interval": 1, "delay_evaluation": 1},
    ),
    "asha": EarlyTermination("asha", {"min_resource": 1, "reduction_factor": 3}),
    "hyperband": EarlyTermination("hyperband", {"min_resource": 1, "reduction_factor": 3}),
    "asha_promotion": EarlyTermination(
        "asha", {"mode": "promotion", "min_resource": 1, "reduction_factor": 3}
    ),
    "hyperband_promotion": EarlyTermination(
        "hyperband", {"mode": "promotion", "min_resource": 1, "reduction_factor": 3}
    ),
    "forecast": EarlyTermination("forecast", {"risk": 0.05}),
    "top_third_after_1": KeepTopAfter(1, 1 / 3),
    "hindsight_from_3": Hindsight(3),
}
"""The policies a replay compares when none is named: the sweep file's, with usual
settings, the baseline, and the hindsight bound (a forecast never wrong, judging from the
forecast's ``min_epochs``)."""


def replay(
    curves: Sequence[Curve],
    policy: ReplayPolicy,
    *,
    maximize: bool = True,
    workers: int = 1,
    order: Sequence[int] | None = None,
    budget_s: float | None = None,
    seed: int = 0,
    study_name: str = "replay",
    calibration: Sequence[Curve] = (),
) -> Run:
    """``curves`` run under ``policy`` on ``workers`` simulated workers.

    Args:
        order: the curves' indices in the order trials start (default: as given).
        budget_s: an open stream instead: curves drawn in shuffled rounds (``seed``) until
            the clock reaches this many seconds; trials running then are cut there.
        study_name: the study's name. Optuna's Hyperband deals trials to its brackets by a hash
            of the study's name and the trial's number: the sweep's own name deals them as
            the sweep did, and a fixed one makes a replay repeatable (a random name did not).
        calibration: an earlier sweep's curves: the forecast's margin learns from them as a
            warm-started sweep's does (``warm_start``); the other policies ignore them, as
            they do in a sweep.
    """
    if not curves:
        raise ValueError("a replay needs curves")
    longest = max(c.planned for c in curves)
    # Only the forecast calibrated on earlier curves reads a trial's params: without
    # calibration the replayed trials carry none (setting them cost a tenth of a replay).
    space = distributions_of(curves, calibration) if calibration else {}
    pruner: BasePruner
    if isinstance(policy, KeepTopAfter | Hindsight):
        # Hindsight keeps the best it has seen: a fresh one for each replay.
        scheduler = None
        pruner = Hindsight(policy.epochs) if isinstance(policy, Hindsight) else policy
    else:
        scheduler = Promotion.of(policy.policy, maximize, longest)
        pruner = make_pruner(policy, longest)
        if calibration:
            earlier = as_trials(calibration, space)
            if isinstance(pruner, ForecastPruner):
                pruner.judge.calibrate_on(earlier)
            teach_scheduler(scheduler, earlier)
    log_like_a_library()  # a replay makes hundreds of studies: no line from Optuna for each
    study = optuna.create_study(
        study_name=study_name, direction="maximize" if maximize else "minimize", pruner=pruner
    )
    queue = (
        _stream(len(curves), seed)
        if budget_s is not None
        else iter(order if order is not None else range(len(curves)))
    )
    sim = _Simulation(study, curves, scheduler, workers, budget_s, maximize, space)
    sim.hindsight = isinstance(pruner, Hindsight)
    sim.run(queue)
    return sim.out


def as_trials(
    curves: Sequence[Curve], distributions: Mapping[str, BaseDistribution] | None = None
) -> list[FrozenTrial]:
    """Complete curves as the completed trials of an earlier sweep (a few microseconds a
    curve: made afresh for each replay), with their params where ``distributions`` has them."""
    epochs = optuna.distributions.IntDistribution(1, 1 << 20)
    known = distributions or {}
    out = []
    for c in curves:
        if not c.complete:
            continue
        params: dict[str, Any] = {"num_epochs": c.planned}
        dists: dict[str, BaseDistribution] = {"num_epochs": epochs}
        for name, value in c.params.items():
            if name in known and name != "num_epochs":
                params[name], dists[name] = value, known[name]
        out.append(
            optuna.trial.create_trial(
                value=c.values[-1],
                params=params,
                distributions=dists,
                intermediate_values=dict(enumerate(c.values)),
            )
        )
    return out


def distributions_of(*groups: Sequence[Curve]) -> dict[str, BaseDistribution]:
    """A search space the curves' params fit, for a replay that has no sweep file: a number
    ranges from its least to its largest value (on a log scale when that spans 10x or more,
    as learning rates are drawn), anything else is a choice among the values seen; a
    parameter with a value Optuna cannot hold (a list, NaN) is left out."""
    seen: dict[str, list[Any]] = {}
    for curves in groups:
        for c in curves:
            for name, value in c.params.items():
                seen.setdefault(name, []).append(value)
    out: dict[str, BaseDistribution] = {}
    for name, values in seen.items():
        if not all(v is None or isinstance(v, bool | int | float | str) for v in values):
            continue  # not a value Optuna keeps (a list, a mapping): the replay leaves it out
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            continue
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numbers and len(set(values)) > 1:
            low, high = min(values), max(values)
            log = low > 0 and high >= 10 * low
            if all(isinstance(v, int) for v in values):
                out[name] = optuna.distributions.IntDistribution(low, high, log=log)
            else:
                out[name] = optuna.distributions.FloatDistribution(low, high, log=log)
        else:
            unique = sorted(set(map(json.dumps, values)))
            out[name] = optuna.distributions.CategoricalDistribution(
                [json.loads(u) for u in unique]
            )
    return out


def _stream(n: int, seed: int) -> Iterator[int]:
    rng = random.Random(seed)
    while True:
        round_ = list(range(n))
        rng.shuffle(round_)
        yield from round_


class _Simulation:
    """The coordinator's loop on a simulated clock: a free worker continues a paused trial
    the scheduler promotes, else starts the next trial; reports are judged in time order."""

    def __init__(
        self,
        study: optuna.Study,
        curves: Sequence[Curve],
        scheduler: Promotion | None,
        workers: int,
        budget_s: float | None,
        maximize: bool,
        distributions: Mapping[str, BaseDistribution] | None = None,
    ) -> None:
        self.study, self.curves, self.scheduler = study, curves, scheduler
        self.distributions = distributions or {}
        """The space the curves' params are set in on their trials (none: no params)."""
        # The coordinator's own judge of each report, so a replay decides as a sweep does.
        self.referee = Referee(study, "value", pausing=scheduler)
        self.free, self.budget_s, self.maximize = workers, budget_s, maximize
        self.events: list[tuple[float, int, int, int]] = []  # (time, seq, trial, epoch)
        self.curve_of: dict[int, Curve] = {}
        self.trials: dict[int, optuna.Trial] = {}
        self.next_epoch: dict[int, int] = {}
        self.active: set[int] = set()
        """Trials training now (neither paused nor ended)."""
        self.seq = 0
        self.out = Run()
        self.best: float | None = None
        self.hindsight = False
        """Whether each trial is told where its recorded curve ends (``Hindsight``)."""

    def run(self, queue: Iterator[int]) -> None:
        now, exhausted = 0.0, False
        while True:
            exhausted = self._fill(now, queue, exhausted)
            if not self.events:
                break
            now, _, number, epoch = heapq.heappop(self.events)
            if self.budget_s is not None and now > self.budget_s:
                self.out.seconds = self.budget_s
                return  # the budget is spent: what runs now is cut here
            self._report(now, number, epoch)
        self.out.seconds = now
        frozen = self.study.get_trials(deepcopy=False)
        self.out.pruned += len(paused(frozen))  # left at their rungs when the sweep ends

    def _fill(self, now: float, queue: Iterator[int], exhausted: bool) -> bool:
        while self.free > 0:
            if self.budget_s is not None and now >= self.budget_s:
                return True
            if self.scheduler is not None and self._promote(now, exhausted):
                continue
            if exhausted:
                return True
            index = next(queue, None)
            if index is None:
                return True
            self._start(now, index)
        return exhausted

    def _start(self, now: float, index: int) -> None:
        curve = self.curves[index]
        trial = self.study.ask()
        # The pruners read a trial's planned epochs from its params, as in a real sweep.
        trial.suggest_int("num_epochs", curve.planned, curve.planned)
        for name, value in curve.params.items():
            dist = self.distributions.get(name)
            if dist is not None and name != "num_epochs":
                # Its own params, not the sampler's: set as a sampled value would be.
                trial.storage.set_trial_param(
                    trial._trial_id, name, dist.to_internal_repr(value), dist
                )
        if self.hindsight:
            trial.set_user_attr(RECORDED_END, curve.values[-1])
        self.trials[trial.number], self.curve_of[trial.number] = trial, curve
        self.next_epoch[trial.number] = 0
        self.active.add(trial.number)
        self.free -= 1
        self.out.trials += 1
        self._schedule(now + curve.start_s, trial.number)

    def _promote(self, now: float, exhausted: bool) -> bool:
        assert self.scheduler is not None
        moves = self.scheduler.moves(self.study.get_trials(deepcopy=False), self.active, exhausted)
        if not moves:
            return False
        move = moves[0]
        trial = self.trials[move.number]
        for key, value in {**move.attrs, PAUSED: 0}.items():
            trial.set_user_attr(key, value)
        self.active.add(move.number)
        self.free -= 1
        self._schedule(now + self.curve_of[move.number].start_s, move.number)
        return True

    def _schedule(self, at: float, number: int) -> None:
        """The trial's next epoch, or its end where its record ends (censored)."""
        curve, epoch = self.curve_of[number], self.next_epoch[number]
        if epoch >= len(curve.values):
            self._end(number, TrialState.PRUNED, censored=True)
            return
        self.seq += 1
        heapq.heappush(self.events, (at + curve.epoch_s[epoch], self.seq, number, epoch))

    def _report(self, now: float, number: int, epoch: int) -> None:
        trial, curve = self.trials[number], self.curve_of[number]
        value = curve.values[epoch]
        self.out.epochs += 1
        self.next_epoch[number] = epoch + 1
        promoted = (
            promoted_from(self.study.get_trials(deepcopy=False)[number])
            if self.scheduler is not None
            else ()
        )
        verdict = self.referee.judge(trial, epoch, value, curve.planned, promoted)
        if epoch + 1 >= curve.planned:  # its last epoch: it completes, never pruned
            self._complete(now, number, curve.values[-1])
        elif verdict.action == "stop":
            self._end(number, TrialState.PRUNED)
        elif verdict.action == "pause":
            trial.set_user_attr(PAUSED, verdict.rung)
            self.active.discard(number)
            self.free += 1
        else:
            self._schedule(now, number)

    def _complete(self, now: float, number: int, value: float) -> None:
        _tell(self.study, self.trials[number], value)
        self.active.discard(number)
        self.free += 1
        self.out.completed.append(value)
        if self.best is None or (value > self.best if self.maximize else value < self.best):
            self.best = value
            self.out.timeline.append((now, value))

    def _end(self, number: int, state: TrialState, *, censored: bool = False) -> None:
        _tell(self.study, self.trials[number], state=state)
        self.active.discard(number)
        self.free += 1
        self.out.pruned += 1
        self.out.censored += censored


def _tell(
    study: optuna.Study,
    trial: optuna.Trial,
    value: float | None = None,
    state: TrialState | None = None,
) -> None:
    """``study.tell`` without the deep copy of the trial it returns, which was two fifths of
    a replay's time (thousands of trials end in one); Optuna's own tell where that inner
    function is not there."""
    try:
        from optuna.study._tell import _tell_with_warning
    except ImportError:  # pragma: no cover - another Optuna
        study.tell(trial, value, state=state)
        return
    _tell_with_warning(study, trial, value, state)


# -- many seeds, many policies ------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """One policy over many seeds (medians, and the share of seeds that lost the best)."""

    policy: str
    epochs: float
    """Epochs run, median over seeds: the compute."""
    seconds: float
    best: float | None
    lost: float
    """Share of seeds whose best missed the no-pruning best (less the tolerance)."""
    to_best_s: float | None
    """Simulated seconds to the no-pruning best, median over the seeds that reached it."""
    sooner: float
    """The no-pruning sweep's time to its best over this policy's, median over seeds (0 for
    a seed that never reached it)."""
    pruned: float
    censored: float
    anytime: tuple[float | None, ...] = ()
    """An open stream at the no-pruning sweep's compute: the median best found at 1/4, 1/2
    and all of it."""

    def as_json(self) -> dict[str, object]:
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in self.__dict__.items()
        }


ANYTIME = (0.25, 0.5, 1.0)


def compare(
    curves: Sequence[Curve],
    policies: dict[str, ReplayPolicy],
    *,
    maximize: bool = True,
    workers: int = 1,
    seeds: int = 1,
    tolerance: float = 0.0,
    anytime: bool = True,
    processes: int | None = None,
    study_name: str = "replay",
    calibration: Sequence[Curve] = (),
) -> list[Summary]:
    """Every policy over ``seeds`` orders of the same trials (seed 0: the recorded order),
    against the sweep without early termination; with ``anytime``, also an open stream at
    that sweep's compute. Policies are replayed in ``processes`` processes (default: one
    per CPU; each replay is pure Python, so threads would not help); ``calibration``: an
    earlier sweep's curves for the forecast's margin (see ``replay``)."""
    none = EarlyTermination("none")
    orders = [list(range(len(curves)))]
    for seed in range(1, seeds):
        shuffled = list(range(len(curves)))
        random.Random(seed).shuffle(shuffled)
        orders.append(shuffled)
    baselines = [
        replay(curves, none, maximize=maximize, workers=workers, order=order, study_name=study_name)
        for order in orders
    ]
    options = (maximize, workers, anytime, study_name)
    # One job per policy and seed: policies differ several times over in cost, and a job per
    # policy left a process idle while another finished the dear ones.
    jobs = [
        (policy, order, base.seconds, seed, options)
        for policy in policies.values()
        for seed, (order, base) in enumerate(zip(orders, baselines, strict=True))
    ]
    processes = min(processes or os.cpu_count() or 1, len(jobs))
    if processes <= 1:
        _use_curves(curves, calibration)
        done = [_one_seed(*job) for job in jobs]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Forked: the workers need nothing imported again (a spawned one pays ~2 s for it);
        # the curves travel once to each process, not with every job.
        with ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_use_curves,
            initargs=(curves, calibration),
        ) as pool:
            done = list(pool.map(_one_seed, *zip(*jobs, strict=True)))
    out = []
    for i, name in enumerate(policies):
        mine = done[i * len(orders) : (i + 1) * len(orders)]
        runs = [run or base for (run, _), base in zip(mine, baselines, strict=True)]
        streams = [stream for _, stream in mine if stream is not None]
        out.append(_summarise(name, runs, streams, baselines, maximize, tolerance))
    return out


_CURVES: Sequence[Curve] = ()
"""The curves a process of ``compare`` replays."""
_CALIBRATION: Sequence[Curve] = ()
"""The earlier sweep's curves its forecasts calibrate on."""


def _use_curves(curves: Sequence[Curve], calibration: Sequence[Curve]) -> None:
    global _CURVES, _CALIBRATION
    _CURVES, _CALIBRATION = curves, calibration


def _one_seed(
    policy: ReplayPolicy,
    order: list[int],
    base_seconds: float,
    seed: int,
    options: tuple[bool, int, bool, str],
) -> tuple[Run | None, tuple[float | None, ...] | None]:
    """One policy in one order (none for no policy: that is the baseline), and its open
    stream at the baseline's compute (with ``anytime``)."""
    maximize, workers, anytime, study_name = options
    run = None
    if policy != EarlyTermination("none"):
        run = replay(
            _CURVES,
            policy,
            maximize=maximize,
            workers=workers,
            order=order,
            study_name=study_name,
            calibration=_CALIBRATION,
        )
    stream = None
    if anytime:
        opened = replay(
            _CURVES,
            policy,
            maximize=maximize,
            workers=workers,
            budget_s=base_seconds,
            seed=seed,
            study_name=study_name,
            calibration=_CALIBRATION,
        )
        stream = tuple(opened.best_at(base_seconds * f, maximize) for f in ANYTIME)
    return run, stream


def _summarise(
    name: str,
    runs: list[Run],
    streams: list[tuple[float | None, ...]],
    baselines: list[Run],
    maximize: bool,
    tolerance: float,
) -> Summary:
    """One policy over every order, measured against the no-pruning runs of each."""
    lost, reached, ratios = 0, [], []
    for run, base in zip(runs, baselines, strict=True):
        target = base.best(maximize)
        if target is None:
            continue
        goal = target - tolerance if maximize else target + tolerance
        at, base_at = run.reached(goal, maximize), base.reached(goal, maximize)
        lost += at is None
        if at is not None:
            reached.append(at)
        ratios.append(base_at / at if at and base_at else (1.0 if at == base_at else 0.0))
    bests = [b for b in (r.best(maximize) for r in runs) if b is not None]
    return Summary(
        name,
        _median([r.epochs for r in runs]),
        _median([r.seconds for r in runs]),
        _median(bests) if bests else None,
        lost / len(runs),
        _median(reached) if reached else None,
        _median(ratios) if ratios else 0.0,
        _median([r.pruned for r in runs]),
        _median([r.censored for r in runs]),
        tuple(_median_or_none([s[i] for s in streams]) for i in range(len(ANYTIME)))
        if streams
        else (),
    )


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return float(ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2)


def _median_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return _median(known) if len(known) * 2 >= len(values) and known else None
