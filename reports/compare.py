"""One or several sweeps gathered for comparison: their trials and curves as frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pandas as pd

from reports.frames import curves_frame

if TYPE_CHECKING:
    from sweep.api import SweepResult


@dataclass(frozen=True)
class SweepData:
    name: str
    metric: str
    goal: str
    study: optuna.Study
    trials: pd.DataFrame
    curves: pd.DataFrame
    sweep_dir: Path
    latent_suffix: str = "__latent"

    @property
    def params(self) -> list[str]:
        return [c[len("param_"):] for c in self.trials.columns if c.startswith("param_")]

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


def compare(names: Sequence[str], root: str | Path | None = None) -> Comparison:
    """Loads sweeps by name from the sweeps folder.

    Example:
        >>> from reports import compare
        >>> compare(["digits-resnet18"]).trials.head()    # doctest: +SKIP
    """
    from sweep.api import Sweep

    sweeps = []
    for name in names:
        sweep = Sweep.load(name, root=root)
        sweeps.append(sweep_data(sweep.result(), sweep.config.objective.primary_metric,
                                 sweep.config.objective.goal))
    return Comparison(sweeps)


def sweep_data(result: SweepResult, metric: str, goal: str) -> SweepData:
    """A finished (or running) sweep's result, ready for the report."""
    return SweepData(name=result.name, metric=metric, goal=goal, study=result.study,
                     trials=result.trials, curves=curves_frame(result.sweep_dir),
                     sweep_dir=result.sweep_dir)
