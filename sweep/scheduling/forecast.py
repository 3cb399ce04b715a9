"""Learning-curve forecasts: where a trial's curve ends, and how far to trust that.

A trial is stopped only when its forecast at its last epoch, plus the margin of error the
forecasts made on this sweep's own finished curves, cannot reach the best value so far
(``early_termination: {type: forecast, risk: 0.05}``). Rung-ranking policies (ASHA,
Hyperband, median) ask "is it behind now?"; slow starters that win are behind early, and
those policies stop them. This one asks "can it still win?".

The forecast is an ensemble of two saturating forms fitted to the trial's own curve,
``a - b·exp(-c·t)`` and ``a - b·t^-c`` (t: epochs trained), each a linear least-squares fit
of (a, b) for every c of a fixed grid. NumPy only, a few microseconds a fit, so a replay of
hundreds of trials over many seeds stays in seconds. A fit says how much the curve still
gains from its last epoch to the horizon, added to its last value: neither form bends as
sharply as a curve that rose fast and flattened, and a fit's own level stays above such a
curve. The trial is judged by its best case: the largest gain of any rate that fits its
curve about as well as the best rate does, within the metric's noise (``noise_of`` each
finished curve; the judge, ``sweep.scheduling.pruners.ForecastJudge``, takes their upper
quartile; until three have finished, the curve's own second differences stand in). A slow
starter's first epochs are almost a straight line, which a rate that saturates soon fits as
well as one that climbs for dozens of epochs; judged by the best-fitting rate alone, such a
curve's end was underestimated the more, the longer it trains (crossing curves of 45
epochs: the winner stopped in 55-85% of replays; the finished curves, faster starters whose
first epochs did tell their rate, gave the margin no error that large). The margin is
calibrated as split conformal prediction does: each finished curve, cut at the same epoch,
is forecast to its end, and its error is measured in units of that forecast's own
uncertainty (the spread between the forms' best fits and the best case, plus the curve's
largest step of its last three: a curve still climbing, or one that paused after a rise, is
less certain than a flat one); the ``1 - risk`` quantile of those errors (with the
finite-sample correction ``ceil((n+1)(1-risk))``), in the judged trial's units, bounds how
much it may beat its best case. With too few finished curves for that quantile, the largest
error plus the errors' range stands in; with fewer than ``min_history`` finished curves
nothing is stopped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_RATES = np.geomspace(0.03, 3.0, 24)
"""The grid of c: from curves that barely bend within 100 epochs to ones flat after two."""


@dataclass(frozen=True)
class Forecast:
    value: float
    """The ensemble's value at the horizon (the middle of the forms' best fits)."""
    spread: float
    """Half the distance between the forms' best fits (how much they disagree)."""
    step: float = 0.0
    """The curve's largest step over its last three epochs: how fast it still moves."""
    upside: float = 0.0
    """How far above the better form's best fit the rates that fit about as well reach."""

    def best_case(self, maximize: bool) -> float:
        """The highest value of any form and rate that fits about as well as the best."""
        reach = self.spread + self.upside
        return self.value + reach if maximize else self.value - reach

    @property
    def scale(self) -> float:
        """How uncertain this forecast is, in the metric's units (half the range from the
        lower best fit to the best case, plus the recent step): errors are measured in it,
        so a curve still moving fast gets a wide margin and a flat one a narrow one
        (locally weighted conformal prediction)."""
        return self.spread + self.upside / 2 + self.step + 1e-9


