"""sweep resume NAME --space FILE: a started sweep's next trials sample a changed space, in the
same study, where Optuna can keep it; refused in one sentence where it cannot."""

from __future__ import annotations

import pytest
import yaml

from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.cli import main
from sweep.errors import SweepInputError

TOY = "tests.sweep_tests.toy_trainers:quadratic"


def _started(root, sampling=None):
    return Sweep(
        name="s",
        trainer=TOY,
        trainer_args={"num_epochs": 1},
        search_space={
            "x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0},
            "y": {"type": "choice", "values": [1, 2]},
        },
        sampling_algorithm=sampling or {"type": "tpe", "seed": 0},
        limits={"max_total_trials": 3},
        root=root,
        backend=InProcessBackend(),
    ).run()


def test_the_next_trials_sample_the_new_space_and_status_says_from_which_on(tmp_path, capsys):
    _started(tmp_path)
    narrowed = {
        "x": {"type": "uniform", "min_value": 0.0, "max_value": 0.2},
        "y": {"type": "choice", "values": [1, 2]},
        "z": {"type": "uniform", "min_value": 5.0, "max_value": 6.0},
    }
    sweep = Sweep.load("s", root=tmp_path, backend=InProcessBackend()).with_space(narrowed)
    result = sweep.resume(max_trials=6)
    trials = sorted(result.study.get_trials(), key=lambda t: t.number)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert all(t.params["x"] <= 0.2 and 5 <= t.params["z"] <= 6 for t in trials[3:])
    assert all("z" not in t.params for t in trials[:3])
    # What a later resume, status and report read: the new space.
    saved = yaml.safe_load((tmp_path / "s" / "sweep.yaml").read_text())
    assert saved["search_space"]["x"]["max_value"] == 0.2
    # The budget asked for too: a resume after a crash goes on to 6, not to the old 3 (it
    # stranded the trials a killed coordinator had started beyond 3).
    assert saved["limits"]["max_total_trials"] == 6
    assert Sweep.load("s", root=tmp_path).trials_left() == 0
    assert set(Sweep.load("s", root=tmp_path).config.search_space) == {"x", "y", "z"}
    assert main(["status", "s", "--root", str(tmp_path)]) == 0
    assert "search space changed from trial 3 on (x, z; sweep resume --space)" in (
        capsys.readouterr().out
    )


def test_a_change_the_study_cannot_take_is_refused_and_changes_nothing(tmp_path, capsys):
    _started(tmp_path)
    before = (tmp_path / "s" / "sweep.yaml").read_bytes()
    other_choices = {
        "x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0},
        "y": {"type": "choice", "values": [1, 3]},
    }
    with pytest.raises(
        SweepInputError,
        match=r"y cannot change from a choice of \[1, 2\] to a choice of \[1, 3\].*warm_start",
    ):
        Sweep.load("s", root=tmp_path).with_space(other_choices)
    log_scale = {"x": {"type": "loguniform", "min_value": -5, "max_value": 0}}
    with pytest.raises(SweepInputError, match=r"x cannot change from a number in \[0.0, 1.0\]"):
        Sweep.load("s", root=tmp_path).with_space(log_scale)
    # The command line: one sentence, exit 2, before any Ray starts.
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump({"search_space": other_choices}))
    assert main(["resume", "s", "--root", str(tmp_path), "--space", str(space_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--space: y cannot change" in err
    space_file.write_text(
        yaml.safe_dump({"x": {"type": "uniform", "min_value": 2, "max_value": 1}})
    )
    assert main(["resume", "s", "--root", str(tmp_path), "--space", str(space_file)]) == 2
    assert "search_space.x" in capsys.readouterr().err
    assert (tmp_path / "s" / "sweep.yaml").read_bytes() == before


def test_a_grid_sweep_keeps_its_grid(tmp_path):
    Sweep(
        name="g",
        trainer=TOY,
        trainer_args={"num_epochs": 1},
        search_space={"x": {"type": "choice", "values": [0.1, 0.3]}},
        sampling_algorithm="grid",
        root=tmp_path,
        backend=InProcessBackend(),
    ).run()
    with pytest.raises(SweepInputError, match="grid sweep's trials follow the space"):
        Sweep.load("g", root=tmp_path).with_space({"x": {"type": "choice", "values": [0.5]}})
