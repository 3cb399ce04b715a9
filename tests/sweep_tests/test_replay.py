"""The replay simulator: a replay of a sweep's own curves under its own policy is that
sweep; many policies and orders in one call; the command line, and what it refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from search_spaces import EarlyTermination
from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.cli import main
from sweep.records.layout import read_history, trial_dir
from sweep.replay.simulator import STANDARD, Curve, compare, replay
from sweep.replay.sources import (
    crossing_curves,
    curves_of_sweep,
    hartmann_curves,
    load_bank,
    save_bank,
)
from tests.sweep_tests import toy_trainers

ROOT = Path(__file__).resolve().parents[2]
X = {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}}


@pytest.mark.parametrize(
    ("policy", "trainer"),
    [
        ({"type": "median_stopping", "evaluation_interval": 1, "delay_evaluation": 1}, "crossing"),
        ({"type": "asha", "min_resource": 1, "reduction_factor": 3}, "crossing"),
        # Optuna's Hyperband deals trials to brackets by a hash of the study's name: the
        # replay takes the sweep's name, so it deals them as the sweep did.
        ({"type": "hyperband", "min_resource": 1, "reduction_factor": 3}, "crossing"),
        ({"type": "forecast", "risk": 0.1}, "crossing"),
        (
            {"type": "asha", "mode": "promotion", "min_resource": 1, "reduction_factor": 2},
            "checkpointing",
        ),
        ({"type": "forecast", "mode": "promotion", "min_resource": 3}, "checkpointing"),
    ],
)
def test_a_replay_of_a_sweeps_curves_under_its_own_policy_is_that_sweep(tmp_path, policy, trainer):
    result = Sweep(
        name="r",
        search_space=X,
        trainer=getattr(toy_trainers, trainer),
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 6},
        sampling_algorithm={"type": "random", "seed": 4},
        early_termination=policy,
        limits={"max_total_trials": 14, "max_concurrent_trials": 1},
    ).run()
    assert result.study is not None
    trials = result.study.get_trials(deepcopy=False)
    real_epochs = sum(len(read_history(trial_dir(tmp_path / "r", t.number))) for t in trials)
    real_pruned = sum(t.state == TrialState.PRUNED for t in trials)
    assert real_pruned > 0  # the policy did something to compare
    curves = curves_of_sweep(tmp_path / "r", trials, "best_val_acc", 6)
    again = replay(curves, result_policy(result), workers=1, study_name="r")
    assert (again.epochs, again.pruned, again.censored) == (real_epochs, real_pruned, 0)
    assert again.best(True) == result.best.value


def result_policy(result) -> EarlyTermination:  # type: ignore[no-untyped-def]
    return Sweep.load("r", root=result.sweep_dir.parent).config.early_termination


@pytest.mark.slow
def test_compare_runs_every_policy_over_seeds_and_the_baseline_never_loses():
    bank = hartmann_curves(3, 40, epochs=9, seed=2)
    summaries = {s.policy: s for s in compare(bank.curves, STANDARD, workers=4, seeds=3)}
    assert set(summaries) == set(STANDARD)
    none = summaries["none"]
    assert none.lost == 0 and none.sooner == 1.0 and none.epochs == 40 * 9
    assert all(s.epochs <= none.epochs for s in summaries.values())
    assert summaries["asha"].epochs < none.epochs
    assert len(none.anytime) == 3 and none.anytime[-1] is not None


def test_hindsight_stops_exactly_the_trials_that_end_below_the_best_finished():
    """The bound the forecast is measured against: from epoch 3 on, a trial stops as soon
    as its recorded end is below the best finished value, so it never loses the best, and
    no forecast, right or wrong, stops sooner."""
    curves = list(crossing_curves(40, seed=1).curves)
    none = replay(curves, EarlyTermination("none"), workers=4)
    bound = replay(curves, STANDARD["hindsight_from_3"], workers=4)
    forecast = replay(curves, STANDARD["forecast"], workers=4)
    target = none.best(True)
    assert bound.best(True) == target
    assert bound.pruned > forecast.pruned > 0
    assert bound.epochs < forecast.epochs
    assert bound.reached(target, True) <= forecast.reached(target, True)


def test_an_earlier_sweeps_curves_let_the_forecast_stop_sooner_and_from_epoch_1():
    """``calibration`` (``sweep replay --calibrate-on``, ``warm_start`` in a sweep): the
    margin learns from another sweep's curves, so nothing waits for this sweep's own three
    finished trials, and a trial is judged from its first epoch unless ``min_epochs`` says
    otherwise; the best is kept."""
    curves = list(crossing_curves(40, seed=1).curves)
    earlier = list(crossing_curves(60, seed=7).curves)
    forecast, from_3 = STANDARD["forecast"], EarlyTermination("forecast", {"min_epochs": 3})
    none = replay(curves, EarlyTermination("none"), workers=4)
    alone = replay(curves, forecast, workers=4)
    taught = replay(curves, forecast, workers=4, calibration=earlier)
    taught_from_3 = replay(curves, from_3, workers=4, calibration=earlier)
    assert taught.best(True) == none.best(True)
    assert taught.epochs < taught_from_3.epochs < alone.epochs
    # The other policies rank this sweep's own trials: the earlier curves change nothing.
    asha = STANDARD["asha"]
    assert replay(curves, asha, workers=4, calibration=earlier).epochs == (
        replay(curves, asha, workers=4).epochs
    )


def test_parallel_workers_take_trials_in_time_order():
    slow = Curve((0.1, 0.2), (10.0, 10.0), 2, label="slow")
    fast = Curve((0.5, 0.9), (1.0, 1.0), 2, label="fast")
    run = replay([slow, fast, fast], EarlyTermination("none"), workers=2)
    # The fast one ends at 2 s, the next starts there and ends at 4 s; the slow one at 20 s.
    assert run.seconds == 20.0 and run.timeline[0] == (2.0, 0.9)
    assert replay([slow, fast, fast], EarlyTermination("none"), workers=1).seconds == 24.0


def test_an_open_stream_at_equal_compute_tries_more_trials_when_it_prunes():
    bank = hartmann_curves(6, 30, epochs=9, seed=0)
    none = replay(bank.curves, EarlyTermination("none"), workers=2)
    asha = replay(bank.curves, STANDARD["asha"], workers=2, budget_s=none.seconds)
    same = replay(bank.curves, EarlyTermination("none"), workers=2, budget_s=none.seconds)
    assert asha.seconds == none.seconds and asha.trials > same.trials


def test_a_bank_file_round_trips_and_replays_from_the_command_line(tmp_path, capsys):
    bank = hartmann_curves(3, 12, epochs=5, seed=1)
    save_bank(tmp_path / "h3.jsonl.gz", bank)
    assert load_bank(tmp_path / "h3.jsonl.gz").curves == tuple(
        Curve(tuple(round(v, 6) for v in c.values), c.epoch_s, c.planned, c.start_s, c.label)
        for c in bank.curves
    )
    assert main(["replay", str(tmp_path / "h3.jsonl.gz"), "--seeds", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["policy"] for r in rows} == set(STANDARD)
    assert all({"epochs", "best", "lost"} <= set(r) for r in rows)


def test_replay_calibrated_on_an_earlier_bank_from_the_command_line(tmp_path, capsys):
    save_bank(tmp_path / "now.jsonl.gz", crossing_curves(16, epochs=5, seed=1))
    save_bank(tmp_path / "before.jsonl.gz", crossing_curves(30, epochs=5, seed=2))
    now, before = str(tmp_path / "now.jsonl.gz"), str(tmp_path / "before.jsonl.gz")
    assert main(["replay", now, "--seeds", "2", "--calibrate-on", before, "--no-anytime"]) == 0
    out = capsys.readouterr().out
    assert "calibrated on 30 curves" in out and "hindsight_from_1" in out
    # The banks keep each curve's params, so the nearest earlier trials judge too.
    assert "the 5 of their 30 trials with params most like each replayed one" in out
    flipped = crossing_curves(30, epochs=5, seed=2)
    save_bank(
        tmp_path / "lower.jsonl.gz",
        type(flipped)(flipped.name, "loss", False, flipped.curves),
    )
    code = main(["replay", now, "--calibrate-on", str(tmp_path / "lower.jsonl.gz")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--calibrate-on" in err, err


def test_a_run_that_diverged_stays_in_the_bank_file_and_out_of_the_replay(tmp_path):
    import gzip

    bank = hartmann_curves(3, 4, epochs=3, seed=1)
    save_bank(tmp_path / "b.jsonl.gz", bank)
    with gzip.open(tmp_path / "b.jsonl.gz", "at") as f:  # as record_curves.py appends
        diverged = {"diverged": "training diverged: train_loss is nan at epoch 0"}
        f.write(json.dumps({**diverged, "values": [], "epoch_s": [], "planned": 3}) + "\n")
    assert len(load_bank(tmp_path / "b.jsonl.gz").curves) == 4


def test_a_replay_on_the_command_line_prints_no_line_per_simulated_study(tmp_path):
    """A replay makes a study per policy and seed, in forked processes: Optuna's own handler
    printed "A new study created in memory" for each (hundreds of lines on stderr)."""
    save_bank(tmp_path / "h3.jsonl.gz", hartmann_curves(3, 12, epochs=4, seed=1))
    done = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "replay", "h3.jsonl.gz", "--seeds", "2"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "forecast" in done.stdout and "study created" not in done.stderr, done.stderr


def test_replay_of_a_finished_sweep_on_the_command_line(tmp_path, capsys):
    Sweep(
        name="r",
        search_space=X,
        trainer=toy_trainers.crossing,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 5},
        limits={"max_total_trials": 8, "max_concurrent_trials": 2},
    ).run()
    assert (
        main(
            [
                "replay",
                "r",
                "--root",
                str(tmp_path),
                "--seeds",
                "3",
                "--early-termination",
                "{type: asha, min_resource: 1}",
                "--early-termination",
                "{type: forecast, risk: 0.1}",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "sweep r: 8 trials of best_val_acc" in out and "2 simulated workers" in out
    assert "asha min_resource=1" in out and "forecast risk=0.1" in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--early-termination", "{type: nope}"], "early_termination.type"),
        (["--early-termination", "{type: forecast, risk: 2}"], "early_termination.risk"),
        (["--seeds", "0"], "--seeds"),
    ],
)
def test_replay_refuses_bad_input_in_one_line(tmp_path, capsys, argv, says):
    Sweep(
        name="r",
        search_space=X,
        trainer=toy_trainers.crossing,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 3},
        limits={"max_total_trials": 3},
    ).run()
    assert main(["replay", "r", "--root", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


def test_replay_of_a_sweep_without_per_epoch_history_says_why(tmp_path, capsys):
    Sweep(
        name="quiet",
        search_space=X,
        trainer=toy_trainers.silent,
        root=tmp_path,
        backend=InProcessBackend(),
        limits={"max_total_trials": 3},
    ).run()
    assert main(["replay", "quiet", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "per-epoch history of best_val_acc" in err
