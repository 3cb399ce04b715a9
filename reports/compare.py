"""One or several sweeps gathered for comparison: their trials and curves as frames."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from reports.frames import curves_frame


@dataclass(frozen=True)
class SweepData:
    name: str
    metric: str
    goal: str
    trials: pd.DataFrame
    curves: pd.DataFrame
    sweep_dir: Path
    objectives: tuple[tuple[str, str], ...] = ()
    """Several objectives: (metric, goal) of each, in order; ``metric``/``goal`` are the
    first. Empty for one."""
    lineage: str = ""
    """Where the sweep's knowledge came from besides its own trials (a warm start), said
    under its summary; empty for a sweep that started cold."""

    @property
    def params(self) -> list[str]:
        return [c[len("param_") :] for c in self.trials.columns if c.startswith("param_")]

    @property
    def maximize(self) -> bool:
        return self.goal == "maximize"


@dataclass(frozen=True)
class Comparison:
    sweeps: list[SweepData]

    @property
    def trials(self) -> pd.DataFrame:
        """Every trial of every sweep, with a ``sweep`` column first."""
        frames = [s.trials.assign(sweep=s.name) for s in self.sweeps]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return frame[["sweep", *[c for c in frame.columns if c != "sweep"]]]

    @property
    def curves(self) -> pd.DataFrame:
        frames = [s.curves.assign(sweep=s.name) for s in self.sweeps if not s.curves.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def sweep_data(
    name: str,
    sweep_dir: Path,
    trials: pd.DataFrame,
    metric: str,
    goal: str,
    histories: Iterable[tuple[int, list[dict[str, Any]]]],
    objectives: tuple[tuple[str, str], ...] = (),
    lineage: str = "",
) -> SweepData:
    """A sweep as the report needs it: its trials frame and every trial's reports (for the
    learning curves); plain values, so reports never depends on how a sweep ran or where
    it keeps them."""
    return SweepData(
        name=name,
        metric=metric,
        goal=goal,
        trials=trials,
        curves=curves_frame(histories),
        sweep_dir=sweep_dir,
        objectives=objectives,
        lineage=lineage,
    )
