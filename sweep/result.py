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
    number: int
    params: Mapping[str, Any]
    value: float
    metrics: Mapping[str, Any]
    model_path: Path | None


@dataclass(frozen=True)
class SweepResult:
    name: str
    sweep_dir: Path
    study: optuna.Study
    best: BestTrial | None
    trials: pd.DataFrame
    best_dir: Path | None = None
    """``best/``: the best model, its checked ONNX file and its card."""
    registered: str | None = None
    """``NAME:VERSION`` in the model registry, when the sweep registers its best model."""

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
