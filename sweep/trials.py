"""What the coordinator and the backends say to each other about a trial."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TrainFn = Callable[[dict[str, Any], Callable[[int, dict[str, float]], bool]], Mapping[str, Any]]
"""A trainer: ``fn(params, report) -> metrics``; ``report(epoch, metrics)`` True means stop."""


@dataclass(frozen=True)
class TrialSpec:
    """One trial to run: who trains, with what, where its files go, on what resources."""

    number: int
    params: Mapping[str, Any]
    """The sampled parameters merged over the trainer's fixed args and ``output_dir``."""
    entry: str | TrainFn
    trial_dir: str
    cpus: float = 1.0
    gpus: float = 0.0
    workers: int = 1
    """More than 1: a data-parallel trial, one process per worker (torch DDP)."""


@dataclass(frozen=True)
class Reported:
    """A trial reported an epoch; the backend waits for ``answer`` before it goes on."""

    number: int
    epoch: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class Finished:
    number: int
    result: Mapping[str, Any]


@dataclass(frozen=True)
class Failed:
    number: int
    reason: str


Event = Reported | Finished | Failed
