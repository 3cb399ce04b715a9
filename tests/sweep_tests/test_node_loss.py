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
from collections.abc import Callable, Iterator
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
    before: Callable[[str, dict[str, str]], None] | None = None,
) -> Iterator[tuple[subprocess.Popen[str], Path, str, dict[str, str]]]:
    """``sweep run`` of two 8-epoch trials on a ``ray start`` cluster of a head with no CPUs
    and two 1-CPU nodes, once both have reported twice (one trial per node). Yields the run,
    the sweep's folder, the cluster's address and the environment the CLI was given;
    ``before(address, env)`` runs on the cluster first."""
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
        if before is not None:
            before(address, env)
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
    """Its sweep is a coordinator started after another was killed on the same cluster
    (``_hub_stays_on_the_head``): the soak benchmark's lost hub."""
    with _two_trials_on_two_nodes(
        tmp_path, "nodes", FAST_HEALTH_CHECKS, before=_hub_stays_on_the_head
    ) as (run, sweep_dir, *_):
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


HUB_WHERE = """
import sys, time
from sweep.backends.ray_auth import join_cluster, use_token_if_available
use_token_if_available()  # before Ray is imported, as the command line does
import ray
from sweep.backends.ray_actors import new_hub
join_cluster(sys.argv[1])
heads = [n["NodeID"] for n in ray.nodes()
         if n["Alive"] and "node:__internal_head__" in n["Resources"]]
hub = new_hub()
where = ray.get(hub.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()))
print("on the head" if where in heads else "elsewhere", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hub_stays_on_the_head(address: str, env: dict[str, str]) -> None:
    """A coordinator's report hub on a cluster whose head has no CPUs, after another
    coordinator was killed: with soft node affinity Ray placed the second hub on a worker
    node (the head looked unavailable while the dead driver's workers were cleaned up), and
    that node's loss then ended every running trial. Both hubs must be on the head."""
    address = address.removeprefix("ray:")
    first = subprocess.Popen(
        [sys.executable, "-c", HUB_WHERE, address, "60"], env=env, text=True, stdout=subprocess.PIPE
    )
    assert first.stdout is not None
    assert first.stdout.readline().strip() == "on the head"
    first.kill()  # kill -9, as a coordinator's machine going away
    first.wait()
    second = subprocess.run(
        [sys.executable, "-c", HUB_WHERE, address, "0"],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert second.stdout.strip() == "on the head", second.stderr[-2000:]
