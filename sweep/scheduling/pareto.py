"""Early termination for several objectives: trials ranked by Pareto front.

A study of several objectives keeps no per-epoch values in Optuna, so no pruner of Optuna's
(nor Azure ML's, nor Ray Tune's) can stop one of its trials. Here every report of such a
trial carries each objective's value (the trainer reports them per epoch; the built-in one
measures its deployment costs after its first epoch, since they depend on the architecture,
not the weights), kept in a trial attribute per epoch. Where a rule judges (ASHA's rungs,
``min_resource * reduction_factor**k`` epochs trained; Hyperband's, per bracket; median
stopping's and truncation selection's evaluation intervals), the trials that reported there
are ranked by non-dominated sorting of their values (the first front, then the front of
what is left, ...), ties within a front broken by crowding distance (NSGA-II's: points at
the ends of a front, and where it is sparse, first), and a trial goes on when it is among
the first ``kept(n)`` of the ``n`` (a trial tied with the last of those goes on too):
``max(1, n // reduction_factor)`` at a rung, half for median stopping, all but the
percentage for truncation. ``min_early_stopping_rate`` shifts the first rung, as in ASHA.
Promotion (``sweep.scheduling.promotion``) ranks the paused trials at a rung the same way.

With ``constraints``, a report's violation (the sum of how far it breaks each constraint
whose metric it carries) is kept beside its values, and infeasible trials rank after every
feasible one, the least broken first (NSGA-II's constrained domination); a constraint on a
metric the reports do not carry (one known only at the end) is not judged at rungs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

from search_spaces.objectives import Constraint

VALUES_AT = "objectives_at_"
"""Trial attribute prefix: ``objectives_at_E`` holds the objectives' values reported at
epoch E (from 0)."""
VIOLATION_AT = "violation_at_"
"""Trial attribute prefix: ``violation_at_E``, how far the report of epoch E broke the
constraints (0 when it met them; absent without constraints)."""

Point = tuple[float, ...]


def dominates(a: Point, b: Point, maximize: Sequence[bool]) -> bool:
    """Whether ``a`` is at least as good as ``b`` in every objective and better in one."""
    better = False
    for x, y, up in zip(a, b, maximize, strict=True):
        if (x < y) if up else (x > y):
            return False
        better = better or ((x > y) if up else (x < y))
    return better


def front_ranks(points: Sequence[Point], maximize: Sequence[bool]) -> list[int]:
    """Each point's front: 0 for the non-dominated ones, 1 for those non-dominated once the
    first front is set aside, and so on (equal points share a front)."""
    n = len(points)
    beaten_by = [0] * n
    beats: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j], maximize):
                beats[i].append(j)
                beaten_by[j] += 1
            elif dominates(points[j], points[i], maximize):
                beats[j].append(i)
                beaten_by[i] += 1
    ranks = [0] * n
    front = [i for i in range(n) if beaten_by[i] == 0]
    rank = 0
    while front:
        following = []
        for i in front:
            ranks[i] = rank
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    following.append(j)
        front, rank = following, rank + 1
    return ranks


def crowding(points: Sequence[Point]) -> list[float]:
    """NSGA-II's crowding distance of each point within its own front (``points`` are one
    front): the ends of each objective's range are infinitely far, the others the sum over
    objectives of their neighbours' gap over the range."""
    n = len(points)
    if n <= 2:
        return [math.inf] * n
    distance = [0.0] * n
    for m in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][m])
        low, high = points[order[0]][m], points[order[-1]][m]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low:
            continue
        for k in range(1, n - 1):
            distance[order[k]] += (points[order[k + 1]][m] - points[order[k - 1]][m]) / (high - low)
    return distance


def ranked(
    points: Sequence[Point], maximize: Sequence[bool], violations: Sequence[float] | None = None
) -> list[tuple[float, int, float]]:
    """Each point's (violation, front, -crowding): smaller is better. Feasible points
    (violation 0) are sorted into fronts among themselves; infeasible ones come after, the
    least broken first."""
    broken = list(violations) if violations is not None else [0.0] * len(points)
    feasible = [i for i, v in enumerate(broken) if v <= 0]
    ranks = front_ranks([points[i] for i in feasible], maximize)
    out: list[tuple[float, int, float]] = [(v, 0, 0.0) for v in broken]
    for rank in set(ranks):
        members = [feasible[k] for k, r in enumerate(ranks) if r == rank]
        for i, d in zip(members, crowding([points[i] for i in members]), strict=True):
            out[i] = (0.0, rank, -d)
    return out


def values_at(trial: FrozenTrial, epoch: int) -> Point | None:
    found = trial.user_attrs.get(f"{VALUES_AT}{epoch}")
    return tuple(float(v) for v in found) if isinstance(found, list) else None


