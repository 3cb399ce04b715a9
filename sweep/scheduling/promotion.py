"""Promotion-based ASHA (``early_termination: {type: asha, mode: promotion}``).

A trial pauses when it has trained a rung's epochs (``min_resource * reduction_factor**k``,
counted from 1, below its last epoch) and frees its worker. When a worker is free, the
scheduler promotes first (from the highest rung down: a paused trial among the best
``n // reduction_factor`` of the ``n`` trials that reached that rung, not promoted from it
before), and starts a new trial only when no one can be promoted, as in the ASHA paper's
``get_job`` (Li et al. 2020) and Syne Tune's ``type="promotion"``. A promoted trial continues
from its checkpoint: no epoch runs twice. What is left paused when nothing can run any more
is pruned where it stopped.

The state lives in the study: a rung's values are the trial's reports there, and two
attributes say where a trial is paused and which rungs it was promoted from, so ``resume``
after a crash goes on where the sweep was.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from optuna.trial import FrozenTrial, TrialState

from search_spaces.policies import Asha, Forecast, Hyperband, Policy
from sweep.records.trial_attrs import PROMOTED, promoted_from
from sweep.scheduling.finished_trials import FinishedTrials
from sweep.scheduling.pareto import (
    ParetoRungs,
    hyperband_brackets,
    ranked,
    values_at,
    violation_at,
)
from sweep.scheduling.pausing import Move, paused
from sweep.scheduling.pruners import ForecastJudge, completed_with_curves, horizon_of
from sweep.scheduling.rung_ledger import RungLedger


@dataclass(frozen=True)
class Promotion:
    """Promotion ASHA, or Hyperband's brackets of it (``brackets`` > 1)."""

    min_resource: int
    reduction_factor: int
    first_rung: int
    """The stopping rate: a bracket's rungs start at min_resource * eta**first_rung."""
    max_resource: int | None
    maximize: bool
    brackets: int = 1
    forecast: ForecastJudge | None = field(default=None, compare=False)
    """``early_termination: {type: forecast, mode: promotion}``: a paused trial is promoted
    unless its forecast, with the sweep's margin, cannot reach the best finished value
    (no quota: the forecast, not its rank at the rung, decides), so slow starters go on."""
    epochs: int | None = None
    """The epochs a trial trains when its params do not say (the forecast's horizon)."""
    pareto: ParetoRungs | None = field(default=None, compare=False)
    """Several objectives: the trials at a rung are ranked by Pareto front (constraints
    first, ties by crowding distance; ``sweep.scheduling.pareto``) instead of by one value.
    Only its objectives' directions and constraints are read."""
    _ledger: RungLedger = field(default_factory=lambda: RungLedger(), compare=False, repr=False)
    _finished: FinishedTrials = field(default_factory=FinishedTrials, compare=False, repr=False)
    _done: list[FrozenTrial] = field(default_factory=list, compare=False, repr=False)
    """The completed trials, as they complete (the forecast's history)."""
    _hopeless: dict[tuple[int, int, int], str | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    """(trial, epochs it trained, completed trials) -> why its forecast cannot reach the best
    (None: it can)."""

    @classmethod
    def of(
        cls,
        policy: Policy,
        maximize: bool,
        epochs: int | None,
        pareto: ParetoRungs | None = None,
    ) -> Promotion | None:
        """The scheduler for a policy in ``mode: promotion``; None for any other policy.
        ``epochs``: the trainer's num_epochs when the file fixes it (Hyperband's brackets
        need the longest a trial trains); ``pareto``: several objectives' ranking."""
        if isinstance(policy, Asha) and policy.mode == "promotion":
            return cls(
                policy.min_resource,
                policy.reduction_factor,
                policy.min_early_stopping_rate,
                policy.max_resource,
                maximize,
                pareto=pareto,
            )
        if isinstance(policy, Hyperband) and policy.mode == "promotion":
            longest = policy.max_resource or epochs
            brackets = hyperband_brackets(policy.min_resource, policy.reduction_factor, longest)
            return cls(
                policy.min_resource,
                policy.reduction_factor,
                0,
                longest,
                maximize,
                brackets,
                pareto=pareto,
            )
        if isinstance(policy, Forecast) and policy.mode == "promotion":
            return cls(
                policy.min_resource,
                policy.reduction_factor,
                0,
                None,
                maximize,
                forecast=ForecastJudge(**policy.stopping()),
                epochs=epochs,
            )
        return None

    def bracket_of(self, number: int) -> int:
        """Trials are dealt to the brackets in turn, the most aggressive first."""
        return number % self.brackets

    def rungs(self, last: int | None, bracket: int = 0, up_to: int = 10_000) -> list[int]:
        """Rung levels in epochs trained, below ``last`` (a trial's final epoch count)."""
        levels: list[int] = []
        level = self.min_resource * self.reduction_factor ** (self.first_rung + bracket)
        ceiling = self.max_resource or last
        while level < (ceiling if ceiling is not None else up_to):
            levels.append(level)
            level *= self.reduction_factor
        return levels

    def last_epoch(self, asked: int | None) -> int | None:
        """The epochs a trial trains at most: max_resource, else its own num_epochs."""
        return self.max_resource or asked

    def pauses_at(
        self, number: int, trained: int, asked: int | None, promoted: Sequence[int]
    ) -> bool:
        """Whether trial ``number``, having trained ``trained`` epochs, waits at a rung now."""
        rungs = self.rungs(self.last_epoch(asked), self.bracket_of(number))
        return trained in rungs and trained not in promoted

    def boundaries(self, number: int, asked: int | None) -> list[int]:
        return self.rungs(self.last_epoch(asked), self.bracket_of(number))

    def moves(
        self, trials: Sequence[FrozenTrial], active: Collection[int], launched_all: bool
    ) -> list[Move]:
        """One promotion at a time, whenever a worker is free (new trials only when no one
        can be promoted)."""
        picked = self.pick(trials, active)
        if picked is None:
            return []
        number, rung = picked
        return [
            Move(
                number,
                f"promoted from the rung at {rung} epochs",
                {PROMOTED: [*promoted_from(trials[number]), rung]},
            )
        ]

    def why_left(self, rung: int) -> str:
        if self.pareto is not None:
            return (
                f"paused at {rung} epochs and not promoted: not in the first "
                f"1/{self.reduction_factor} of the trials that reached that rung by Pareto rank"
            )
        if self.forecast is not None:
            return (
                f"paused at {rung} epochs and not promoted: its forecast could not reach the best"
            )
        return (
            f"paused at {rung} epochs and not promoted: not in the top "
            f"1/{self.reduction_factor} of the trials that reached that rung"
        )

    def pick(
        self, trials: Sequence[FrozenTrial], active: Collection[int] = ()
    ) -> tuple[int, int] | None:
        """(trial number, rung) of the trial to promote now, if any: the highest rung first,
        the best there first; each bracket ranks its own trials. Trials in ``active`` (running
        now) are left out of everything, as if absent."""
        if self.pareto is not None:
            return self._pick_by_pareto(trials, active)
        ledger = self._ledger
        ledger.update(trials, self.bracket_of)
        if self.forecast is not None:  # one bracket
            new, _ = self._finished.update(list(trials))
            self._done.extend(completed_with_curves(new))
            waiting = ledger.waiting(0, active)
            return self._pick_by_forecast(trials, waiting) if waiting else None
        for bracket in range(self.brackets):
            waiting = ledger.waiting(bracket, active)
            for rung in sorted(set(waiting.values()), reverse=True):
                reached = ledger.reached(bracket, rung, active)
                if self.maximize:
                    reached.reverse()  # best first (as sorting (value, number) descending)
                quota = len(reached) // self.reduction_factor
                # At most n // eta of the n trials that reached a rung ever leave it: a trial
                # promoted early, while few had arrived, counts against the quota for good.
                if ledger.spent(bracket, rung, active) >= quota:
                    continue
                for _, number in reached[:quota]:
                    if waiting.get(number) == rung:
                        return number, rung
        return None

    def _pick_by_pareto(
        self, trials: Sequence[FrozenTrial], active: Collection[int]
    ) -> tuple[int, int] | None:
        """``pick`` for several objectives: the trials that reached a rung ranked by Pareto
        front (their values there, in trial attributes: Optuna keeps no per-epoch values
        for them). Reads every trial at each decision: sweeps of several objectives are
        small, and a replay does not run them."""
        assert self.pareto is not None
        waiting = {n: rung for n, rung in paused(trials).items() if n not in active}
        for bracket in range(self.brackets):
            here = {n: r for n, r in waiting.items() if self.bracket_of(n) == bracket}
            for rung in sorted(set(here.values()), reverse=True):
                reached = [
                    (t, p)
                    for t in trials
                    if self.bracket_of(t.number) == bracket
                    and t.number not in active
                    and t.state != TrialState.FAIL
                    and (p := values_at(t, rung - 1)) is not None
                ]
                quota = len(reached) // self.reduction_factor
                if sum(rung in promoted_from(t) for t, _ in reached) >= quota:
                    continue
                keys = ranked(
                    [p for _, p in reached],
                    self.pareto.maximize,
                    [violation_at(t, rung - 1) for t, _ in reached],
                )
                order = sorted(range(len(reached)), key=lambda i: (keys[i], reached[i][0].number))
                for i in order[:quota]:
                    if here.get(reached[i][0].number) == rung:
                        return reached[i][0].number, rung
        return None

    def _pick_by_forecast(
        self, trials: Sequence[FrozenTrial], waiting: dict[int, int]
    ) -> tuple[int, int] | None:
        """The first paused trial (highest rung first) that can still reach the best."""
        assert self.forecast is not None
        done = self._done
        for number, rung in sorted(waiting.items(), key=lambda item: (-item[1], item[0])):
            trial = trials[number]
            # Judged again only when it trained more or another trial completed (the best
            # and the margin moved).
            series = [v for _, v in sorted(trial.intermediate_values.items())]
            key = (number, len(series), len(done))
            if key not in self._hopeless:
                horizon = horizon_of(trial, self.max_resource or self.epochs, done)
                self._hopeless[key] = self.forecast.hopeless(
                    series, horizon, done, self.maximize, trial.params
                )
            if self._hopeless[key] is None:
                return number, rung
        return None
