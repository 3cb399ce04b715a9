"""A sweep in the user's MLflow tracking server, as Azure ML shows one: a parent run for the
sweep (its settings as params, the best value, ``report.html`` and the best model's card as
artifacts) and a child run per trial (``mlflow.parentRunId``) with its params, every reported
metric as a history with step = epoch, and its end state as tags.

On when the file says ``tracking: {mlflow: URI}`` or ``MLFLOW_TRACKING_URI`` is set (MLflow's
own convention, which Azure ML sets too).
Calls go through one background thread, so a slow server never holds a trial's report; a
server that stops answering gets one warning and the sweep goes on with its records local.
The experiment is the Azure job file's ``experiment_name``, else the sweep's name.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from search_spaces import SweepConfig, clip_message
from sweep.records import layout

logger = logging.getLogger(__name__)

RUN_FILE = "mlflow-run.txt"
"""In the sweep folder: the parent run's id, so ``resume`` logs into the same run."""
_STATES = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


RUN_PARAMS = ("sweep.mlflow_uri", "sweep.mlflow_run")
"""What a trial that logs its own metrics (a command trial) finds in its params: the server
and the run to log into (see CommandTrainer)."""


class NoTracking:
    """What a sweep tells a tracker, when there is none."""

    def start_sweep(self) -> None: ...

    def trial_started(self, number: int, params: Mapping[str, Any]) -> dict[str, str]:
        """Returns what the trial needs to log to its own run (nothing, here)."""
        return {}

    def trial_reported(self, number: int, epoch: int, metrics: Mapping[str, Any]) -> None: ...
    def trial_ended(self, number: int, state: str, value: float | None, reason: str) -> None: ...
    def end_sweep(self, best: float | None, files: list[Path]) -> None: ...


def make_tracker(config: SweepConfig, sweep_dir: Path, *, own_metrics: bool = False) -> NoTracking:
    """``own_metrics``: trials log their metrics themselves (command trials, with MLflow)."""
    uri = config.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return NoTracking()
    experiment = str((config.azure_job or {}).get("experiment_name") or config.name)
    return MlflowTracker(uri, experiment, config, sweep_dir, own_metrics=own_metrics)


