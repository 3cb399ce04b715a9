"""``sweep run`` as a user runs it: a real subprocess, exit codes, one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from search_spaces import example_path

ROOT = Path(__file__).resolve().parents[2]


def _sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sweep.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_run_status_best_report_on_the_builtin_trainer(tmp_path):
    space = yaml.safe_load(example_path("digits").read_text())
    space["trainer"]["args"].update({"image_size": 16})
    space["search_space"]["num_epochs"] = {"type": "choice", "values": [2]}
    space["limits"] = {"max_total_trials": 2, "max_concurrent_trials": 2}
    space["register"] = {"model_name": "digits-test", "root": str(tmp_path / "models")}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))

    run = _sweep("run", "space.yaml", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "trial 0" in run.stdout and "best: trial" in run.stdout
    assert "registered: digits-test:1" in run.stdout
    assert re.search(r"files: \S+ \(report and best model written in \d+\.\d s\)", run.stdout)
    folder = tmp_path / "sweeps" / "digits-resnet18"
    assert {"sweep.yaml", "study.journal", "trials", "best", "report.html", "trials.csv"} <= {
        p.name for p in folder.iterdir()
    }

    status = _sweep("status", "digits-resnet18", "--json", cwd=tmp_path)
    assert status.returncode == 0 and '"state": "complete"' in status.stdout
    best = _sweep("best", "digits-resnet18", cwd=tmp_path)
    assert best.returncode == 0 and "learning_rate" in best.stdout
    again = _sweep("run", "space.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "sweep resume digits-resnet18" in again.stderr


@pytest.mark.parametrize(
    "args, message, code",
    [
        (["status", "nope"], "no sweep named 'nope'", 2),
        (["resume", "nope"], "no sweep named 'nope'", 2),
        (["run", "missing.yaml"], "missing.yaml: no such file", 2),
        (["run", "space.yaml", "--parallel", "0"], "--parallel: must be 1 or more", 2),
        # Not the user's input: the cluster is away (a failure while running).
        (
            ["run", "space.yaml", "--compute", "ray://127.0.0.1:1"],
            "cannot reach the Ray cluster",
            1,
        ),
        (["models", "show", "nothing"], "no model named 'nothing'", 2),
    ],
)
def test_user_errors_are_one_sentence_with_exit_code(tmp_path, args, message, code):
    space = yaml.safe_load(example_path("digits").read_text())
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    proc = _sweep(*args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "sweeps" / "digits-resnet18" / "study.journal").exists()


def test_help_teaches(tmp_path):
    proc = _sweep("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for word in ("validate", "run", "resume", "status", "report", "models", "export", "exit codes"):
        assert word in proc.stdout


def test_an_entry_that_does_not_import_is_refused_before_any_trial(tmp_path):
    space = {
        "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        "trainer": {"entry": "no_such_package.train:fit"},
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    proc = _sweep("run", "space.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "trainer.entry: cannot import no_such_package.train" in proc.stderr
    assert not (tmp_path / "sweeps").exists()


_WANDB_QUICKSTART = {
    "program": "train.py",
    "name": "sweepdemo",
    "method": "bayes",
    "metric": {"goal": "minimize", "name": "validation_loss"},
    "parameters": {
        "learning_rate": {"min": 0.0001, "max": 0.1},
        "batch_size": {"values": [16, 32, 64]},
        "optimizer": {"values": ["adam", "sgd"]},
    },
}


def test_a_trainer_module_beside_the_sweep_file_imports_from_the_sweep_script(tmp_path):
    """The installed ``sweep`` script, not ``python -m``: only the latter puts the folder it
    runs in on the import path by itself."""
    script = Path(sys.executable).with_name("sweep")
    (tmp_path / "wandb.yaml").write_text(yaml.safe_dump(_WANDB_QUICKSTART))
    (tmp_path / "mytrain.py").write_text(
        "def fit(params, report):\n    return {'validation_loss': params['learning_rate']}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    validate = [str(script), "validate", "wandb.yaml"]
    proc = subprocess.run(
        [*validate, "--trainer", "mytrain:fit"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wandb.yaml: valid" in proc.stdout
    # W&B's own program: the message says what to give instead, for the command line.
    proc = subprocess.run(validate, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "program: W&B runs train.py itself" in proc.stderr
    assert "--trainer package.module:function" in proc.stderr and "Traceback" not in proc.stderr
