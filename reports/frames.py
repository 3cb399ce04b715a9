"""Learning curves as a tidy pandas frame, and what pruning saved as read from the trials
frame (``sweep.records.trials_table`` builds it: reports never read a study's attributes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd


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
    return (
        f"{len(pruned)} pruned trials ran {ran} epochs; against the completed trials' "
        f"{length:.3g} epochs each, pruning saved about {estimate} (an estimate)"
    )


def curves_frame(histories: Iterable[tuple[int, list[dict[str, Any]]]]) -> pd.DataFrame:
    """Every trial's per-epoch metrics, long format: trial, epoch, and one column per metric.

    ``histories``: each trial's number and reports, as ``sweep.records.layout.histories(sweep_dir)``
    reads them (the caller reads the sweep's folder; reports only shape data).
    """
    rows = [{"trial": number, **report} for number, history in histories for report in history]
    return pd.DataFrame(rows)
