"""Population-based training (``sampling_algorithm: {type: pbt, ...}``; Jaderberg et al.
2017), in synchronous generations, or asynchronously (``synchronous: false``).

A member is one trial for its whole life; the first population is spread over the search
space, one member a stratum of each parameter's range (``coordination/first_population.py``,
a Latin hypercube: a random draw of 8 can start in one corner and lose the run). Every
``perturbation_interval`` epochs each member pauses (its worker goes to another member: a
population larger than the slots takes turns). When every member has reached the boundary,
the bottom ``quantile`` of them by the objective copy the checkpoint of a member picked at
random from the top ``quantile`` (exploit) and continue with that member's params moved to
nearby values (explore, ``search_spaces.explore``); all of them then continue. Synchronous
generations (Ray Tune's ``synch=True``) compare members at the same epoch, so a copy never
moves a member's epoch count and its history stays one curve.

Asynchronously, a member that reaches a boundary is ranked at once among the members that
reached it too (by their values there), and in the bottom quantile copies a top member that
is still training: its latest committed checkpoint, at that member's epoch when it is further
on (the receiver's history then takes the donor's reports up to there, and its lineage entry
says ``continued_at``). No one waits for the slowest member.

What a generation decided is kept in the trials' attributes: ``overrides`` (the params it trains
with now) and ``lineage`` (per copy: the epochs trained, the donor, the new params), from which
the trials frame (``sweep.records.trials_table``) rebuilds each member's params over epochs. A
crash in the middle of a generation repeats it with the same random draws (seeded by the sweep's
seed and the generation), and writing a copy twice changes nothing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from search_spaces import SweepConfig
from search_spaces.explore import explore
from search_spaces.expressions import Expression
from search_spaces.optuna_form import OptunaSpace
from search_spaces.samplers import Pbt
from sweep.records.trial_attrs import LINEAGE, OVERRIDES, current_params, paused_at
from sweep.scheduling.pausing import Move, paused


@dataclass(frozen=True)
class Population:
    settings: Pbt
    space: Mapping[str, Expression]
    decode: Callable[[Mapping[str, Any]], dict[str, Any]]
    maximize: bool

    @classmethod
    def of(cls, config: SweepConfig, space: OptunaSpace) -> Population:
        algorithm = config.sampling_algorithm
        return cls(
            Pbt(seed=algorithm.seed, **algorithm.options),
            config.search_space,
            space.decode,
            config.maximize,
        )

    def pauses_at(
        self, number: int, trained: int, asked: int | None, promoted: Sequence[int]
    ) -> bool:
        last = asked if asked is not None else math.inf
        return trained % self.settings.perturbation_interval == 0 and trained < last

    def boundaries(self, number: int, asked: int | None) -> list[int]:
        interval = self.settings.perturbation_interval
        return list(range(interval, asked, interval)) if asked is not None else []

    def moves(
        self, trials: Sequence[FrozenTrial], active: Collection[int], launched_all: bool
    ) -> list[Move]:
        """A whole generation at once, when every member waits at a boundary (or, with
        ``synchronous: false``, each waiting member at once)."""
        if not self.settings.synchronous:
            return self._each_at_once(trials, active, launched_all)
        if not launched_all or active:
            return []
        if any(t.state == TrialState.RUNNING and not paused_at(t) for t in trials):
            return []  # one waits to continue after a crash: it reaches the boundary first
        waiting = paused(trials)
        if not waiting:
            return []
        boundary = min(waiting.values())
        members = [t for t in trials if waiting.get(t.number) == boundary]
        ranked = sorted(
            members, key=lambda t: t.intermediate_values[boundary - 1], reverse=self.maximize
        )
        k = min(math.ceil(len(ranked) * self.settings.quantile), len(ranked) // 2)
        top, bottom = ranked[:k], ranked[len(ranked) - k :] if k else []
        rng = random.Random(f"{self.settings.seed}:{boundary}")
        moves = [
            self._exploit(member, rng.choice(top), boundary, rng)
            for member in sorted(bottom, key=lambda t: t.number)
        ]
        copied = {m.number for m in moves}
        moves += [
            Move(t.number, f"next generation after {boundary} epochs")
            for t in members
            if t.number not in copied
        ]
        return moves

    def _exploit(
        self, member: FrozenTrial, donor: FrozenTrial, boundary: int, rng: random.Random
    ) -> Move:
        """``member`` continues from ``donor``'s checkpoint with its params explored."""
        params = explore(
            self.space,
            current_params(donor, self.decode),
            rng,
            self.settings.perturbation_factors,
            self.settings.resample_probability,
        )
        searched = {k: v for k, v in params.items() if k in self.space}
        lineage = [
            e for e in member.user_attrs.get(LINEAGE, []) if int(e["epoch"]) < boundary
        ]  # a decision repeated after a crash
        lineage.append({"epoch": boundary, "from": donor.number, "params": searched})
        return Move(
            member.number,
            f"copied trial {donor.number}'s checkpoint at {boundary} epochs and explored its "
            "params",
            {OVERRIDES: searched, LINEAGE: lineage},
            donor=donor.number,
        )

    def _each_at_once(
        self, trials: Sequence[FrozenTrial], active: Collection[int], launched_all: bool
    ) -> list[Move]:
        """Asynchronous PBT: each member waiting at a boundary is ranked at once among the
        members that reached that boundary too (their values there: the same epoch for all),
        and, in the bottom quantile, copies a top member that is still training; no one
        waits for the slowest. Members not started yet go first (else the first ones would
        run to their end alone); then the laggards first."""
        if not launched_all:
            return []
        waiting = {n: b for n, b in paused(trials).items() if n not in active}
        moves = []
        for number, boundary in sorted(waiting.items(), key=lambda item: (item[1], item[0])):
            step = boundary - 1
            there = [
                t for t in trials if t.state != TrialState.FAIL and step in t.intermediate_values
            ]
            ranked = sorted(there, key=lambda t: t.intermediate_values[step], reverse=self.maximize)
            k = min(math.ceil(len(ranked) * self.settings.quantile), len(ranked) // 2)
            bottom = {t.number for t in ranked[len(ranked) - k :]} if k else set()
            # A donor that still trains: its checkpoint is there, and not at its last epoch.
            # Not one that copied another at its own epoch and has not trained since: its
            # checkpoint is the other's while its history stays its own, so a copy of it
            # would start from a state its reports do not describe.
            top = [t for t in ranked[:k] if t.state == TrialState.RUNNING and not _holds_a_copy(t)]
            if number in bottom and top:
                rng = random.Random(f"{self.settings.seed}:{number}:{boundary}")
                moves.append(self._exploit(trials[number], rng.choice(top), boundary, rng))
            else:
                moves.append(Move(number, f"went on after {boundary} epochs"))
        return moves

    def why_left(self, rung: int) -> str:
        return f"stopped at {rung} epochs: the sweep ended before its next generation"


def _holds_a_copy(trial: FrozenTrial) -> bool:
    """Whether ``trial`` copied a donor's checkpoint and has reported no epoch since."""
    lineage = trial.user_attrs.get(LINEAGE) or []
    if not lineage:
        return False
    last = lineage[-1]
    since = int(last.get("continued_at", last["epoch"]))
    return max(trial.intermediate_values, default=-1) < since
