"""Promotion-based ASHA: trials pause at rungs and continue from their checkpoints."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from optuna.trial import TrialState

from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.errors import SweepInterrupted
from sweep.records.layout import read_history, trial_dir
from tests.sweep_tests import toy_trainers

SPACE = {"x": {"type": "uniform", "min_value": 0, "max_value": 1}}
EPOCHS, ETA = 9, 3  # rungs at 1 and 3 epochs trained; 9 is the last


def _sweep(root: Path, trials: int = 12, trainer=toy_trainers.checkpointing):  # type: ignore[no-untyped-def]
    return Sweep(
        name="asha",
        search_space=SPACE,
        trainer=trainer,
        root=root,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": EPOCHS},
        sampling_algorithm={"type": "random", "seed": 3},
        early_termination={
            "type": "asha",
            "mode": "promotion",
            "min_resource": 1,
            "reduction_factor": ETA,
        },
        limits={"max_total_trials": trials, "max_concurrent_trials": 1},
    )


def _ran(folder: Path) -> list[int]:
    path = folder / "outputs" / "ran.jsonl"
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines()]


def _check_invariants(trials, sweep_dir: Path) -> None:  # type: ignore[no-untyped-def]
    reached: Counter[int] = Counter()
    promoted: Counter[int] = Counter()
    for t in trials:
        folder = trial_dir(sweep_dir, t.number)
        ran = _ran(folder)
        assert len(ran) == len(set(ran)), (t.number, ran)  # no epoch ran twice
        assert [r["epoch"] for r in read_history(folder)] == list(range(len(ran)))
        for rung in (1, 3):
            if rung - 1 in t.intermediate_values:
                reached[rung] += 1
        for rung in t.user_attrs.get("promoted_from", []):
            promoted[rung] += 1
            starts = [
                json.loads(line)
                for line in (folder / "outputs" / "span.jsonl").read_text().splitlines()
            ]
            assert rung in [s.get("from") for s in starts]  # continued from its checkpoint
        if t.state == TrialState.COMPLETE:
            assert len(ran) == EPOCHS
        else:
            assert t.state == TrialState.PRUNED and len(ran) in (1, 3)
    for rung in (1, 3):
        assert promoted[rung] <= reached[rung] // ETA, (rung, promoted, reached)
    assert promoted[1] >= 1 and promoted[3] >= 1  # promotion happened at both rungs


def test_promotion_invariants(tmp_path):
    result = _sweep(tmp_path).run()
    trials = result.study.get_trials(deepcopy=False)
    assert len(trials) == 12
    _check_invariants(trials, tmp_path / "asha")
    assert "paused at" in " ".join(result.trials["reason"].fillna(""))


def test_a_resumed_promotion_sweep_keeps_its_paused_trials(tmp_path):
    with pytest.raises(SweepInterrupted):
        _sweep(tmp_path).run(listener=toy_trainers.CtrlCAfter(8))
    before = Sweep.load("asha", root=tmp_path).result().study.get_trials(deepcopy=False)
    paused = [t.number for t in before if t.user_attrs.get("paused_at")]
    assert paused
    result = Sweep.load(
        "asha", root=tmp_path, trainer=toy_trainers.checkpointing, backend=InProcessBackend()
    ).resume()
    trials = result.study.get_trials(deepcopy=False)
    assert len(trials) == 12 and not [t for t in trials if t.state == TrialState.RUNNING]
    _check_invariants(trials, tmp_path / "asha")


def test_promotion_with_a_trainer_that_cannot_checkpoint_fails_its_trials_saying_how(tmp_path):
    result = _sweep(tmp_path, trials=2, trainer=toy_trainers.quadratic).run()
    reasons = list(result.trials["reason"])
    assert all("params['checkpoint_dir']" in r for r in reasons), reasons


def test_validate_refuses_promotion_without_checkpoints_in_one_sentence(tmp_path, capsys):
    from sweep.cli import main

    (tmp_path / "s.yaml").write_text(
        "search_space: {learning_rate: {type: uniform, min_value: 0.01, max_value: 0.1}}\n"
        "early_termination: {type: asha, mode: promotion}\nkeep: {checkpoints: none}\n"
    )
    assert main(["validate", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "early_termination.mode: promotion" in err


def test_hyperband_with_promotion_runs_brackets_of_promotion_asha(tmp_path):
    """num_epochs 9, reduction_factor 3: bracket 0 pauses at 1 and 3 epochs, bracket 1 at 3
    only; trials are dealt to them in turn, and each bracket ranks its own trials."""
    result = Sweep(
        name="hb",
        search_space=SPACE,
        trainer=toy_trainers.checkpointing,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": EPOCHS},
        sampling_algorithm={"type": "random", "seed": 5},
        early_termination={
            "type": "hyperband",
            "mode": "promotion",
            "min_resource": 1,
            "reduction_factor": ETA,
        },
        limits={"max_total_trials": 12, "max_concurrent_trials": 1},
    ).run()
    trials = result.study.get_trials(deepcopy=False)
    for t in trials:
        ran = _ran(trial_dir(tmp_path / "hb", t.number))
        assert len(ran) == len(set(ran))
        stops = {1, 3, EPOCHS} if t.number % 2 == 0 else {3, EPOCHS}
        assert len(ran) in stops, (t.number, len(ran))
        if t.number % 2 == 1:
            assert 1 not in t.user_attrs.get("promoted_from", [])
    for bracket in (0, 1):
        members = [t for t in trials if t.number % 2 == bracket]
        reached = sum(1 for t in members if 2 in t.intermediate_values)
        promoted = sum(1 for t in members if 3 in t.user_attrs.get("promoted_from", []))
        assert promoted <= reached // ETA
    assert any(t.state == TrialState.COMPLETE for t in trials)
