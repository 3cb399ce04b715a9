"""What a sweep returns: its trials, its best trial, and where its best model went."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd


@dataclass(frozen=True)
class BestTrial:
    number: int | None
    """The trial's number in the study; None for an Azure ML sweep (see SweepResult.job)."""
    params: Mapping[str, Any]
    value: float
    metrics: Mapping[str, Any]
    model_path: Path | None
    schedule: list[dict[str, Any]] | None = None
    """PBT: its params over epochs (the trials frame's ``schedule``); the params above are
    the last entry's. None for every other sampler."""
    values: tuple[float, ...] = ()
    """With several objectives: its value for each, in order (``value`` is the first)."""


@dataclass(frozen=True)
class FrontMember:
    """A trial on the Pareto front of a sweep of several objectives."""

    number: int
    values: tuple[float, ...]
    params: Mapping[str, Any]


@dataclass(frozen=True)
class SweepResult:
    name: str
    sweep_dir: Path
    study: optuna.Study | None
    """The Optuna study; None for a sweep that ran on Azure ML (its trials live there)."""
    best: BestTrial | None
    trials: pd.DataFrame
    """One row per trial (empty for an Azure ML sweep: see its studio page)."""
    best_dir: Path | None = None
    """``best/``: the best model, its checked ONNX file and its card."""
    registered: str | None = None
    """``NAME:VERSION`` in the model registry, when the sweep registers its best model."""
    job: str | None = None
    """The Azure ML sweep job's name, for a sweep that ran there."""
    outputs: Path | None = None
    """An Azure ML sweep's best trial's outputs, as downloaded."""
    workspace_model: str | None = None
    """``NAME:VERSION`` of the best trial's outputs registered in the Azure ML workspace."""
    pareto_front: tuple[FrontMember, ...] = ()
    """Several objectives: the completed trials no other dominates (among those meeting the
    constraints), in trial order; ``best`` is the pick among them."""
    finish_s: float | None = None
    """Seconds the end of the run took: trials.csv, report.html, the best model's ONNX export
    and check, its registration."""

    @property
    def counts(self) -> dict[str, int]:
        if self.trials.empty:
            return {}
        return {str(k): int(v) for k, v in self.trials["state"].value_counts().items()}

    @property
    def epochs_saved(self) -> int:
        """Epochs that pruning did not have to run (asked minus run, over pruned trials)."""
        from reports.frames import epochs_saved

        return epochs_saved(self.trials)[0]
