"""The sweep's settings as plain frozen values; what a sweep file means, with its defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_spaces.expressions import Expression

# Sampling algorithms: Azure ML's three, then ours (Optuna's samplers by name).
AZURE_SAMPLERS = ("random", "grid", "bayesian")
SAMPLERS = AZURE_SAMPLERS + ("tpe", "cmaes", "gp", "qmc")

# Early-termination policies: Azure ML's three, then Optuna's pruners, then none.
AZURE_POLICIES = ("bandit", "median_stopping", "truncation_selection")
POLICIES = AZURE_POLICIES + ("median", "percentile", "asha", "hyperband", "none")

BUILTIN_DATASETS = ("digits",)


@dataclass(frozen=True)
class TrainerSpec:
    """What one trial runs: the built-in trainer, or ``package.module:function``."""

    entry: str = "trainer"
    args: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0


@dataclass(frozen=True)
class Objective:
    primary_metric: str = "best_val_acc"
    goal: str = "maximize"


@dataclass(frozen=True)
class SamplingAlgorithm:
    type: str = "random"
    seed: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EarlyTermination:
    """An early-termination policy and its settings (evaluation_interval, slack_factor, …)."""

    type: str = "none"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    max_total_trials: int = 20
    max_concurrent_trials: int | None = None
    timeout: float | None = None
    trial_timeout: float | None = None


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    workers_per_trial: int = 1
    distribution: str = "ddp"


@dataclass(frozen=True)
class Register:
    model_name: str
    root: str | None = None


@dataclass(frozen=True)
class SweepConfig:
    """One whole sweep, as a sweep file describes it."""

    name: str
    search_space: Mapping[str, Expression]
    trainer: TrainerSpec = field(default_factory=TrainerSpec)
    objective: Objective = field(default_factory=Objective)
    sampling_algorithm: SamplingAlgorithm = field(default_factory=SamplingAlgorithm)
    early_termination: EarlyTermination = field(default_factory=EarlyTermination)
    limits: Limits = field(default_factory=Limits)
    resources: Resources = field(default_factory=Resources)
    compute: str = "local"
    storage: str = "default"
    register: Register | None = None
    # Where relative paths in the file (the data folder) are resolved from; not a key.
    base_dir: Path = field(default=Path("."), compare=False)

    @property
    def direction(self) -> str:
        return self.objective.goal
