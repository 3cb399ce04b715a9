"""One contract, every backend: in-process threads, a local Ray, a real 2-node Ray cluster."""

from __future__ import annotations

import json

import pytest

from sweep import Sweep
from tests.sweep_tests import toy_trainers

X = {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}}


def _sweep(tmp_path, make_backend, trainer, *, space=None, **settings):
    settings.setdefault("sampling_algorithm", {"type": "random", "seed": 0})
    settings.setdefault("limits", {"max_total_trials": 4, "max_concurrent_trials": 2})
    return Sweep(
        name="t",
        search_space=space or X,
        trainer=trainer,
        root=tmp_path,
        backend=make_backend(),
        **settings,
    )


def _ran_epochs(result, number) -> int:
    path = result.sweep_dir / "trials" / f"{number:04d}" / "outputs" / "ran.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_runs_every_trial_and_keeps_its_records(tmp_path, make_backend):
    result = _sweep(
        tmp_path, make_backend, toy_trainers.quadratic, trainer_args={"num_epochs": 3}
    ).run()
    assert result.counts == {"complete": 4}
    frame = result.trials.set_index("number")
    values = frame["value"]
    best = result.best
    assert best is not None and best.value == values.max()
    assert abs(best.params["x"] - 0.3) == min(abs(result.trials["param_x"] - 0.3))
    for number in range(4):
        folder = result.sweep_dir / "trials" / f"{number:04d}"
        assert json.loads((folder / "params.json").read_text())["x"] == frame.loc[number, "param_x"]
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 2]
        assert json.loads((folder / "result.json").read_text())["best_val_acc"] == values[number]


def test_pruned_trials_stop_at_once(tmp_path, make_backend):
    # slack_amount 0: anything below the best so far at the same interval is pruned.
    result = _sweep(
        tmp_path,
        make_backend,
        toy_trainers.quadratic,
        trainer_args={"num_epochs": 4, "epoch_s": 0.05},
        early_termination={"type": "bandit", "slack_amount": 0.0},
        limits={"max_total_trials": 6, "max_concurrent_trials": 1},
    ).run()
    frame = result.trials.set_index("number")
    pruned = frame[frame["state"] == "pruned"]
    assert len(pruned) >= 1
    for number, row in pruned.iterrows():
        assert row["epochs_run"] < 4
        # The trainer really stopped: it ran exactly the epochs it reported.
        assert _ran_epochs(result, number) == row["epochs_run"]
        assert "slack_amount 0.0" in row["reason"]
    assert result.epochs_saved == int((4 - pruned["epochs_run"]).sum())


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, make_backend):
    result = _sweep(
        tmp_path,
        make_backend,
        toy_trainers.failing,
        limits={"max_total_trials": 6, "max_concurrent_trials": 2},
    ).run()
    frame = result.trials
    failed = frame[frame["state"] == "failed"]
    assert len(frame) == 6
    assert len(failed) == (frame["param_x"] > 0.5).sum() > 0
    assert all("RuntimeError: exploded at x=" in r for r in failed["reason"])
    assert (frame[frame["param_x"] <= 0.5]["state"] == "complete").all()


def test_retries_rerun_with_the_same_params_and_count_once(tmp_path, make_backend):
    result = _sweep(
        tmp_path,
        make_backend,
        toy_trainers.flaky,
        trainer_args={"num_epochs": 1},
        retries=1,
        limits={"max_total_trials": 3, "max_concurrent_trials": 1},
    ).run()
    frame = result.trials.set_index("number")
    assert (frame["state"] == "complete").sum() == 3
    assert (frame["state"] == "failed").sum() == 3
    for _, row in frame[frame["state"] == "failed"].iterrows():
        replacement = frame.loc[row["rerun_as"]]
        assert replacement["param_x"] == row["param_x"]
        assert replacement["state"] == "complete"


def test_missing_primary_metric_fails_with_the_names_returned(tmp_path, make_backend):
    result = _sweep(
        tmp_path, make_backend, toy_trainers.wrong_metric, limits={"max_total_trials": 1}
    ).run()
    (reason,) = result.trials["reason"]
    assert "returned no 'best_val_acc'" in reason and "accuracy, loss" in reason
    assert result.best is None


def test_nan_metric_fails_the_trial(tmp_path, make_backend):
    result = _sweep(
        tmp_path, make_backend, toy_trainers.nan_metric, limits={"max_total_trials": 1}
    ).run()
    (row,) = result.trials.to_dict("records")
    assert row["state"] == "failed" and "best_val_acc is nan at epoch 1" in row["reason"]


@pytest.mark.slow
def test_a_hanging_trial_fails_at_trial_timeout(tmp_path, make_backend):
    # 8 s: well above a normal trial's start on a loaded 2-CPU machine (a new Ray worker
    # process), far below the hour the hanging trainer sleeps. Seed 2 draws one hanging
    # trial of four (x = 0.55), so the other three run beside it in the second slot.
    result = _sweep(
        tmp_path,
        make_backend,
        toy_trainers.hanging,
        trainer_args={"num_epochs": 1},
        sampling_algorithm={"type": "random", "seed": 2},
        limits={"max_total_trials": 4, "max_concurrent_trials": 2, "trial_timeout": 8},
    ).run()
    frame = result.trials
    hung = frame[frame["param_x"] > 0.5]
    assert len(hung) == 1
    assert (hung["state"] == "failed").all()
    assert all("ran past trial_timeout (8 s)" in r for r in hung["reason"])
    assert (frame[frame["param_x"] <= 0.5]["state"] == "complete").sum() == 3


def test_max_concurrent_trials_is_honoured(tmp_path, make_backend):
    result = _sweep(
        tmp_path,
        make_backend,
        toy_trainers.quadratic,
        trainer_args={"num_epochs": 2, "epoch_s": 0.2},
        limits={"max_total_trials": 4, "max_concurrent_trials": 1},
    ).run()
    spans = []
    for number in range(4):
        lines = (
            (result.sweep_dir / "trials" / f"{number:04d}" / "outputs" / "span.jsonl")
            .read_text()
            .splitlines()
        )
        start, end = json.loads(lines[0])["start"], json.loads(lines[-1])["end"]
        spans.append((start, end))
    spans.sort()
    assert all(
        prev_end <= next_start
        for (_, prev_end), (next_start, _) in zip(spans, spans[1:], strict=False)
    )


def test_one_in_process_backend_runs_one_sweep_after_another(tmp_path):
    """A notebook keeps its backend: the first sweep's cancellations (its close) once
    silenced the second sweep's trials 0 and 1, and the second sweep waited for ever."""
    from sweep.backends import InProcessBackend

    backend = InProcessBackend()
    for name in ("first", "second"):
        result = Sweep(
            name=name,
            search_space=X,
            trainer=toy_trainers.quadratic,
            trainer_args={"num_epochs": 2},
            sampling_algorithm={"type": "random", "seed": 0},
            limits={"max_total_trials": 3, "max_concurrent_trials": 2, "timeout": 60},
            root=tmp_path,
            backend=backend,
        ).run()
        assert result.counts == {"complete": 3}, name
