"""What promotion (``sweep.scheduling.promotion``) reads of a sweep's trials, kept up to date
as they change rather than read whole at every decision: per bracket and rung, the trials'
values there (sorted) and who was promoted from it, and who waits where."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

from sweep.records.trial_attrs import PAUSED, PROMOTED, paused_at, promoted_from


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


class RungLedger:
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
        self._bracket: Callable[[int], int] = lambda number: 0
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

    def update(self, trials: Sequence[FrozenTrial], bracket_of: Callable[[int], int]) -> None:
        """Reads what changed since the last call; ``bracket_of``: a trial's bracket."""
        self._bracket = bracket_of
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
