"""Trials and learning curves as tidy pandas frames, straight from a sweep's study and folder."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

STATE_NAMES = {
    TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
    TrialState.RUNNING: "running", TrialState.WAITING: "waiting",
}


def trials_frame(study: optuna.Study, epochs_asked: int | None = None,
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
    rerun_as = {t.user_attrs["replaces"]: t.number for t in trials if "replaces" in t.user_attrs}
    rows: list[dict[str, Any]] = []
    pbt = any(t.user_attrs.get("lineage") for t in trials)
    several = len(study.directions) > 1
    constrained = any(t.constraints for t in trials)
    for t in trials:
        first = dict(decode(t.params) if decode and t.params else t.params)
        # What it trains with now: PBT's last explore step, or `sweep continue`'s epochs.
        overrides = t.user_attrs.get("overrides", {})
        params = {**first, **{k: v for k, v in overrides.items() if k in first}}
        asked = params.get("num_epochs", epochs_asked)
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        reason = t.user_attrs.get("reason", "")
        if t.number in rerun_as and not reason:
            reason = "interrupted"
        if "continues" in t.user_attrs and not reason:
            reason = f"continues trial {t.user_attrs['continues']}"
        rows.append({
            "number": t.number,
            "state": "paused" if t.state == TrialState.RUNNING and t.user_attrs.get("paused_at")
            else STATE_NAMES.get(t.state, t.state.name.lower()),
            "value": (t.values[0] if several else t.value) if t.state == TrialState.COMPLETE
            else _last(t),
            **({"values": list(t.values) if t.state == TrialState.COMPLETE and t.values
                else None} if several else {}),
            **({"feasible": all(v <= 0 for v in t.constraints.values())
                if t.constraints else None} if constrained else {}),
            **{f"param_{k}": v for k, v in params.items()},
            "epochs_run": t.user_attrs.get("epochs", len(t.intermediate_values)),
            "epochs_asked": asked,
            "reason": reason,
            "rerun_as": rerun_as.get(t.number),
            "restarts": int(t.user_attrs.get("restarts", 0)),
            "coordinator": t.user_attrs.get("coordinator"),
            **({"lineage": _lineage(t), "schedule": _schedule(t, first)} if pbt else {}),
            "start": t.datetime_start,
            "duration_s": duration,
        })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


def _lineage(trial: optuna.trial.FrozenTrial) -> str:
    """PBT: whose checkpoint a member copied and when, in words."""
    return "; ".join(f"copied trial {e['from']} at {e['epoch']} epochs"
                     for e in trial.user_attrs.get("lineage", []))


def _schedule(trial: optuna.trial.FrozenTrial, first: Mapping[str, Any]
              ) -> list[dict[str, Any]]:
    """PBT: a member's params over epochs, each entry in force from ``epoch`` epochs trained
    (``sweep.population.schedule`` reads the same attributes)."""
    out: list[dict[str, Any]] = [{"epoch": 0, "params": dict(first)}]
    for entry in trial.user_attrs.get("lineage", []):
        out.append({"epoch": int(entry["epoch"]), "from": int(entry["from"]),
                    "params": {**out[-1]["params"], **entry["params"]}})
    return out


def epochs_saved(trials: pd.DataFrame) -> tuple[int, int]:
    """(epochs pruning did not run, epochs asked in all), over trials that say what they asked."""
    if trials.empty:
        return 0, 0
    frame = trials.dropna(subset=["epochs_asked"])
    pruned = frame[frame["state"] == "pruned"]
    saved = (pruned["epochs_asked"] - pruned["epochs_run"]).clip(lower=0).sum()
    return int(saved), int(frame["epochs_asked"].sum())


def pruning_saving(trials: pd.DataFrame) -> str:
    """What pruning saved, in words that are true when trials do not say how many epochs
    they asked for (a command trial's script decides): then the pruned trials' epochs, and
    the saving against the completed trials' length, marked as an estimate."""
    saved, asked = epochs_saved(trials)
    if asked:
        return f"pruning saved {saved} of {asked} epochs asked ({saved / asked:.0%})"
    if trials.empty:
        return "nothing was pruned"
    pruned = trials[trials["state"] == "pruned"]
    if pruned.empty:
        return "nothing was pruned"
    ran = int(pruned["epochs_run"].sum())
    complete = trials[trials["state"] == "complete"]["epochs_run"]
    if complete.empty:
        return f"{len(pruned)} pruned trials ran {ran} epochs"
    length = float(complete.mean())
    estimate = max(round(len(pruned) * length - ran), 0)
    return (f"{len(pruned)} pruned trials ran {ran} epochs; against the completed trials' "
            f"{length:.3g} epochs each, pruning saved about {estimate} (an estimate)")


def _last(trial: optuna.trial.FrozenTrial) -> float | None:
    values = trial.intermediate_values
    return values[max(values)] if values else None


def curves_frame(histories: Iterable[tuple[int, list[dict[str, Any]]]]) -> pd.DataFrame:
    """Every trial's per-epoch metrics, long format: trial, epoch, and one column per metric.

    ``histories``: each trial's number and reports, as ``sweep.layout.histories(sweep_dir)``
    reads them (the caller reads the sweep's folder; reports only shape data).
    """
    rows = [{"trial": number, **report} for number, history in histories
            for report in history]
    return pd.DataFrame(rows)
