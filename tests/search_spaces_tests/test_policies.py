"""Policies as data: each checks itself, and a new one is a dataclass plus a table row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import optuna
import pytest

from search_spaces import SearchSpaceError, parse_sweep, policies
from search_spaces.policies import Bandit, Hyperband, Policy, TruncationSelection

SPACE = {"x": {"type": "choice", "values": [1, 2]}}


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Bandit(), "exactly one of slack_factor or slack_amount, got slack_factor=None"),
        (
            lambda: Bandit(slack_factor=0.1, evaluation_interval=0),
            "early_termination.evaluation_interval: must be 1 or more, got 0",
        ),
        (lambda: TruncationSelection(truncation_percentage=120), "from 1 to 99, got 120"),
        (lambda: Hyperband(reduction_factor=1), "reduction_factor: must be 2 or more, got 1"),
    ],
)
def test_a_policy_checks_itself_and_shows_the_values(build, message):
    with pytest.raises(SearchSpaceError, match=message.replace("(", r"\(")):
        build()


def test_the_sdks_zero_slack_is_dropped():
    assert Bandit(slack_factor=0.2, slack_amount=0.0).options() == {
        "evaluation_interval": 1,
        "delay_evaluation": 0,
        "slack_factor": 0.2,
    }


def test_adding_a_policy_is_one_dataclass_and_one_table_row(monkeypatch):
    from sweep.scheduling import pruners

    @dataclass(frozen=True)
    class Patient(Policy):
        patience: int = 2
        type: ClassVar[str] = "patient"

    monkeypatch.setitem(policies.TABLE, "patient", Patient)
    monkeypatch.setitem(
        pruners.PRUNERS, Patient, lambda p: optuna.pruners.ThresholdPruner(upper=float(p.patience))
    )
    config = parse_sweep(
        {"search_space": SPACE, "early_termination": {"type": "patient", "patience": 4}}
    )
    assert config.early_termination.options == {"patience": 4}
    pruner = pruners.make_pruner(config.early_termination)
    assert isinstance(pruner, optuna.pruners.ThresholdPruner) and pruner._upper == 4.0
    with pytest.raises(SearchSpaceError, match="early_termination.patience: expected an integer"):
        parse_sweep(
            {"search_space": SPACE, "early_termination": {"type": "patient", "patience": "long"}}
        )
    # Local only: Azure ML has no such policy, and says so before anything is submitted.
    with pytest.raises(SearchSpaceError, match="'patient' runs locally only"):
        parse_sweep(
            {
                "search_space": SPACE,
                "compute": "azure:cpu",
                "early_termination": {"type": "patient"},
            }
        )


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"type": "random", "rule": "halton"}, "sampling_algorithm.rule: 'halton' is not one of"),
        (
            {"type": "random", "logbase": 1},
            "sampling_algorithm.logbase: must be 'e' or a positive number other than 1, got 1",
        ),
        ({"type": "tpe", "seed": "7"}, "sampling_algorithm.seed: expected an integer, got '7'"),
        ({"type": "grid", "rule": "sobol"}, "sampling_algorithm.rule: unknown key"),
    ],
)
def test_a_sampler_checks_itself_and_shows_the_values(settings, message):
    with pytest.raises(SearchSpaceError, match=message.replace("(", r"\(")):
        parse_sweep({"search_space": SPACE, "sampling_algorithm": settings})


def test_adding_a_sampler_is_one_dataclass_and_one_table_row(monkeypatch):
    from search_spaces import samplers
    from search_spaces.optuna_form import to_optuna
    from sweep.coordination import study

    @dataclass(frozen=True)
    class Nsga(samplers.Sampler):
        population_size: int | None = None
        type: ClassVar[str] = "nsga"

    monkeypatch.setitem(samplers.TABLE, "nsga", Nsga)
    monkeypatch.setitem(
        study.SAMPLERS,
        Nsga,
        lambda s, space: optuna.samplers.NSGAIISampler(
            seed=s.seed, population_size=s.population_size
        ),
    )
    config = parse_sweep(
        {
            "search_space": SPACE,
            "sampling_algorithm": {"type": "nsga", "seed": 3, "population_size": 8},
        }
    )
    assert config.sampling_algorithm.options == {"population_size": 8}
    sampler = study.make_sampler(config.sampling_algorithm, to_optuna(config.search_space))
    assert isinstance(sampler, optuna.samplers.NSGAIISampler)
    assert sampler._population_size == 8
    with pytest.raises(SearchSpaceError, match="'nsga' runs locally only"):
        parse_sweep(
            {"search_space": SPACE, "compute": "azure:cpu", "sampling_algorithm": {"type": "nsga"}}
        )
