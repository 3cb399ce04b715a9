"""The trials of a sweep as one pandas frame, read from its study: the table ``status``,
``report``, ``trials.csv`` and ``SweepResult.trials`` show. Built here, beside the attributes
it reads (``sweep.records.trial_attrs``), so that ``reports`` receives plain data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from sweep.records.trial_attrs import (
    CONTINUES,
    COORDINATOR,
    EPOCHS,
    LINEAGE,
    NODES,
    OVERRIDES,
    PREEMPTIONS,
    REASON,
    REPLACES,
    RESTARTS,
    paused_at,
)

STATE_NAMES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


def trials_frame(
    study: optuna.Study,
    epochs_asked: int | None = None,
    decode: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per trial: number, state, value, each parameter, epochs run/asked, reason, time.

    A trial that was re-run from its start (a retry, or after an interruption, without a
    checkpoint) keeps its row, with ``rerun_as`` naming the trial that replaced it; one that
    continued from its checkpoint is one row, ``restarts`` saying how often it did. A PBT
    member's params are those it trains with last; ``lineage`` and ``schedule`` say whose
    checkpoint it copied when, and its params over epochs. With several objectives,
    ``value`` is the first one's and ``values`` all of them; with constraints, ``feasible``
    says whether a completed trial met them all.
    ``decode`` turns Optuna's parameters into the user's
    (see ``search_spaces.optuna_form``); without it they are shown as Optuna has them.
    """
    trials = study.get_trials(deepcopy=False)
    rerun_as = {t.user_attrs[REPLACES]: t.number for t in trials if REPLACES in t.user_attrs}
    rows: list[dict[str, Any]] = []
    pbt = any(t.user_attrs.get(LINEAGE) for t in trials)
    several = len(study.directions) > 1
    constrained = any(t.constraints for t in trials)
    for t in trials:
        first = dict(decode(t.params) if decode and t.params else t.params)
        # What it trains with now: PBT's last explore step, or `sweep continue`'s epochs.
        overrides = t.user_attrs.get(OVERRIDES, {})
        params = {**first, **{k: v for k, v in overrides.items() if k in first}}
        asked = params.get("num_epochs", epochs_asked)
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        reason = t.user_attrs.get(REASON, "")
        if t.number in rerun_as and not reason:
            reason = "interrupted"
        if CONTINUES in t.user_attrs and not reason:
            reason = f"continues trial {t.user_attrs[CONTINUES]}"
        rows.append(
            {
                "number": t.number,
                "state": "paused"
                if t.state == TrialState.RUNNING and paused_at(t)
                else STATE_NAMES.get(t.state, t.state.name.lower()),
                "value": (t.values[0] if several else t.value)
                if t.state == TrialState.COMPLETE
                else _last(t),
                **(
                    {
                        "values": list(t.values)
                        if t.state == TrialState.COMPLETE and t.values
                        else None
                    }
                    if several
                    else {}
                ),
                **(
                    {
                        "feasible": all(v <= 0 for v in t.constraints.values())
                        if t.constraints
                        else None
                    }
                    if constrained
                    else {}
                ),
                **{f"param_{k}": v for k, v in params.items()},
                "epochs_run": t.user_attrs.get(EPOCHS, len(t.intermediate_values)),
                "epochs_asked": asked,
                "reason": reason,
                "rerun_as": rerun_as.get(t.number),
                "restarts": int(t.user_attrs.get(RESTARTS, 0)),
                "preemptions": int(t.user_attrs.get(PREEMPTIONS, 0)),
                # Where it went after a loss or a preemption (one node: nothing to say).
                "nodes": _moves(t),
                "coordinator": t.user_attrs.get(COORDINATOR),
                **({"lineage": _lineage(t), "schedule": _schedule(t, first)} if pbt else {}),
                "start": t.datetime_start,
                "duration_s": duration,
            }
        )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


def _moves(trial: optuna.trial.FrozenTrial) -> str | None:
    """The nodes a trial ran on, in order, when a loss or a preemption moved it."""
    nodes = [str(n) for n in trial.user_attrs.get(NODES, [])]
    return " → ".join(nodes) if len(nodes) > 1 else None


def _lineage(trial: optuna.trial.FrozenTrial) -> str:
    """PBT: whose checkpoint a member copied and when, in words."""
    return "; ".join(
        f"copied trial {e['from']} at {e['epoch']} epochs"
        for e in trial.user_attrs.get(LINEAGE, [])
    )


def _schedule(trial: optuna.trial.FrozenTrial, first: Mapping[str, Any]) -> list[dict[str, Any]]:
    """PBT: a member's params over epochs, each entry in force from ``epoch`` epochs trained
    (``sweep.scheduling.population.schedule`` reads the same attributes)."""
    out: list[dict[str, Any]] = [{"epoch": 0, "params": dict(first)}]
    for entry in trial.user_attrs.get(LINEAGE, []):
        out.append(
            {
                "epoch": int(entry["epoch"]),
                "from": int(entry["from"]),
                "params": {**out[-1]["params"], **entry["params"]},
            }
        )
    return out


def _last(trial: optuna.trial.FrozenTrial) -> float | None:
    values = trial.intermediate_values
    return values[max(values)] if values else None
