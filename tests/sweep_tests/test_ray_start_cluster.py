"""A Ray cluster started as the README says (``ray start --head``, then ``ray start
--address``), with Ray's token authentication as it comes, and no trainer code installed on
its nodes: a command sweep and a function-trainer sweep both run on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.sweep_tests.ray_start import ray_start_cluster as start_cluster

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).parent / "command_scripts"


@pytest.fixture
def ray_start_cluster(tmp_path):
    with start_cluster(tmp_path) as address:
        yield address


def _cli(
    *args: str, cwd: Path, pythonpath: str | None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_AUTH_MODE")}
    env.update(extra_env or {})
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [sys.executable, "-m", "sweep.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_command_and_function_sweeps_on_a_ray_start_cluster(ray_start_cluster, tmp_path):
    job = {
        "type": "sweep",
        "trial": {
            "code": str(SCRIPTS),
            "environment": "azureml:x@latest",
            "command": "python curve.py --quality ${{search_space.quality}} --epochs 3 "
            "--sleep 0.1 --output_dir ${{outputs.model}}",
        },
        "outputs": {"model": {"type": "uri_folder"}},
        "search_space": {"quality": {"type": "choice", "values": [0.9, 0.5]}},
        "objective": {"primary_metric": "acc", "goal": "maximize"},
        "sampling_algorithm": "grid",
        "limits": {"max_total_trials": 2, "max_concurrent_trials": 2},
    }
    (tmp_path / "job.yml").write_text(yaml.safe_dump(job))
    run = _cli("run", "job.yml", "--compute", ray_start_cluster, cwd=tmp_path, pythonpath=None)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (
        tmp_path / "sweeps" / "job" / "best" / "outputs" / "model" / "weights.txt"
    ).read_text() == "0.9"

    # The trainer's module is importable where the coordinator runs, not on the nodes:
    # it reaches them as Ray's py_modules. trainer.env reaches the nodes' trial processes,
    # a ${VAR} filled from the coordinator's environment (the nodes were started without).
    fn = {
        "name": "fn",
        "trainer": {
            "entry": "tests.sweep_tests.toy_trainers:env_echo",
            "args": {"echo": "GREETING,API_TOKEN"},
            "env": {"GREETING": "hello", "API_TOKEN": "${TEST_TOKEN}"},
        },
        "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        "objective": {"primary_metric": "best_val_acc", "goal": "maximize"},
        "limits": {"max_total_trials": 2, "max_concurrent_trials": 2},
    }
    (tmp_path / "fn.yaml").write_text(yaml.safe_dump(fn))
    run = _cli(
        "run",
        "fn.yaml",
        "--compute",
        ray_start_cluster,
        cwd=tmp_path,
        pythonpath=str(ROOT),
        extra_env={"TEST_TOKEN": "tok-4711-secret"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "trials: 2 complete" in run.stdout
    seen = [
        json.loads(p.read_text())
        for p in (tmp_path / "sweeps" / "fn" / "trials").glob("*/outputs/env.json")
    ]
    assert seen == [{"GREETING": "hello", "API_TOKEN": "tok-4711-secret"}] * 2
    assert "tok-4711" not in (tmp_path / "sweeps" / "fn" / "sweep.yaml").read_text()
