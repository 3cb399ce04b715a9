"""Parameter importances as main effects: the share of the metric's variance that each
parameter explains alone, over the completed trials.

It measures what fANOVA's first-order terms measure (the variance of the metric's
marginal over one parameter, as a share of the total), estimated from group means
instead of a random forest: a numeric parameter's values are cut into equal-count bins, a
choice's values are its groups, and a conditional parameter's absence is a group of its
own. The estimate is ω² (omega squared), which takes off what k groups of n noisy trials
explain by chance, so a parameter with no effect reads about 0 rather than (k-1)/(n-1).
It needs NumPy and pandas only: Optuna's fANOVA evaluator imports scikit-learn and SciPy,
1.5 s on every report, more than a short sweep's trials take.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MIN_TRIALS = 3


def main_effects(trials: pd.DataFrame, params: list[str]) -> dict[str, float]:
    """ω² of each parameter (0 to 1), largest first; empty when fewer than ``MIN_TRIALS``
    completed trials or a constant metric leave nothing to explain.

    ``trials``: a trials frame (``state``, ``value`` and ``param_NAME`` columns).
    """
    done = trials[(trials["state"] == "complete") & trials["value"].notna()]
    y = done["value"].to_numpy(dtype=float)
    n = len(y)
    total = float(((y - y.mean()) ** 2).sum()) if n else 0.0
    if n < MIN_TRIALS or total <= 0:
        return {}
    effects = {name: _omega_squared(_groups(done[f"param_{name}"], n), y, total) for name in params}
    return dict(sorted(effects.items(), key=lambda item: -item[1]))


def _groups(values: pd.Series, n: int) -> np.ndarray:
    """A group label per trial: its bin, its choice, or 'absent'."""
    bins = max(2, round(math.sqrt(n)))
    present = values.notna()
    labels = pd.Series("absent", index=values.index, dtype=object)
    numeric = pd.to_numeric(values[present], errors="coerce")
    if numeric.notna().all() and numeric.nunique() > bins:
        # Ranks first: equal-count bins even where many trials share a value.
        cut = pd.qcut(numeric.rank(method="first"), bins, labels=False)
        labels[present] = "bin " + cut.astype(int).astype(str)
    else:
        labels[present] = values[present].astype(str)
    return labels.to_numpy()


def _omega_squared(groups: np.ndarray, y: np.ndarray, total: float) -> float:
    names, index = np.unique(groups, return_inverse=True)
    k, n = len(names), len(y)
    if k < 2 or k >= n:
        return 0.0  # one group explains nothing; one trial per group leaves no noise estimate
    counts = np.bincount(index)
    means = np.bincount(index, weights=y) / counts
    between = float((counts * (means - y.mean()) ** 2).sum())
    within = (total - between) / (n - k)
    return max(0.0, (between - (k - 1) * within) / (total + within))
