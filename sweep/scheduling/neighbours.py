"""Where a trial's curve can end, read from the earlier sweep's curves most like it.

A curve's own first epoch says little about its end (on the digits bank a third of the
curves sit at chance for one to three epochs, and some of those end on top), so the
forecast of ``sweep.scheduling.forecast`` cannot judge from epoch 1 alone. An earlier sweep
of the same trainer can: the trials nearest the judged one, by their hyperparameters and by
their first epochs, gained from there what it will likely gain. The bound is the trial's
own value plus the largest gain its ``k`` nearest earlier trials made from the same epoch to
the end (a gain, not an end: a trial better than any earlier one, as a winner in a widened
space is, is not held to their ends), widened by a margin calibrated as split conformal
prediction does: each earlier trial of the top tenth (``TOP_SHARE``) is bounded by its own
neighbours (itself left out), and the ``1 - risk`` quantile of how far they ended above
their bounds is the margin. A trial is
hopeless when even that cannot reach the best so far. This is a k-nearest-neighbour upper
envelope, the cheapest of the cross-trial curve models (DPL, LC-PFN and ifBO learn the
same map from hyperparameters and a curve's start to its end, with networks).

Distances: each numeric hyperparameter is scaled to [0, 1] by its distribution's range (on
a log scale where the distribution is), a categorical one counts 0 when equal, 1 when not,
a parameter one of the two trials lacks counts 1; the curves' values over the judged
trial's epochs, divided by how widely the earlier curves' values spread, add to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial

from sweep.scheduling.forecast import margin

NEIGHBOURS = 5
"""How many earlier trials bound a new one. Measured on 10 random halves of the digits and
crossing banks, each calibrated on the other half (2026-12-06): 3, 5 and 8 all lost no
winner; sooner 1.58x / 1.60x / 1.52x on digits, 2.60x / 2.52-2.58x / 2.61x on crossing."""

TOP_SHARE = 0.1
"""The share of the earlier trials, best first, whose errors calibrate the margin (on the
crossing bank's halves the errors of all trials lost the winner in 13% of runs, those of
the top fifth 13%, the top tenth none). Below 19 such errors (an earlier sweep of fewer
than 190 trials) ``margin`` has too few for its quantile at ``risk: 0.05`` and takes the
largest error plus their range: wider, so such a sweep stops less."""

IGNORED = frozenset({"num_epochs"})
"""Parameters that set how long a trial runs, not how it learns."""


class NeighbourBound:
    """The earlier sweep's curves (completed trials with their params) as a bound on where a
    new trial's curve ends."""

    def __init__(self, earlier: Sequence[FrozenTrial], k: int = NEIGHBOURS) -> None:
        self.trials = [
            t
            for t in earlier
            if t.intermediate_values
            and t.params
            and all(math.isfinite(v) for v in t.intermediate_values.values())
        ]
        self.k = k
        self._curves = [
            [t.intermediate_values[s] for s in sorted(t.intermediate_values)] for t in self.trials
        ]
        self._encode = _Encoder(self.trials)
        self._features = np.array([self._encode(t.params) for t in self.trials], dtype=float)
        self._margins: dict[tuple[int, int, float], float | None] = {}
        """(cut, horizon, risk) -> the margin calibrated at that cut."""
        self._tables: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        """(cut, horizon) -> the earlier curves as long as the cut: their indices, their
        first ``cut`` values, their values at the horizon (asked at every report)."""

    def __len__(self) -> int:
        return len(self.trials)

    def reach(
        self,
        params: Mapping[str, object],
        series: Sequence[float],
        horizon: int,
        maximize: bool,
        risk: float,
    ) -> float | None:
        """The best value a trial of these params, whose first reports are ``series``, ends
        at by epoch ``horizon``, but for a share ``risk`` of such trials; None when the
        earlier sweep is too small to say (fewer than 2k trials as long as ``series``)."""
        cut = len(series)
        usable, starts, ends = self._table(cut, horizon)
        if len(usable) < 2 * self.k:
            return None
        key = (cut, horizon, risk)
        if key not in self._margins:
            self._margins[key] = self._calibrate(usable, starts, ends, maximize, risk)
        room = self._margins[key]
        if room is None:
            return None
        distance = _distances(
            self._encode(params)[None, :],
            np.asarray(series, dtype=float)[None, :],
            self._features[usable],
            starts,
        )[0]
        bound = series[-1] + _envelope(distance, ends - starts[:, -1], self.k, maximize)
        return bound + room if maximize else bound - room

    def _table(self, cut: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if (cut, horizon) not in self._tables:
            usable = np.array([i for i, c in enumerate(self._curves) if len(c) > cut], dtype=int)
            starts = np.array([self._curves[i][:cut] for i in usable], dtype=float)
            ends = np.array([_at(self._curves[i], horizon) for i in usable], dtype=float)
            self._tables[cut, horizon] = usable, starts.reshape(len(usable), cut), ends
        return self._tables[cut, horizon]

    def _calibrate(
        self,
        usable: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        maximize: bool,
        risk: float,
    ) -> float | None:
        features = self._features[usable]
        distance = _distances(features, starts, features, starts)
        np.fill_diagonal(distance, np.inf)  # each trial bounded by the others
        gains = ends - starts[:, -1]
        # Only the trials that ended near the top: a bound too low for an ordinary trial
        # costs nothing, one too low for a winner loses it. The winner is also the trial
        # most unlike its neighbours (nothing near it ended as high), so the errors of the
        # earlier sweep's own top tenth, each bounded by its neighbours, are the ones to heed.
        ranked = np.sort(ends) if maximize else -np.sort(-ends)
        bar = ranked[int((1 - TOP_SHARE) * (len(ranked) - 1))]
        errors = [
            (end - bound if maximize else bound - end)
            for end, bound in zip(
                ends,
                (
                    start + _envelope(row, gains, self.k, maximize)
                    for start, row in zip(starts[:, -1], distance, strict=True)
                ),
                strict=True,
            )
            if (end >= bar if maximize else end <= bar)
        ]
        return margin(errors, risk)


def _distances(
    features: np.ndarray, starts: np.ndarray, their_features: np.ndarray, their_starts: np.ndarray
) -> np.ndarray:
    """L1 distances, one row per judged trial, one column per earlier trial: hyperparameters
    (a missing one counts 1) plus the curves' first values over how widely theirs spread."""
    spread = float(np.ptp(their_starts)) or 1.0
    params = np.abs(features[:, None, :] - their_features[None, :, :])
    params = np.where(np.isnan(params), 1.0, params).sum(axis=2)
    curves = np.abs(starts[:, None, :] - their_starts[None, :, :]).sum(axis=2) / spread
    return params + curves


def _envelope(distance: np.ndarray, ends: np.ndarray, k: int, maximize: bool) -> float:
    nearest = np.argsort(distance, kind="stable")[:k]
    return float(ends[nearest].max() if maximize else ends[nearest].min())


def _at(curve: list[float], horizon: int) -> float:
    """The curve's value at ``horizon`` epochs trained (its end when shorter)."""
    return curve[min(horizon, len(curve)) - 1]


class _Encoder:
    """A trial's params as numbers whose L1 distance is the one above: a numeric parameter
    scaled to [0, 1] by its distribution's range (log where the distribution is), a
    categorical one as half-weighted indicators (two differing choices differ by 1), a
    missing one as NaN."""

    def __init__(self, trials: Sequence[FrozenTrial]) -> None:
        self.columns: list[tuple[str, BaseDistribution, object]] = []
        seen: dict[str, BaseDistribution] = {}
        for t in trials:
            for name, dist in t.distributions.items():
                if name not in IGNORED:
                    seen.setdefault(name, dist)
        for name, dist in sorted(seen.items()):
            if isinstance(dist, CategoricalDistribution):
                self.columns += [(name, dist, choice) for choice in dist.choices]
            else:
                self.columns.append((name, dist, None))

    def __call__(self, params: Mapping[str, object]) -> np.ndarray:
        out = np.full(len(self.columns), np.nan)
        for i, (name, dist, choice) in enumerate(self.columns):
            if name not in params:
                continue
            value = params[name]
            if isinstance(dist, CategoricalDistribution):
                out[i] = 0.5 if value == choice else 0.0
            elif isinstance(value, int | float) and not isinstance(value, bool):
                out[i] = _scaled(float(value), dist)
        return out


def _scaled(value: float, dist: BaseDistribution) -> float:
    if not isinstance(dist, FloatDistribution | IntDistribution) or dist.high <= dist.low:
        return 0.0
    low, high = float(dist.low), float(dist.high)
    if dist.log and low > 0 and value > 0:
        low, high, value = math.log(low), math.log(high), math.log(value)
    return (value - low) / (high - low)
