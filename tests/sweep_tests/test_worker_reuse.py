"""Trial workers are processes reused from trial to trial: as many as run at once, not one
per trial (a worker per trial once cost ~1 s a trial and put the engine behind Ray Tune)."""

from __future__ import annotations

import json

import pytest

from sweep import Sweep
from tests.sweep_tests import toy_trainers


@pytest.mark.slow
def test_a_50_trial_sweep_runs_on_as_many_workers_as_run_at_once(tmp_path, ray_local):
    from sweep.backends.ray_local import LocalRayBackend

    backend = LocalRayBackend()
    result = Sweep(
        name="reuse",
        search_space={"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
        trainer=toy_trainers.quadratic,
        root=tmp_path,
        backend=backend,
        trainer_args={"num_epochs": 2},
        sampling_algorithm={"type": "random", "seed": 0},
        limits={"max_total_trials": 50, "max_concurrent_trials": 2},
    ).run()
    assert result.counts == {"complete": 50}
    pids = set()
    for folder in (tmp_path / "reuse" / "trials").iterdir():
        spans = (folder / "outputs" / "span.jsonl").read_text().splitlines()
        pids |= {json.loads(line)["pid"] for line in spans if "pid" in line}
    assert backend.workers_started == 2
    assert len(pids) == 2  # the processes that ran the trials, counted from the trials