def forecast(curve: Sequence[float], horizon: int, noise: float | None = None) -> Forecast:
    """Where ``curve`` (values at epochs trained 1..n) stands at ``horizon`` epochs trained.
    ``noise``: the metric's variance about a curve of this sweep per epoch (``noise_of``);
    None: read from the curve's own second differences."""
    y = np.asarray(curve, dtype=float)
    n = len(y)
    if n == 0:
        raise ValueError("a forecast needs at least one value")
    # A curve that paused for an epoch or two after a rise (a learning-rate step, noise on a
    # running best) is not done: its largest recent step, not its last, says how it moves.
    step = float(np.abs(np.diff(y[-4:])).max()) if n > 1 else 0.0
    if n < 3 or np.ptp(y) == 0.0:
        return Forecast(float(y[-1]), 0.0, step)
    t = np.arange(1, n + 1, dtype=float)
    if noise is None:
        # White noise of variance s² gives second differences of variance 6 s². A bend adds
        # to them, so from 3 or 4 epochs a curve that bends early reads as very noisy and
        # nothing can be ruled out for it: the finished curves' noise is the sharper
        # estimate once there are some.
        noise = float(np.mean(np.diff(y, 2) ** 2)) / 6
    at_horizon = _bases(np.array([float(horizon)]))
    # Each fit says how much the curve still gains by the horizon, added to where the curve
    # is: real curves bend more sharply than either form (a fast rise, then flat), and a
    # fit's own level sits above a curve that has flattened (a ResNet on digits, flat at 0.94
    # from epoch 14: 0.967 at epoch 27 by the fits' level from 20 epochs, 0.951 by their gain).
    gains = [
        _gain(basis, at[:, 0], y, noise) for basis, at in zip(_bases(t), at_horizon, strict=True)
    ]
    # A saturating curve never rises faster than its steepest step so far: a fit that runs
    # further off (noise read as a bend) is held to that line.
    reach = float(np.abs(np.diff(y)).max()) * (horizon - n) + float(np.ptp(y))
    low, high, best_case = (
        float(y[-1] + np.clip(g, -reach, reach))
        for g in (
            min(gain for gain, _ in gains),
            max(gain for gain, _ in gains),
            max(top for _, top in gains),
        )
    )
    return Forecast((low + high) / 2, (high - low) / 2, step, best_case - high)


PLAUSIBLE = 2.0
"""A rate is as plausible as the best one when its squared residual exceeds the best's by
at most this many times the noise variance per epoch. Measured on crossing curves of 9, 18,
27 and 45 epochs (4 workers, 20 orders, each curve's own noise): 1 lost the 27-epoch winner
in 75% of replays, 2 and 4 in none; 2 spends less."""


NOISE_FROM = 5
"""A finished curve tells the metric's noise when it has at least this many epochs: its best
fit has three parameters (a, b, c), so it needs two epochs more to leave a residual."""


def noise_of(curve: Sequence[float]) -> float | None:
    """The variance of ``curve`` about its best fit per degree of freedom (None: too short,
    or not finite)."""
    y = np.asarray(curve, dtype=float)
    n = y.size
    if n < NOISE_FROM or not np.isfinite(y).all():
        return None
    t = np.arange(1, n + 1, dtype=float)
    least = min(float(_least_squares(basis, y)[2].min()) for basis in _bases(t))
    return least / (n - 3)


def _bases(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two forms at epochs ``t``, one row per rate c: exp(-c·t) and t^-c."""
    return np.exp(-np.outer(_RATES, t)), t[None, :] ** -_RATES[:, None]


def _least_squares(basis: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares of y ~ a + b·basis[c] for every c at once (basis: one row per c, one
    column per epoch): a, b and the squared residual for each c (inf where c fits nothing)."""
    n = y.size
    sx, sxx = basis.sum(axis=1), (basis * basis).sum(axis=1)
    sy, sxy = y.sum(), basis @ y
    det = n * sxx - sx * sx
    ok = np.abs(det) > 1e-12
    safe = np.where(ok, det, 1.0)
    b = np.where(ok, (n * sxy - sx * sy) / safe, 0.0)
    a = np.where(ok, (sy - b * sx) / n, sy / n)
    residual = ((a[:, None] + b[:, None] * basis - y[None, :]) ** 2).sum(axis=1)
    return a, b, np.where(ok, residual, np.inf)


def _gain(
    basis: np.ndarray, at_horizon: np.ndarray, y: np.ndarray, noise: float
) -> tuple[float, float]:
    """From the last epoch to the horizon, the best c's gain and the highest gain of the c
    that fit about as well (``PLAUSIBLE``)."""
    _, b, residual = _least_squares(basis, y)
    best = int(np.argmin(residual))
    gain = b * (at_horizon - basis[:, -1])
    plausible = residual <= residual[best] + PLAUSIBLE * y.size * noise + 1e-12
    return float(gain[best]), float(gain[plausible].max())


def margin(errors: Sequence[float], risk: float) -> float | None:
    """How much a curve may beat its forecast, at most, but for a share ``risk`` of curves;
    None when too few errors are known to say."""
    if len(errors) < 2:
        return None
    ordered = sorted(errors)
    n = len(ordered)
    k = math.ceil((n + 1) * (1 - risk))
    if k <= n:
        return max(ordered[k - 1], 0.0)
    return max(ordered[-1] + (ordered[-1] - ordered[0]), 0.0)
