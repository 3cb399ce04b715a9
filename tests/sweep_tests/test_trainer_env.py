"""``trainer.env``: set in the trial's process while it runs, gone after (a worker process
runs other trials next). On a ``ray start`` cluster: test_ray_start_cluster.py."""

from __future__ import annotations

import json
import os

from sweep import Sweep
from sweep.backends import InProcessBackend
from tests.sweep_tests import toy_trainers


def test_trainer_env_is_set_for_the_trial_only(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_TEST_SOURCE", "from-the-coordinator")
    monkeypatch.delenv("GREETING", raising=False)
    Sweep(
        name="env",
        search_space={"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        trainer=toy_trainers.env_echo,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"echo": "GREETING,FILLED"},
        trainer_env={"GREETING": "hello", "FILLED": "${SWEEP_TEST_SOURCE}"},
        limits={"max_total_trials": 2},
    ).run()
    seen = [json.loads(p.read_text()) for p in tmp_path.glob("env/trials/*/outputs/env.json")]
    assert seen == [{"GREETING": "hello", "FILLED": "from-the-coordinator"}] * 2
    assert "GREETING" not in os.environ
