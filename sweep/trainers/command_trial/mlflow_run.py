"""The trial's MLflow run: created before the script starts, read while it runs.

The script needs no change: it finds the run through MLflow's own environment variables
(``MLFLOW_TRACKING_URI``, ``MLFLOW_RUN_ID``, as Azure ML sets them), so ``mlflow.log_metric``,
``mlflow.start_run()`` and ``mlflow.autolog()`` all write to it. The store is MLflow's file
store in the trial's folder: no server, and MLflow's own client reads it back (a read of a
metric's history costs about 0.5 ms here).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# MLflow 3 refuses its file store unless asked for it explicitly.
_FILE_STORE = {"MLFLOW_ALLOW_FILE_STORE": "true"}
READ_TRIES = 25
"""Reads of a file store that meet a metric being written, tried again every 20 ms."""

T = TypeVar("T")


@dataclass
class MlflowRun:
    """One run in ``store`` (a folder), or on the user's tracking server (``server``, when the
    sweep is tracked there); ``new_values`` returns what was logged since last."""

    store: Path
    run_id: str = ""
    experiment_id: str = ""
    server: str = ""
    _seen: dict[str, int] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return self.server or self.store.resolve().as_uri()

    def client(self) -> Any:
        if not self.server:
            os.environ.update(_FILE_STORE)
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def attach(self) -> MlflowRun:
        """Uses the existing ``run_id`` on ``server`` (made by the sweep's tracker)."""
        self._client = self.client()
        self.experiment_id = self._client.get_run(self.run_id).info.experiment_id
        return self

    def create(self, name: str) -> MlflowRun:
        client = self.client()
        # A trial that continues from its checkpoint logs to a new run beside the first.
        existing = client.get_experiment_by_name("sweep-trial")
        self.experiment_id = (
            existing.experiment_id
            if existing is not None
            else client.create_experiment("sweep-trial")
        )
        self.run_id = client.create_run(self.experiment_id, run_name=name).info.run_id
        self._client = client
        return self

    def env(self) -> dict[str, str]:
        """What the script's process needs to log to this run."""
        return {
            **({} if self.server else _FILE_STORE),
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_RUN_ID": self.run_id,
            "MLFLOW_EXPERIMENT_ID": self.experiment_id,
        }

    def new_values(self, metric: str) -> list[float]:
        """Values of ``metric`` logged since the last call, in the order they were logged."""
        history = self._read(lambda: self._client.get_metric_history(self.run_id, metric))
        history.sort(key=lambda m: (m.timestamp, m.step))
        seen = self._seen.get(metric, 0)
        self._seen[metric] = len(history)
        return [m.value for m in history[seen:]]

    def latest(self) -> tuple[dict[str, float], dict[str, str]]:
        """The last value of every metric logged, and every param."""
        data = self._read(lambda: self._client.get_run(self.run_id).data)
        return dict(data.metrics), dict(data.params)

    def _read(self, read: Callable[[], T]) -> T:
        """``read()``, again shortly when it met a file the script is writing: MLflow's file
        store creates a metric's file before it writes its first line (``mlflow.autolog()``
        logs a dozen at once), and a read in between says "Metric 'x' is malformed"."""
        from mlflow.exceptions import MlflowException

        for _ in range(READ_TRIES - 1):
            try:
                return read()
            except (ValueError, MlflowException):
                if self.server:
                    raise
                time.sleep(0.02)
        return read()