class MlflowTracker(NoTracking):
    def __init__(
        self,
        uri: str,
        experiment: str,
        config: SweepConfig,
        sweep_dir: Path,
        *,
        own_metrics: bool = False,
    ) -> None:
        self.uri, self.experiment, self.config, self.sweep_dir = uri, experiment, config, sweep_dir
        self.own_metrics = own_metrics
        self._calls: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._runs: dict[int, str] = {}
        self._parent = ""
        self._broken = False
        self._lock = threading.Lock()  # the caller's thread and the worker, one call at a time
        self._thread = threading.Thread(target=self._work, name="mlflow-tracking", daemon=True)
        self._thread.start()

    # -- what the sweep says ------------------------------------------------------------------

    def start_sweep(self) -> None:
        # At once, not queued: a command trial's run needs its parent's id when it starts.
        problem = unreachable(self.uri)
        if problem is not None:  # one look, seconds at most, instead of MLflow's retries
            self._give_up(problem)
            return
        self._guarded(self._start_sweep)

    def trial_started(self, number: int, params: Mapping[str, Any]) -> dict[str, str]:
        if not self.own_metrics:
            self._call(lambda: self._trial_started(number, dict(params)))
            return {}
        self._guarded(lambda: self._trial_started(number, dict(params)))
        run = self._runs.get(number)
        return dict(zip(RUN_PARAMS, (self.uri, run), strict=True)) if run else {}

    def trial_reported(self, number: int, epoch: int, metrics: Mapping[str, Any]) -> None:
        if self.own_metrics:
            return  # the script logged them into its run already
        stamp = int(time.time() * 1000)
        values = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        self._call(lambda: self._log(number, epoch, values, stamp))

    def trial_ended(self, number: int, state: str, value: float | None, reason: str) -> None:
        self._call(lambda: self._trial_ended(number, state, value, reason))

    def end_sweep(self, best: float | None, files: list[Path]) -> None:
        self._call(lambda: self._end_sweep(best, files))
        self._calls.put(None)
        self._thread.join(timeout=60)

    # -- the thread that talks to MLflow ---------------------------------------------------------

    def _call(self, fn: Callable[[], None]) -> None:
        if not self._broken:
            self._calls.put(fn)

    def _work(self) -> None:
        while (fn := self._calls.get()) is not None:
            self._guarded(fn)

    def _guarded(self, fn: Callable[[], None]) -> None:
        if self._broken:
            return
        with self._lock:
            try:
                fn()
            except Exception as exc:  # the server, the network, a refused value
                self._give_up(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def _give_up(self, why: str) -> None:
        self._broken = True
        logger.warning(
            "tracking: MLflow at %s is not answering (%s); the sweep goes on and "
            "keeps its records in %s",
            self.uri,
            clip_message(why),
            self.sweep_dir,
        )

    @property
    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        # MLflow prints a "View run … at" line to stdout as each run ends: into the live view
        # (and a library prints nothing). Unless the user asked for them, they are off.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        # MLflow retries a failed request 7 times with doubling waits (255 s in all) and
        # waits 120 s for an answer: a server that dies mid-sweep would hold the calls that
        # must be made at once (a command trial's run). Seconds, unless the user chose.
        for name, value in _PATIENCE.items():
            os.environ.setdefault(name, value)
        if _is_file_store(self.uri):  # the user named one: MLflow 3 refuses it unless told
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        if not hasattr(self, "_client"):
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def _start_sweep(self) -> None:
        from mlflow.entities import Param

        client = self.client
        found = client.get_experiment_by_name(self.experiment)
        self._experiment_id = (
            found.experiment_id if found is not None else client.create_experiment(self.experiment)
        )
        saved = self.sweep_dir / RUN_FILE
        if saved.is_file():
            self._parent = saved.read_text().strip()
            return
        run = client.create_run(
            self._experiment_id,
            run_name=self.config.name,
            tags={"sweep.name": self.config.name, "sweep.kind": "sweep"},
        )
        self._parent = run.info.run_id
        saved.write_text(self._parent + "\n")
        settings = {
            "sampling_algorithm": self.config.sampling_algorithm.type,
            "early_termination": self.config.early_termination.type,
            "objective": f"{self.config.objective.goal} {self.config.objective.primary_metric}",
            "max_total_trials": self.config.limits.max_total_trials,
            "max_concurrent_trials": self.config.limits.max_concurrent_trials,
            **{f"search_space.{k}": v.type for k, v in self.config.search_space.items()},
        }
        client.log_batch(
            self._parent, params=[Param(k, str(v)[:6000]) for k, v in settings.items()]
        )

    def _trial_started(self, number: int, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        if number in self._runs:
            return  # a trial that continues keeps its run
        run = self.client.create_run(
            self._experiment_id,
            run_name=f"trial {number}",
            tags={
                "mlflow.parentRunId": self._parent,
                "sweep.name": self.config.name,
                "sweep.trial": str(number),
            },
        )
        self._runs[number] = run.info.run_id
        self.client.log_batch(
            run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()]
        )

    def _log(self, number: int, epoch: int, values: dict[str, float], stamp: int) -> None:
        from mlflow.entities import Metric

        run = self._runs.get(number)
        if run is not None and values:
            self.client.log_batch(
                run, metrics=[Metric(k, v, stamp, epoch) for k, v in values.items()]
            )

    def _trial_ended(self, number: int, state: str, value: float | None, reason: str) -> None:
        run = self._runs.pop(number, None)
        if run is None:
            return
        self.client.set_tag(run, "sweep.state", state.lower())
        if reason:
            self.client.set_tag(run, "sweep.reason", reason[:5000])
        self.client.set_terminated(run, _STATES.get(state, "FAILED"))

    def _end_sweep(self, best: float | None, files: list[Path]) -> None:
        if not self._parent:
            return
        if best is not None:
            self.client.log_metric(
                self._parent, f"best_{self.config.objective.primary_metric}", best
            )
        for path in files:
            if path.is_file():
                self.client.log_artifact(self._parent, str(path))
        self.client.set_terminated(self._parent, "FINISHED")


_PATIENCE = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
PROBE_S = 3.0
"""How long the first look at a tracking server may take."""


def _is_file_store(uri: str) -> bool:
    return (
        uri.startswith("file:")
        or "://" not in uri
        and not uri.startswith(("databricks", "azureml"))
    )


def unreachable(uri: str) -> str | None:
    """Why an http(s) tracking server cannot be reached now (None: it can, or the URI is
    not one to connect to)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname, port), timeout=PROBE_S).close()
    except (OSError, ValueError) as exc:
        return f"{parts.hostname}:{parts.port or ''}: {exc}"
    return None


def artifacts(sweep_dir: Path) -> list[Path]:
    """What the parent run keeps: the report and the best model's card."""
    return [sweep_dir / layout.REPORT_HTML, sweep_dir / layout.BEST / layout.CARD]
