"""What an unlucky user meets: a second coordinator, a torn journal, a resumed seeded sweep,
a storage that does not open, a full disk, a folder that is not empty, a bomb of an image."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from search_spaces import SearchSpaceError
from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.cli import main
from sweep.errors import SweepError, SweepInputError
from sweep.model.registry import ModelRegistry
from sweep.records.layout import JOURNAL, LOCK, METRICS, read_history, trial_dir
from sweep.records.lock import SweepLock
from tests.sweep_tests import toy_trainers

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}}


def _sweep(root: Path, name: str = "s", **settings) -> Sweep:  # type: ignore[no-untyped-def]
    settings.setdefault("limits", {"max_total_trials": 6, "max_concurrent_trials": 1})
    settings.setdefault("sampling_algorithm", {"type": "random", "seed": 5})
    return Sweep(
        name=name,
        search_space=SPACE,
        trainer=toy_trainers.quadratic,
        root=root,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 2},
        **settings,
    )


def _resume(root: Path, name: str = "s", **kwargs):  # type: ignore[no-untyped-def]
    return Sweep.load(name, root=root, backend=InProcessBackend()).resume(**kwargs)


def test_a_second_coordinator_is_refused_naming_the_first_and_writes_nothing(tmp_path):
    holder = SweepLock(tmp_path / "s").acquire()
    try:
        with pytest.raises(SweepInputError, match=f"already running .*pid {os.getpid()}"):
            _sweep(tmp_path).run()
        assert not (tmp_path / "s" / "sweep.yaml").exists()
        assert not (tmp_path / "s" / JOURNAL).exists()
    finally:
        holder.release()
    assert len(_sweep(tmp_path).run().trials) == 6  # once released, the sweep runs
    holder = SweepLock(tmp_path / "s").acquire()
    try:
        with pytest.raises(SweepInputError, match="already running"):
            _resume(tmp_path)
    finally:
        holder.release()


def test_a_lock_left_by_a_killed_coordinator_is_taken_over_with_a_note(tmp_path, caplog):
    script = (
        "import os, sys; from sweep.records.lock import SweepLock; "
        "SweepLock(sys.argv[1]).acquire(); os._exit(9)"
    )  # dies holding the lock
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "s")],
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    dead = json.loads((tmp_path / "s" / LOCK).read_text())
    assert dead["pid"] != os.getpid()
    with caplog.at_level(logging.WARNING, logger="sweep.records.lock"):
        _sweep(tmp_path).run()
    assert f"pid {dead['pid']}" in caplog.text and "took over" in caplog.text


def test_a_torn_journal_is_healed_on_resume_and_nothing_before_it_is_lost(tmp_path, caplog):
    _sweep(tmp_path).run(max_trials=3)
    journal = tmp_path / "s" / JOURNAL
    data = journal.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    journal.write_bytes(data[: last + (len(data) - last) // 2])  # cut the last record in half
    with caplog.at_level(logging.WARNING, logger="sweep.records.journal"):
        result = _resume(tmp_path)
    (side,) = (tmp_path / "s").glob(f"{JOURNAL}.torn-*")
    torn = side.read_bytes()
    assert str(side) in caplog.text and torn and data[last:].startswith(torn)
    counted = [t for t in result.study.trials if t.state == TrialState.COMPLETE]
    assert len(counted) >= 5  # the 3 first (one maybe re-run: its last record was cut) + more
    assert main(["status", "s", "--root", str(tmp_path)]) == 0
    assert journal.read_bytes().endswith(b"\n")


def test_a_torn_trial_history_reads_up_to_the_tear(tmp_path):
    folder = trial_dir(tmp_path, 0)
    folder.mkdir(parents=True)
    (folder / METRICS).write_text('{"epoch": 0, "val_acc": 0.5}\n{"epoch": 1, "val_a')
    assert read_history(folder) == [{"epoch": 0, "val_acc": 0.5}]


def test_a_resumed_seeded_sweep_does_not_replay_the_first_trials(tmp_path):
    for sampler in ({"type": "random", "seed": 5}, {"type": "bayesian", "seed": 7}):
        name = sampler["type"]
        _sweep(tmp_path, name, sampling_algorithm=sampler).run(max_trials=3)
        xs = [t.params["x"] for t in _resume(tmp_path, name).study.trials]
        assert len(xs) == 6 and len(set(xs)) == 6, (name, xs)


def test_a_storage_that_fails_to_open_leaves_nothing_behind(tmp_path):
    bad = f"sqlite:///{tmp_path}/no/such/folder/s.db"
    with pytest.raises(SweepError, match="storage: cannot open"):
        _sweep(tmp_path / "sweeps", storage=bad).run()
    assert not (tmp_path / "sweeps").exists()
    assert len(_sweep(tmp_path / "sweeps").run().trials) == 6  # no "already exists"


def test_files_a_sweep_writes_are_replaced_whole(tmp_path, monkeypatch):
    _sweep(tmp_path).run(max_trials=2)
    report = tmp_path / "s" / "report.html"
    before = report.read_bytes()

    def full_disk(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    import search_spaces.atomic_files

    monkeypatch.setattr(search_spaces.atomic_files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        _resume(tmp_path)
    monkeypatch.undo()
    assert report.read_bytes() == before  # the old report, not a truncated new one
    assert not list((tmp_path / "s").glob(".*.tmp"))


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


def test_a_full_disk_is_one_line_and_leaves_no_half_file(tmp_path, capsys):
    _sweep(tmp_path / "sweeps").run(max_trials=2)
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "64k"):
        pytest.skip("mounting a small tmpfs is not allowed here (needs root)")
    try:
        target = small / "report.html"
        code = main(["report", "s", "--root", str(tmp_path / "sweeps"), "--html", str(target)])
        err = capsys.readouterr().err
        assert code == 1 and err == f"sweep: failed: {target}: No space left on device\n"
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.parametrize("where", ["missing/report.html", "a-file/report.html", "."])
def test_an_unwritable_report_path_is_bad_input_in_one_line(tmp_path, capsys, where):
    _sweep(tmp_path / "sweeps").run(max_trials=1)
    (tmp_path / "a-file").write_text("")
    target = tmp_path / where
    code = main(["report", "s", "--root", str(tmp_path / "sweeps"), "--html", str(target)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"sweep: error: {target}: ") and err.count("\n") == 1


def test_models_download_keeps_the_users_files(tmp_path, capsys):
    registry = tmp_path / "models"
    (tmp_path / "m.pt").write_text("weights")
    ModelRegistry(registry).register("m", {"model.pt": tmp_path / "m.pt"}, {"n": 1})
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.pt").write_text("my own work")
    args = ["models", "download", "m", str(mine), "--registry", str(registry)]
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert (mine / "model.pt").read_text() == "my own work"
    assert main([*args[:3], str(tmp_path / "m.pt"), *args[4:]]) == 2  # onto a file
    assert "is a file" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert (mine / "model.pt").read_text() == "weights"


def test_a_foreign_folder_in_the_registry_does_not_break_listing(tmp_path, capsys):
    registry = tmp_path / "models"
    (tmp_path / "m.pt").write_text("weights")
    ModelRegistry(registry).register("m", {"model.pt": tmp_path / "m.pt"}, {"n": 1})
    (registry / "my notes" / "1").mkdir(parents=True)
    (registry / "m" / "2").mkdir()  # a version folder with no card
    assert main(["models", "list", "--registry", str(registry)]) == 0
    out = capsys.readouterr().out
    assert "my notes" not in out and "1,2" in out


def test_a_decompression_bomb_image_is_one_line(tmp_path, capsys):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(bomb)  # 144 M pixels in a few kB
    from trainer.data import decode_image
    from trainer.errors import DataError

    with pytest.raises(DataError, match="decompression bomb"):
        decode_image(bomb, 32)


@pytest.mark.parametrize("keep", [None, {"models": 2}, {"models": "all"}])
def test_keep_leaves_model_files_only_to_the_best_completed_trials(tmp_path, keep):
    settings = {"keep": keep} if keep else {}
    result = Sweep(
        name="k",
        search_space=SPACE,
        trainer=toy_trainers.saving,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 3},
        early_termination={"type": "median_stopping", "delay_evaluation": 1},
        sampling_algorithm={"type": "random", "seed": 1},
        limits={"max_total_trials": 10, "max_concurrent_trials": 1},
        **settings,
    ).run()
    study = result.study
    done = sorted(
        (t for t in study.trials if t.state == TrialState.COMPLETE),
        key=lambda t: -float(t.value or 0),
    )
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and len(done) > 3
    models = {
        t.number
        for t in study.trials
        if (trial_dir(tmp_path / "k", t.number) / "outputs" / "model.pt").exists()
    }
    if keep == {"models": "all"}:
        assert models == {t.number for t in study.trials}
    else:
        assert models == {t.number for t in done[: 3 if keep is None else 2]}
    assert result.best is not None and result.best.number in models
    for t in study.trials:  # records and other outputs stay, whatever happened
        folder = trial_dir(tmp_path / "k", t.number)
        assert (folder / "outputs" / "curve.png").exists() and read_history(folder)


def test_keep_is_checked(tmp_path):
    with pytest.raises(SearchSpaceError, match="keep.models: expected a number of trials"):
        _sweep(tmp_path, keep={"models": 0})
