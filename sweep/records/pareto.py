"""The Pareto front of completed trials, and the pick: plain functions on (number, values)
pairs, the directions given as ``maximize`` flags (one per objective).

A trial is on the front when no other feasible completed trial is at least as good on every
objective and better on one; trials with equal values are all on it (none dominates the
other). The pick is the feasible trial best on the first objective (ties: the earlier).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Point = tuple[int, Sequence[float]]
"""(trial number, its values in the objectives' order)."""


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for x, y, up in zip(a, b, maximize, strict=True):
        if (x < y) if up else (x > y):
            return False
        if x != y:
            better = True
    return better


def front(points: Iterable[Point], maximize: Sequence[bool]) -> list[int]:
    """The numbers of the non-dominated points, in the order given."""
    listed = list(points)
    return [n for n, v in listed if not any(dominates(w, v, maximize) for m, w in listed if m != n)]


def pick(points: Iterable[Point], maximize: Sequence[bool]) -> int | None:
    """The point best on the first objective (the earliest of equals); None if none."""
    best: Point | None = None
    for point in points:
        if best is None or (point[1][0] > best[1][0] if maximize[0] else point[1][0] < best[1][0]):
            best = point
    return best[0] if best is not None else None


class Front:
    """The front kept up to date as trials complete: each addition compares with the front
    only (a dominated trial never comes back onto it)."""

    def __init__(self, maximize: Sequence[bool]) -> None:
        self.maximize = list(maximize)
        self.members: dict[int, Sequence[float]] = {}

    def add(self, number: int, values: Sequence[float]) -> list[int]:
        """Adds a completed feasible trial; returns the trials not on the front because of
        it: the members it dominates, or itself when a member dominates it."""
        if any(dominates(v, values, self.maximize) for v in self.members.values()):
            return [number]
        gone = [n for n, v in self.members.items() if dominates(values, v, self.maximize)]
        for n in gone:
            del self.members[n]
        self.members[number] = values
        return gone
