"""PBT's first population: one member a stratum of each parameter (a Latin hypercube)."""

from __future__ import annotations

import math
from collections import Counter

import optuna
import pytest

from search_spaces import parse_sweep, to_optuna
from sweep.coordination.first_population import LatinHypercubeSampler
from sweep.coordination.study import make_sampler

MODELS = ["resnet18", "resnet34", "mobilenet"]


def _population(sampler: optuna.samplers.BaseSampler, size: int) -> list[dict]:
    study = optuna.create_study(sampler=sampler, direction="maximize")
    members = []
    for _ in range(size):
        trial = study.ask()
        members.append(
            {
                "lr": trial.suggest_float("lr", 1e-4, 0.1, log=True),
                "momentum": trial.suggest_float("momentum", 0.0, 0.99),
                "batch": trial.suggest_int("batch", 16, 256, step=16),
                "model": trial.suggest_categorical("model", MODELS),
            }
        )
    return members


def _strata(values: list[float], low: float, high: float, size: int, log: bool) -> list[int]:
    scale = math.log if log else float
    return sorted(
        min(int((scale(v) - scale(low)) / (scale(high) - scale(low)) * size), size - 1)
        for v in values
    )


@pytest.mark.parametrize("seed", range(5))
def test_every_member_holds_its_own_stratum_of_each_parameter(seed):
    members = _population(LatinHypercubeSampler(8, seed=seed), 8)
    assert _strata([m["lr"] for m in members], 1e-4, 0.1, 8, log=True) == list(range(8))
    assert _strata([m["momentum"] for m in members], 0.0, 0.99, 8, log=False) == list(range(8))
    batches = [m["batch"] for m in members]
    assert all(16 <= b <= 256 and b % 16 == 0 for b in batches)
    assert len(set(batches)) == 8  # 16 grid values, 8 strata of 2: no two members share one
    assert sorted(Counter(m["model"] for m in members).values()) == [2, 3, 3]


def test_random_draws_do_not_hold_one_stratum_each():
    # The property above is not a matter of luck: 8 random draws hold every stratum of a
    # parameter with probability 8!/8**8 (0.24%).
    spread = sum(
        _strata(
            [m["lr"] for m in _population(optuna.samplers.RandomSampler(seed=s), 8)],
            1e-4,
            0.1,
            8,
            log=True,
        )
        == list(range(8))
        for s in range(5)
    )
    assert spread == 0


def test_the_same_seed_draws_the_same_population_and_another_seed_another():
    one, again, other = (_population(LatinHypercubeSampler(8, seed=s), 8) for s in (3, 3, 4))
    assert one == again
    assert one != other


def test_members_beyond_the_population_still_get_values_in_range():
    members = _population(LatinHypercubeSampler(4, seed=0), 10)
    assert all(1e-4 <= m["lr"] <= 0.1 and 0 <= m["momentum"] <= 0.99 for m in members)
    assert _strata([m["lr"] for m in members[:4]], 1e-4, 0.1, 4, log=True) == [0, 1, 2, 3]


def test_a_pbt_sweep_samples_its_first_population_from_the_hypercube():
    config = parse_sweep(
        {
            "search_space": {"lr": {"type": "loguniform", "min_value": -9.2, "max_value": -2.3}},
            "sampling_algorithm": {"type": "pbt", "population_size": 6, "seed": 2},
        }
    )
    sampler = make_sampler(config.sampling_algorithm, to_optuna(config.search_space))
    assert isinstance(sampler, LatinHypercubeSampler)
    assert sampler._strata == 6
