"""A Ray worker node lost mid-trial, on a real ``ray start`` cluster (a head with no CPUs and
two worker nodes on this machine): the trial on it continues on the other node from its last
reported epoch."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sweep.records.layout import read_history, trial_dir
from tests.sweep_tests.ray_start import ray_start_cluster, token_auth

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 8
# The head notices a silent node within about 3 s instead of Ray's default 30 s or so.
FAST_HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_timeout_ms": "1000",
}


def _spans(folder: Path) -> list[dict]:
    path = folder / "outputs" / "span.jsonl"
    if not path.exists():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if "from" in r]


@contextlib.contextmanager
def _two_trials_on_two_nodes(
    tmp_path: Path,
    name: str,
    head_env: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[str], Path, str, dict[str, str]]]:
    """``sweep run`` of two 8-epoch trials on a ``ray start`` cluster of a head with no CPUs
    and two 1-CPU nodes, once both have reported twice (one trial per node). Yields the run,
    the sweep's folder, the cluster's address and the environment the CLI was given."""
    sweep_file = {
        "name": name,
        "trainer": {
            "entry": "tests.sweep_tests.toy_trainers:slow_checkpointing",
            "args": {"num_epochs": EPOCHS, "epoch_s": 1.0},
        },
        "search_space": {"x": {"type": "choice", "values": [0.2, 0.4]}},
        "objective": {"primary_metric": "best_val_acc", "goal": "maximize"},
        "sampling_algorithm": "grid",
        "limits": {"max_total_trials": 2, "max_concurrent_trials": 2},
    }
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(sweep_file))
    sweep_dir = tmp_path / "sweeps" / name
    with ray_start_cluster(tmp_path, head_cpus=0, node_cpus=(1, 1), head_env=head_env) as address:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_AUTH_MODE")}
        env["PYTHONPATH"] = str(ROOT)
        run = subprocess.Popen(
            [sys.executable, "-m", "sweep.cli", "run", f"{name}.yaml", "--compute", address],
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if all(len(read_history(trial_dir(sweep_dir, n))) >= 2 for n in (0, 1)):
                break
            time.sleep(0.2)
        else:
            run.kill()
            raise AssertionError(f"trials did not start: {run.communicate()}")
        try:
            yield run, sweep_dir, address, env
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()


@pytest.mark.slow
def test_a_lost_worker_node_s_trial_continues_on_the_other_node(tmp_path):
    """Only the lost node's trial is interrupted: the reports of every trial go straight to
    the coordinator, through no process a node's loss could take with it."""
    with _two_trials_on_two_nodes(tmp_path, "nodes", FAST_HEALTH_CHECKS) as (run, sweep_dir, *_):
        (victim,) = _spans(trial_dir(sweep_dir, 0))
        (other,) = _spans(trial_dir(sweep_dir, 1))
        assert victim["raylet"] != other["raylet"]  # one trial per node
        os.kill(victim["raylet"], signal.SIGKILL)  # the node's raylet: the node is gone
        lost_after = len(read_history(trial_dir(sweep_dir, 0)))
        out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    assert "trials: 2 complete" in out
    folder = trial_dir(sweep_dir, 0)
    assert [r["epoch"] for r in read_history(folder)] == list(range(EPOCHS))
    starts = _spans(folder)
    assert len(starts) == 2 and starts[1]["raylet"] == other["raylet"]
    # It continued from its last report: at most the epoch in progress ran twice.
    assert starts[1]["from"] >= lost_after - 1 >= 1
    ran = (folder / "outputs" / "ran.jsonl").read_text().splitlines()
    assert len(ran) <= EPOCHS + 1
    assert len(_spans(trial_dir(sweep_dir, 1))) == 1  # the other trial ran on, untouched


@pytest.mark.slow
def test_a_drained_node_s_trial_is_told_saves_and_continues_on_the_other_node(tmp_path):
    """``ray drain-node`` (what an autoscaler does before it takes a spot node back) on the
    node of trial 0: its worker hears of it, the trainer stops at its next report, and the
    trial continues on the other node from there: no epoch twice, no loss counted."""
    with _two_trials_on_two_nodes(tmp_path, "drain") as (run, sweep_dir, address, env):
        (victim,) = _spans(trial_dir(sweep_dir, 0))
        (other,) = _spans(trial_dir(sweep_dir, 1))
        assert victim["node"] != other["node"]
        subprocess.run(
            [
                str(Path(sys.executable).parent / "ray"),
                "drain-node",
                f"--address={address.removeprefix('ray:')}",
                f"--node-id={victim['node']}",
                "--reason=DRAIN_NODE_REASON_PREEMPTION",
                "--reason-message=spot instance reclaimed",
                "--deadline-remaining-seconds=120",
            ],
            env={**env, "RAY_AUTH_MODE": "token"} if token_auth() else env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    assert "trials: 2 complete" in out
    folder = trial_dir(sweep_dir, 0)
    assert [r["epoch"] for r in read_history(folder)] == list(range(EPOCHS))
    starts = _spans(folder)
    assert len(starts) == 2 and starts[1]["node"] == other["node"]
    assert "(preempted after epoch" in out  # the live view: "continues from epoch N (...)"
    ran = [json.loads(x)["epoch"] for x in (folder / "outputs" / "ran.jsonl").open()]
    assert ran == list(range(EPOCHS))  # stopped at a report: nothing trained twice
    # Status names where it went: the drained node, then the other.
    status = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "status", "drain"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    moved = f"ran on nodes {victim['node'][:8]} → {other['node'][:8]}"
    assert moved in status.stdout, status.stdout