def violation_at(trial: FrozenTrial, epoch: int) -> float:
    return float(trial.user_attrs.get(f"{VIOLATION_AT}{epoch}", 0.0))


def violation(constraints: Sequence[Constraint], metrics: Mapping[str, object]) -> float:
    """How far ``metrics`` break the constraints whose metric they carry (0: they meet
    them)."""
    total = 0.0
    for c in constraints:
        value = metrics.get(c.metric)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            total += max(c.violation(float(value)), 0.0)
    return total


def behind(
    number: int,
    trained: int,
    mine: Point,
    broken: float,
    peers: Sequence[FrozenTrial],
    maximize: Sequence[bool],
    kept_of: Callable[[int], int],
) -> str | None:
    """Why trial ``number`` (at ``mine`` after ``trained`` epochs, breaking the constraints
    by ``broken``) is not among the first ``kept_of(n)`` of the ``n`` trials of ``peers``
    (itself included) that reported every objective there, by (violation, front,
    -crowding); None when it is (a trial tied with the last of those is too)."""
    others = [
        (t, p)
        for t in peers
        if t.number != number
        and t.state != TrialState.FAIL
        and (p := values_at(t, trained - 1)) is not None
    ]
    points = [mine] + [p for _, p in others]
    violations = [broken] + [violation_at(t, trained - 1) for t, _ in others]
    keys = ranked(points, maximize, violations)
    kept = min(max(1, kept_of(len(points))), len(points))
    cutoff = sorted(keys)[kept - 1]
    if keys[0] <= cutoff:
        return None
    where = "infeasible" if broken > 0 else f"front {keys[0][1] + 1}"
    return (
        f"{where} at {trained} epochs: not in the first {kept} of the "
        f"{len(points)} trials there by Pareto rank"
    )


def hyperband_brackets(min_resource: int, reduction_factor: int, longest: int | None) -> int:
    """How many brackets Hyperband runs: one per rung level below the longest a trial
    trains (one when that is not known)."""
    brackets = 1
    if longest is not None:
        while min_resource * reduction_factor**brackets < longest:
            brackets += 1
    return brackets


@dataclass(frozen=True)
class ParetoRungs:
    """ASHA's stopping rule on several objectives (see the module's docstring); with
    ``brackets`` > 1, Hyperband's: trials are dealt to the brackets in turn (trial number
    modulo brackets, the most aggressive first), bracket b's rungs start b levels later,
    and a trial is ranked among its own bracket's only."""

    maximize: tuple[bool, ...]
    min_resource: int = 1
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0
    constraints: tuple[Constraint, ...] = ()
    brackets: int = 1

    def bracket_of(self, number: int) -> int:
        return number % self.brackets

    def is_rung(self, trained: int, bracket: int = 0) -> bool:
        level = self.min_resource * self.reduction_factor ** (
            self.min_early_stopping_rate + bracket
        )
        while level < trained:
            level *= self.reduction_factor
        return level == trained

    def hopeless(
        self,
        number: int,
        trained: int,
        mine: Point,
        trials: Sequence[FrozenTrial],
        broken: float = 0.0,
    ) -> str | None:
        """Why trial ``number``, at ``mine`` after ``trained`` epochs (breaking the
        constraints by ``broken``), stops at this rung; None when it goes on (or this is no
        rung)."""
        bracket = self.bracket_of(number)
        if not self.is_rung(trained, bracket):
            return None
        peers = [t for t in trials if self.bracket_of(t.number) == bracket]
        eta = self.reduction_factor
        return behind(number, trained, mine, broken, peers, self.maximize, lambda n: n // eta)


@dataclass(frozen=True)
class ParetoShare:
    """Azure ML's median stopping (``share`` 1/2: the better half goes on) and truncation
    selection (``share`` 1 - truncation_percentage/100) on several objectives: at every
    evaluation interval (``evaluation_interval`` epochs, from ``delay_evaluation`` on), the
    trials that reported there are ranked by Pareto front, and a trial goes on when it is
    among the first ``ceil(n * share)`` of the ``n``. One value's median or lowest percent
    has no meaning for points on a front; their rank does."""

    maximize: tuple[bool, ...]
    share: float
    evaluation_interval: int = 1
    delay_evaluation: int = 0
    constraints: tuple[Constraint, ...] = ()

    def hopeless(
        self,
        number: int,
        trained: int,
        mine: Point,
        trials: Sequence[FrozenTrial],
        broken: float = 0.0,
    ) -> str | None:
        if trained % max(self.evaluation_interval, 1) or trained < self.delay_evaluation:
            return None
        share = self.share
        return behind(
            number, trained, mine, broken, trials, self.maximize, lambda n: math.ceil(n * share)
        )


ParetoRule = ParetoRungs | ParetoShare
"""A stopping rule for several objectives."""
