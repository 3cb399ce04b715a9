"""How many trials a sweep has run and has left: the totals every path must honour.

A trial re-run under a new number (a retry or an interruption of a trainer without a
checkpoint) counts once; a trial that continues from its checkpoint keeps its number. A
trial made by ``sweep continue`` is outside the budget: it never counts, and until it ends
it is left to run (by the ``continue`` that made it, or by ``resume`` after an interruption).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from search_spaces import SweepConfig
from search_spaces.optuna_form import OptunaSpace
from sweep.records.trial_attrs import CONTINUES, REPLACES


def enqueue(study: optuna.Study, params: Mapping[str, Any], attrs: Mapping[str, Any]) -> int:
    """Queues a trial with ``params`` (as Optuna's ``enqueue_trial``); its number."""
    study.enqueue_trial(dict(params), user_attrs=dict(attrs))
    return len(study.get_trials(deepcopy=False)) - 1


def pending_continues(trials: list[optuna.trial.FrozenTrial]) -> list[int]:
    """``sweep continue`` trials queued and not started (an interrupted ``continue``)."""
    return [t.number for t in trials if t.state == TrialState.WAITING and CONTINUES in t.user_attrs]


def replaced_numbers(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Trials that were re-run under another number (retried or interrupted): not counted."""
    return {t.user_attrs[REPLACES] for t in trials if REPLACES in t.user_attrs}


def planned_total(config: SweepConfig, space: OptunaSpace, max_trials: int | None) -> int:
    """How many trials the sweep runs in all: the budget, or the whole grid if smaller; PBT's
    population whatever the budget (a member is a trial for its whole life)."""
    if config.sampling_algorithm.type == "pbt":  # its members are its trials
        return int(config.sampling_algorithm.options["population_size"])
    total = max_trials or config.limits.max_total_trials
    if config.sampling_algorithm.type == "grid":
        total = min(total, math.prod(len(v) for v in space.grid().values()))
    return total


def trials_left(study: optuna.Study, total: int) -> int:
    """Trials a resume would still run: the budget minus those that ended, where a trial
    left RUNNING by a dead coordinator continues (or runs again under a new number)."""
    trials = study.get_trials(deepcopy=False)
    replaced = replaced_numbers(trials)
    counted = sum(
        1
        for t in trials
        if t.state not in (TrialState.WAITING, TrialState.RUNNING)
        and t.number not in replaced
        and CONTINUES not in t.user_attrs
    )
    outside = sum(
        1
        for t in trials
        if t.state in (TrialState.WAITING, TrialState.RUNNING) and CONTINUES in t.user_attrs
    )
    return max(total - counted, 0) + outside


def started_so_far(study: optuna.Study) -> int:
    """Trials that count against the budget: started, and not replaced by another."""
    trials = study.get_trials(deepcopy=False)
    replaced = replaced_numbers(trials)
    return sum(
        1
        for t in trials
        if t.state != TrialState.WAITING
        and t.number not in replaced
        and CONTINUES not in t.user_attrs
    )
