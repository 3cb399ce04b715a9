"""The seam for schedulers that pause trials and continue them later from their checkpoints:
promotion ASHA and Hyperband (``sweep.scheduling.promotion``) and population-based training
(``sweep.scheduling.population``).

A scheduler says when a reporting trial stops and waits (``pauses_at``) and, whenever a worker
is free, which paused trials continue and with what changed (``moves``). A paused trial stays
RUNNING in the study with its rung in ``paused_at``; everything a scheduler decides is kept
in the trials' attributes, so ``resume`` after a crash goes on where the sweep was.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from optuna.trial import FrozenTrial, TrialState

from sweep.records.trial_attrs import paused_at


@dataclass(frozen=True)
class Move:
    """A paused trial that continues now."""

    number: int
    why: str
    attrs: dict[str, Any] = field(default_factory=dict)
    """Trial attributes to set before it continues (the rungs it left, its new params)."""
    donor: int | None = None
    """PBT's exploit: the trial whose checkpoint it continues from instead of its own."""


class PausingScheduler(Protocol):
    def pauses_at(
        self, number: int, trained: int, asked: int | None, promoted: Sequence[int]
    ) -> bool:
        """Whether trial ``number`` waits now, having trained ``trained`` epochs of the
        ``asked`` (its num_epochs, when known) after leaving the rungs ``promoted``."""
        ...

    def moves(
        self, trials: Sequence[FrozenTrial], active: Collection[int], launched_all: bool
    ) -> list[Move]:
        """The paused trials that continue now (none: start a new trial if the budget allows,
        else wait). ``active``: trials running now; ``launched_all``: the budget is spent."""
        ...

    def boundaries(self, number: int, asked: int | None) -> list[int]:
        """The epochs trained at which trial ``number`` may pause: its trainer must save its
        checkpoint there (``checkpoint.every`` aside)."""
        ...

    def why_left(self, rung: int) -> str:
        """Why a trial still paused when nothing can run any more ends where it is."""
        ...


def paused(trials: Sequence[FrozenTrial]) -> dict[int, int]:
    """Trial number -> the rung it waits at, for every paused trial."""
    return {
        t.number: paused_at(t) for t in trials if t.state == TrialState.RUNNING and paused_at(t)
    }
