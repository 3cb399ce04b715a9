"""What the coordinator and the backends say to each other about a trial."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TrainFn = Callable[[dict[str, Any], Callable[[int, dict[str, float]], bool]], Mapping[str, Any]]
"""A trainer: ``fn(params, report) -> metrics``; ``report(epoch, metrics)`` True means stop."""


@dataclass(frozen=True)
class TrialSpec:
    """One trial to run: who trains, with what, where its files go (what it runs on is the
    backend's, from the resources it was opened with)."""

    number: int
    params: Mapping[str, Any]
    """The sampled parameters merged over the trainer's fixed args and ``output_dir``."""
    entry: str | TrainFn
    trial_dir: str


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
