"""Main-effect importances: a parameter that drives the metric reads high, noise reads ~0."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.importance import main_effects


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lr = rng.uniform(0, 1, n)
    noise = rng.uniform(0, 1, n)
    optimizer = rng.choice(["sgd", "adam"], n)
    value = 10 * lr + 3 * (optimizer == "adam") + rng.normal(0, 0.3, n)
    return pd.DataFrame(
        {
            "number": range(n),
            "state": "complete",
            "value": value,
            "param_lr": lr,
            "param_noise": noise,
            "param_optimizer": optimizer,
        }
    )


def test_the_driving_parameters_rank_first_and_noise_reads_near_zero() -> None:
    effects = main_effects(_frame(200), ["noise", "optimizer", "lr"])
    assert list(effects) == ["lr", "optimizer", "noise"]
    # lr carries 10^2/12 = 8.3 of the variance, optimizer 3^2/4 = 2.25: about 78% and 21%.
    assert effects["lr"] == pytest.approx(0.78, abs=0.08)
    assert effects["optimizer"] == pytest.approx(0.21, abs=0.06)
    assert effects["noise"] < 0.03


def test_noise_alone_is_not_read_as_importance_with_few_trials() -> None:
    # Plain eta-squared gives 3 bins over 8 trials (k-1)/(n-1) = 2/7 by chance alone.
    spread = [
        main_effects(
            _frame(8, seed)[["state", "value", "param_noise"]].assign(
                value=np.random.default_rng(seed).normal(size=8)
            ),
            ["noise"],
        )["noise"]
        for seed in range(200)
    ]
    assert np.median(spread) == 0
    assert np.mean(spread) < 0.5 * 2 / 7


def test_only_completed_trials_count_and_absence_is_a_group() -> None:
    frame = _frame(60)
    frame["param_momentum"] = np.where(frame["param_optimizer"] == "sgd", 0.9, np.nan)
    frame.loc[:9, "state"] = "pruned"
    frame.loc[:9, "value"] = 1e6  # a pruned trial's last report must not weigh in
    effects = main_effects(frame, ["lr", "momentum", "noise", "optimizer"])
    # momentum is present exactly for sgd: its groups (0.9 / absent) split as the optimizer's.
    assert effects["momentum"] == pytest.approx(effects["optimizer"])
    assert effects["momentum"] > 0
    assert effects["lr"] > 0.5


def test_too_few_or_constant_results_give_nothing() -> None:
    assert main_effects(_frame(2), ["lr"]) == {}
    assert main_effects(_frame(20).assign(value=1.0), ["lr"]) == {}
