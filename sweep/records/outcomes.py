"""What a finished trial tells the study: its value per objective (in the objectives'
order), and by how much it breaks each constraint (``Trial.set_constraint``, Optuna's
convention: at most 0 when met; what its samplers and ``best_trials`` read), and whether a
trial is feasible."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from optuna.trial import FrozenTrial

from search_spaces import SweepConfig


def final_values(
    config: SweepConfig, result: Mapping[str, Any]
) -> tuple[dict[str, float], str | None]:
    """The metrics the objectives and constraints read from a trial's result, or why it
    cannot be told to the study."""
    wanted = [o.primary_metric for o in config.goals] + [c.metric for c in config.constraints]
    found: dict[str, float] = {}
    for i, metric in enumerate(wanted):
        value = result.get(metric)
        if value is None:
            returned = ", ".join(sorted(result)) or "nothing"
            what = (
                "the objective's primary_metric"
                if i == 0
                else "an objective's primary_metric"
                if i < len(config.goals)
                else "a constraint's metric"
            )
            return found, (f"the trainer returned no '{metric}' ({what}); it returned: {returned}")
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            return found, f"{metric} is {value!r}"
        found[metric] = float(value)
    return found, None


def broken_constraints(trial: FrozenTrial) -> list[str]:
    """The constraints a completed trial breaks, as written (``latency_ms <= 5``)."""
    return [name for name, violation in trial.constraints.items() if violation > 0]


def feasible(trial: FrozenTrial) -> bool:
    """Whether a completed trial meets every constraint (trivially, without any)."""
    return all(v <= 0 for v in trial.constraints.values())
