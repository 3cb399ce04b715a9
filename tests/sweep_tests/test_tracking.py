"""A sweep logged to a real MLflow tracking server (``mlflow server``, SQLite backend)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweep import Sweep
from sweep.backends import InProcessBackend
from tests.sweep_tests import toy_trainers

SPACE = {"x": {"type": "uniform", "min_value": 0, "max_value": 1}}
needs_server = pytest.mark.skipif(
    shutil.which("mlflow", path=str(Path(sys.executable).parent)) is None,
    reason="the full mlflow package (its server) is not installed (pip install -e '.[dev]')",
)


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            break
        time.sleep(0.3)
    else:
        server.kill()
        raise RuntimeError("mlflow server did not start")
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the tests that leave it running (each logs to its own experiment):
    a server's start is seconds of CPU."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as (uri, _):
        yield uri


def _sweep(root: Path, tracking: dict | None = None, name: str = "tracked", **args) -> Sweep:  # type: ignore[no-untyped-def]
    return Sweep(
        name=name,
        search_space=SPACE,
        trainer=toy_trainers.quadratic,
        root=root,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 3, **args},
        limits={"max_total_trials": 3, "max_concurrent_trials": 1},
        early_termination={"type": "none"},
        **({"tracking": tracking} if tracking else {}),
    )


@pytest.mark.slow
@needs_server
@pytest.mark.parametrize("given_by", ["environment", "file"])
def test_a_sweep_is_a_parent_run_with_a_child_run_per_trial(
    tmp_path, monkeypatch, capfd, given_by, shared_server
):
    from mlflow.tracking import MlflowClient

    uri, name = shared_server, f"tracked-{given_by}"
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    if given_by == "environment":  # MLflow's own convention (Azure ML sets it too)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        result = _sweep(tmp_path / "sweeps", name=name).run()
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = _sweep(tmp_path / "sweeps", tracking={"mlflow": uri}, name=name).run()
    assert capfd.readouterr().out == ""  # MLflow's "View run" lines stay out
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweep.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 3
    for child in children:
        number = int(child.data.tags["sweep.trial"])
        history = client.get_metric_history(child.info.run_id, "val_acc")
        assert sorted(m.step for m in history) == [0, 1, 2]
        assert child.data.tags["sweep.state"] == "complete"
        assert (
            float(child.data.params["x"])
            == result.trials.set_index("number").loc[number, "param_x"]
        )
        assert child.info.status == "FINISHED"
    assert parent.data.params["sampling_algorithm"] == "random"
    best = client.get_run(parent.info.run_id).data.metrics["best_best_val_acc"]
    assert best == pytest.approx(result.best.value)
    names = [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert "report.html" in names


def test_a_tracking_key_with_credentials_is_refused(tmp_path, capsys):
    from sweep.cli import main

    (tmp_path / "s.yaml").write_text(
        "search_space: {learning_rate: {type: uniform, "
        "min_value: 0.01, max_value: 0.1}}\n"
        "tracking: {mlflow: 'http://me:pw@host:5000'}\n"
    )
    assert main(["validate", str(tmp_path / "s.yaml")]) == 2
    assert "tracking.mlflow: holds credentials" in capsys.readouterr().err


@pytest.mark.slow
@needs_server
def test_a_tracking_server_that_stops_mid_sweep_costs_one_warning_and_nothing_local(
    tmp_path, monkeypatch, caplog
):
    with mlflow_server(tmp_path) as (uri, server):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

        class StopServer:
            def trial_started(self, number, params):  # type: ignore[no-untyped-def]
                if number == 1:
                    os.killpg(server.pid, signal.SIGKILL)

            def trial_reported(self, number, epoch, value):  # type: ignore[no-untyped-def]
                pass

            def trial_ended(self, number, state, value, reason):  # type: ignore[no-untyped-def]
                pass

        with caplog.at_level(logging.WARNING, logger="sweep.records.tracking"):
            result = _sweep(tmp_path / "sweeps", epoch_s=0.2).run(listener=StopServer())
    assert list(result.trials["state"]) == ["complete"] * 3
    warnings = [r for r in caplog.records if r.name == "sweep.records.tracking"]
    assert len(warnings) == 1 and "is not answering" in warnings[0].getMessage()


@pytest.mark.slow
@needs_server
def test_a_command_trials_script_logs_straight_into_its_child_run(
    tmp_path, monkeypatch, shared_server
):
    """The script's own mlflow.log_metric calls land in the trial's child run on the user's
    server, and the pruner reads the primary metric from there."""
    from mlflow.tracking import MlflowClient

    from sweep.records.layout import read_history, trial_dir
    from tests.sweep_tests.test_command_trials import _job

    path = _job(
        tmp_path,
        "python curve.py --quality ${{search_space.quality}} --epochs 3",
        experiment_name="scripts",
    )
    uri = shared_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = Sweep.from_yaml(
        path, overrides=["compute=local"], root=tmp_path / "sweeps", backend=InProcessBackend()
    ).run()
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("scripts")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweep.kind") == "sweep"]
    children = {
        int(r.data.tags["sweep.trial"]): r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert sorted(children) == [0, 1]
    for number, child in children.items():
        logged = client.get_metric_history(child.info.run_id, "acc")
        assert sorted(m.step for m in logged) == [0, 1, 2]  # the script's own logs
        reports = [r["acc"] for r in read_history(trial_dir(tmp_path / "sweeps" / "job", number))]
        # The pruner's reports, read from the server: the same values.
        assert reports == [m.value for m in sorted(logged, key=lambda m: m.step)]
        assert child.data.tags["sweep.state"] == "complete"
    assert not list((tmp_path / "sweeps" / "job" / "trials").glob("*/mlruns/*/*/metrics"))
    assert result.best is not None
