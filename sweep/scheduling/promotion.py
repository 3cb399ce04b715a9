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

import bisect
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from optuna.trial import FrozenTrial, TrialState

from search_spaces.policies import Asha, Forecast, Hyperband, Policy
from sweep.records.trial_attrs import PAUSED, PROMOTED, paused_at, promoted_from
from sweep.scheduling.pausing import Move
from sweep.scheduling.pruners import (
    FinishedTrials,
    ForecastJudge,
    completed_with_curves,
    horizon_of,
)


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
    _ledger: _Ledger = field(default_factory=lambda: _Ledger(), compare=False, repr=False)
    _finished: FinishedTrials = field(default_factory=FinishedTrials, compare=False, repr=False)
    _done: list[FrozenTrial] = field(default_factory=list, compare=False, repr=False)
    """The completed trials, as they complete (the forecast's history)."""
    _hopeless: dict[tuple[int, int, int], str | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    """(trial, epochs it trained, completed trials) -> why its forecast cannot reach the best
    (None: it can)."""

    @classmethod
    def of(cls, policy: Policy, maximize: bool, epochs: int | None) -> Promotion | None:
        """The scheduler for a policy in ``mode: promotion``; None for any other policy.
        ``epochs``: the trainer's num_epochs when the file fixes it (Hyperband's brackets
        need the longest a trial trains)."""
        if isinstance(policy, Asha) and policy.mode == "promotion":
            return cls(
                policy.min_resource,
                policy.reduction_factor,
                policy.min_early_stopping_rate,
                policy.max_resource,
                maximize,
            )
        if isinstance(policy, Hyperband) and policy.mode == "promotion":
            longest = policy.max_resource or epochs
            brackets = 1
            if longest is not None:
                while policy.min_resource * policy.reduction_factor**brackets < longest:
                    brackets += 1
            return cls(policy.min_resource, policy.reduction_factor, 0, longest, maximize, brackets)
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
        ledger = self._ledger
        ledger.update(trials, self)
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
                self._hopeless[key] = self.forecast.hopeless(series, horizon, done, self.maximize)
            if self._hopeless[key] is None:
                return number, rung
        return None


def _signature(t: FrozenTrial) -> tuple[object, ...]:
    """What changes when a trial changes in a way promotion reads: its state, a report (they
    are only ever added), where it pauses, a rung it left (they are only ever added)."""
    return (
        t.state,
        len(t.intermediate_values),
        t.user_attrs.get(PAUSED),
        len(t.user_attrs.get(PROMOTED, ())),
    )


@dataclass(frozen=True)
class _Seen:
    """A trial as promotion last read it (a copy: Optuna's live trial handles change the
    object they were made from in place, so an old object is no record of what it said)."""

    number: int
    signature: tuple[object, ...]
    waiting: bool
    values: dict[int, float]
    paused: int
    promoted: tuple[int, ...]

    @classmethod
    def of(cls, t: FrozenTrial) -> _Seen:
        return cls(
            t.number,
            _signature(t),
            t.state == TrialState.WAITING,
            dict(t.intermediate_values),
            paused_at(t) if t.state == TrialState.RUNNING else 0,
            tuple(promoted_from(t)),
        )


class _Ledger:
    """What promotion reads of the trials, kept up to date as they change: per bracket and
    rung, the trials' values there (sorted) and who was promoted from it; who waits where.

    A finished trial never changes (Optuna refuses to), and a running one is read again only
    when the storage hands out a new object for it (Optuna's storages copy a trial to change
    it: in-memory, journal, and RDB, which builds new objects at every read) and its
    signature moved; a decision then costs a glance at the running and paused trials, not a
    pass over the whole sweep (a replay decides thousands of times). What it said is kept
    as a copy (``_Seen``): the object it was read from may change after the storage let go
    of it."""

    def __init__(self) -> None:
        self._promotion: Promotion | None = None
        self._seen: dict[int, _Seen] = {}
        """Trial number -> what it said when last read."""
        self._count = 0
        """How many of the study's trials were read (positions never move)."""
        self._open: set[int] = set()
        """Positions of trials not finished when last read."""
        self._objects: list[FrozenTrial | None] = []
        """The object last read at each position."""
        self._reached: dict[tuple[int, int], list[tuple[float, int]]] = {}
        """(bracket, rung) -> every trial's (value there, number), sorted."""
        self._spent: dict[tuple[int, int], set[int]] = {}
        """(bracket, rung) -> the trials promoted from it."""
        self._waiting: dict[int, dict[int, int]] = {}
        """Bracket -> trial number -> the rung where it is paused."""

    def update(self, trials: Sequence[FrozenTrial], promotion: Promotion) -> None:
        self._promotion = promotion
        self._objects.extend([None] * (len(trials) - len(self._objects)))
        self._open.update(range(self._count, len(trials)))
        self._count = len(trials)
        for i in list(self._open):
            t = trials[i]
            if t is self._objects[i]:
                continue  # Optuna's storages put a changed trial in a new object
            self._objects[i] = t
            old = self._seen.get(t.number)
            if old is None or old.signature != _signature(t):
                if old is not None:
                    self._take(old, -1)
                self._seen[t.number] = seen = _Seen.of(t)
                self._take(seen, +1)
            if t.state.is_finished():
                self._open.discard(i)

    def _bracket(self, number: int) -> int:
        assert self._promotion is not None
        return self._promotion.bracket_of(number)

    def _take(self, seen: _Seen, sign: int) -> None:
        """Adds (sign +1) or takes away (-1) what a trial said."""
        bracket = self._bracket(seen.number)
        for (b, rung), found in self._reached.items():
            if b == bracket:
                self._index(seen, rung, found, self._spent[b, rung], sign)
        if sign > 0 and seen.paused:
            self._waiting.setdefault(bracket, {})[seen.number] = seen.paused
        elif sign < 0:
            self._waiting.get(bracket, {}).pop(seen.number, None)

    @staticmethod
    def _entry(seen: _Seen, rung: int) -> tuple[float, int] | None:
        if rung - 1 in seen.values and not seen.waiting:
            return (seen.values[rung - 1], seen.number)
        return None

    def _index(
        self, seen: _Seen, rung: int, found: list[tuple[float, int]], spent: set[int], sign: int
    ) -> None:
        entry = self._entry(seen, rung)
        if entry is not None:
            if sign > 0:
                bisect.insort(found, entry)
            else:
                del found[bisect.bisect_left(found, entry)]
        if rung in seen.promoted:
            (spent.add if sign > 0 else spent.discard)(seen.number)

    def _build(self, bracket: int, rung: int) -> tuple[list[tuple[float, int]], set[int]]:
        if (bracket, rung) not in self._reached:
            found: list[tuple[float, int]] = []
            spent: set[int] = set()
            for seen in self._seen.values():
                if self._bracket(seen.number) == bracket:
                    self._index(seen, rung, found, spent, +1)
            self._reached[bracket, rung], self._spent[bracket, rung] = found, spent
        return self._reached[bracket, rung], self._spent[bracket, rung]

    def waiting(self, bracket: int, leave_out: Collection[int]) -> dict[int, int]:
        """The bracket's paused trials and their rungs, but ``leave_out`` (not to be
        changed: it is the ledger's own when nothing is left out)."""
        waiting = self._waiting.get(bracket, {})
        if any(n in waiting for n in leave_out):
            return {n: rung for n, rung in waiting.items() if n not in leave_out}
        return waiting

    def reached(
        self, bracket: int, rung: int, leave_out: Collection[int]
    ) -> list[tuple[float, int]]:
        """(value at the rung, number) of the bracket's trials that reached it, ascending,
        but ``leave_out``."""
        found = list(self._build(bracket, rung)[0])
        for n in leave_out:
            seen = self._seen.get(n)
            entry = self._entry(seen, rung) if seen is not None else None
            if entry is not None and self._bracket(n) == bracket:
                del found[bisect.bisect_left(found, entry)]
        return found

    def spent(self, bracket: int, rung: int, leave_out: Collection[int]) -> int:
        """How many of the bracket's trials were promoted from the rung, but ``leave_out``."""
        spent = self._build(bracket, rung)[1]
        return len(spent) - sum(1 for n in leave_out if n in spent)
