"""Trials that keep their progress: the committed checkpoint, the working copy, and a trial
that continues from its last report after a retry or a lost worker."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
from pathlib import Path

import pytest
from optuna.trial import TrialState

from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.records.checkpoint_folder import LiveCheckpoint
from sweep.records.checkpoint_store import CheckpointStore
from sweep.records.layout import read_history, trial_dir
from sweep.trials import CheckpointFiles
from tests.sweep_tests import toy_trainers
from tests.threads import TRAIN_THREADS

SPACE = {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}}


def _records(folder: Path, name: str) -> list[dict]:
    path = folder / "outputs" / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- the coordinator's copy ------------------------------------------------------------------


def test_a_commit_writes_only_what_changed_and_keeps_one_version(tmp_path):
    store = CheckpointStore(tmp_path)
    store.commit(
        0, {"acc": 0.1}, CheckpointFiles({"w.bin": b"a" * 10, "s.json": b"0"}, ("s.json", "w.bin"))
    )
    first = store.latest()
    assert first is not None and first.epoch == 0 and first.metrics == {"acc": 0.1}
    store.commit(1, {"acc": 0.2}, CheckpointFiles({"s.json": b"1"}, ("s.json", "w.bin")))
    latest = store.latest()
    assert latest is not None and latest.epoch == 1
    files = store.read()
    assert files is not None and dict(files.changed) == {"s.json": b"1", "w.bin": b"a" * 10}
    # The unchanged file is the same inode as before (linked, not written again), and the
    # previous version is gone: at most the latest checkpoint per trial on disk.
    versions = [p for p in store.root.iterdir() if p.is_dir()]
    assert versions == [latest.folder]
    assert (latest.folder / "w.bin").stat().st_nlink == 1
    # A file the worker deleted is gone from the next version.
    store.commit(2, {}, CheckpointFiles({}, ("s.json",)))
    files = store.read()
    assert files is not None and set(files.changed) == {"s.json"}


def test_a_commit_cut_half_way_leaves_the_previous_checkpoint_usable(tmp_path, monkeypatch):
    import sweep.records.checkpoint_store as module

    store = CheckpointStore(tmp_path)
    store.commit(3, {"acc": 0.3}, CheckpointFiles({"a": b"old-a", "b": b"old-b"}, ("a", "b")))
    real = module._write_durably
    calls = []

    def cut(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:  # the first file is written, the process dies on the second
            path.write_bytes(data[: len(data) // 2])
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(module, "_write_durably", cut)
    with pytest.raises(KeyboardInterrupt):
        store.commit(4, {"acc": 0.4}, CheckpointFiles({"a": b"new-a", "b": b"new-b"}, ("a", "b")))
    monkeypatch.setattr(module, "_write_durably", real)
    latest = store.latest()
    assert latest is not None and latest.epoch == 3 and latest.metrics == {"acc": 0.3}
    files = store.read()
    assert files is not None and dict(files.changed) == {"a": b"old-a", "b": b"old-b"}
    store.commit(4, {}, CheckpointFiles({"a": b"new-a"}, ("a", "b")))
    files = store.read()
    assert files is not None and dict(files.changed) == {"a": b"new-a", "b": b"old-b"}
    assert [p.name for p in store.root.iterdir() if p.is_dir()] == [store.latest().folder.name]


def test_names_from_a_worker_cannot_leave_the_folder(tmp_path, caplog):
    store = CheckpointStore(tmp_path)
    for name in ("../escape", "/etc/passwd", "a/../../b"):
        store.commit(0, {}, CheckpointFiles({name: b"x"}, (name,)))
        files = store.read()
        assert files is not None and not files.changed  # skipped, said, never written
        assert "not a file name inside" in caplog.text
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "b").exists()


# -- the trainer's working copy --------------------------------------------------------------


def test_the_working_copy_sends_only_changes_and_skips_work_in_progress(tmp_path):
    live = LiveCheckpoint(tmp_path)
    folder = live.fill(
        CheckpointFiles({"keep.bin": b"k", "sub/s.json": b"1"}, ("keep.bin", "sub/s.json"))
    )
    assert live.changes() is None  # what it was filled with is not a change
    (folder / "sub" / "s.json").write_text("2")
    (folder / "half.pt.tmp").write_text("writing")
    changes = live.changes()
    assert changes is not None and dict(changes.changed) == {"sub/s.json": b"2"}
    assert set(changes.names) == {"keep.bin", "sub/s.json"}
    (folder / "keep.bin").unlink()
    changes = live.changes()
    assert changes is not None and not changes.changed and changes.names == ("sub/s.json",)
    live.remove()
    assert not folder.exists()


# -- trials that continue ----------------------------------------------------------------------


def _sweep(
    root: Path,
    *,
    make_backend=InProcessBackend,
    retries: int = 0,  # type: ignore[no-untyped-def]
    **args,
) -> Sweep:
    return Sweep(
        name="ck",
        search_space=SPACE,
        trainer=toy_trainers.checkpointing,
        root=root,
        backend=make_backend(),
        trainer_args={"num_epochs": 8, **args},
        limits={"max_total_trials": 1, "max_concurrent_trials": 1},
        sampling_algorithm={"type": "random", "seed": 1},
        retries=retries,
    )


def _one_history(result, sweep_dir: Path, epochs: int = 8) -> Path:  # type: ignore[no-untyped-def]
    (trial,) = result.study.get_trials(deepcopy=False)
    assert trial.state == TrialState.COMPLETE, trial.user_attrs
    folder = trial_dir(sweep_dir, trial.number)
    assert [r["epoch"] for r in read_history(folder)] == list(range(epochs))
    assert sorted(trial.intermediate_values) == list(range(epochs))
    return folder


def test_a_retry_after_an_exception_at_epoch_5_continues_at_epoch_5(tmp_path):
    result = _sweep(tmp_path, fail_at=5, retries=1).run()
    folder = _one_history(result, tmp_path / "ck")
    starts = [s["from"] for s in _records(folder, "span.jsonl") if "from" in s]
    assert starts == [0, 5]
    assert [r["epoch"] for r in _records(folder, "ran.jsonl")] == list(range(8))  # none twice
    (trial,) = result.study.get_trials(deepcopy=False)
    assert trial.user_attrs["restarts"] == 1 and trial.user_attrs["attempt"] == 1
    # The best completed trial keeps its checkpoint (to be trained further).
    assert CheckpointStore(folder).latest().epoch == 7
    assert not (folder / ".live").exists()


def test_without_retries_the_exception_fails_the_trial_and_its_checkpoint_goes(tmp_path):
    result = _sweep(tmp_path, fail_at=5).run()
    (trial,) = result.study.get_trials(deepcopy=False)
    assert trial.state == TrialState.FAIL and "failed at epoch 5" in trial.user_attrs["reason"]
    assert CheckpointStore(trial_dir(tmp_path / "ck", 0)).latest() is None


def test_keep_checkpoints_all_keeps_a_failed_trials_checkpoint(tmp_path):
    sweep = Sweep(
        name="ck",
        search_space=SPACE,
        trainer=toy_trainers.checkpointing,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 8, "fail_at": 5},
        limits={"max_total_trials": 1},
        keep={"checkpoints": "all"},
    )
    sweep.run()
    latest = CheckpointStore(trial_dir(tmp_path / "ck", 0)).latest()
    assert latest is not None and latest.epoch == 4


@pytest.mark.slow
@pytest.mark.parametrize("make_backend", ["local_ray", "ray_cluster"], indirect=True)
def test_a_worker_process_that_dies_is_continued_from_its_checkpoint(tmp_path, make_backend):
    result = _sweep(tmp_path, make_backend=make_backend, die_at=3).run()
    folder = _one_history(result, tmp_path / "ck")
    starts = [s["from"] for s in _records(folder, "span.jsonl") if "from" in s]
    assert starts == [0, 3]
    (trial,) = result.study.get_trials(deepcopy=False)
    assert trial.user_attrs["losses"] == 1 and "attempt" not in trial.user_attrs


@pytest.mark.slow
@pytest.mark.parametrize("make_backend", ["local_ray", "ray_cluster"], indirect=True)
def test_sigterm_to_a_trial_s_worker_is_a_notice_it_continues_spending_nothing(
    tmp_path, make_backend
):
    """SIGTERM (a spot node's eviction notice) to the worker process at epoch 3: the trainer's
    report of epoch 3 says stop, the trial continues at epoch 4 in a new process, and neither
    a loss nor a retry is spent (it could be preempted any number of times)."""
    result = _sweep(tmp_path, make_backend=make_backend, sigterm_at=3).run()
    folder = _one_history(result, tmp_path / "ck")
    spans = [s for s in _records(folder, "span.jsonl") if "from" in s]
    assert [s["from"] for s in spans] == [0, 4]
    assert spans[0]["pid"] != spans[1]["pid"]  # the process told to go is not used again
    assert [r["epoch"] for r in _records(folder, "ran.jsonl")] == list(range(8))
    (trial,) = result.study.get_trials(deepcopy=False)
    assert trial.user_attrs["preemptions"] == 1 and trial.user_attrs["restarts"] == 1
    assert "losses" not in trial.user_attrs and "attempt" not in trial.user_attrs


def test_a_notice_another_run_heard_does_not_stop_trials_in_threads(tmp_path):
    """The process's notice flag stays set after a run in the main thread handled its
    SIGTERM; trials in threads (the in-process backend) never listen, so it is not theirs
    (it stopped every one of them at its first report: the inner test loop found it)."""
    from trainer import preemption

    preemption.NOTICE.set()
    try:
        result = _sweep(tmp_path).run()
    finally:
        preemption.NOTICE.clear()
    _one_history(result, tmp_path / "ck")


@pytest.mark.slow
@pytest.mark.parametrize("make_backend", ["local_ray"], indirect=True)
def test_the_built_in_trainer_noticed_mid_epoch_continues_from_that_batch(tmp_path, make_backend):
    """SIGTERM to the worker while the built-in trainer is inside epoch 2: it saves there,
    the sweep keeps that state, and the trial goes on from the next batch in a new worker;
    each epoch is trained and reported once."""

    # The notice lands inside epoch 2, after its first batches and before its end: the timer
    # starts once epoch 1's report is seen (the trainer goes on at once) and fires 0.5 s
    # later. It fired 1.5 s later before, which on a fast day (1.6-1.9 s an epoch, plus the
    # report's way to the coordinator) landed after the epoch's end.
    sigterm_soon = threading.Timer(0.5, _sigterm_trial_workers).start
    result = Sweep(
        name="bt",
        search_space={"learning_rate": {"type": "choice", "values": [0.05]}},
        trainer="trainer",
        trainer_args={
            "data": "digits",
            "image_size": 24,
            "batch_size": 64,
            "num_epochs": 2,
            "threads": TRAIN_THREADS,
            "lr_schedule": "none",
            "device": "cpu",
        },
        root=tmp_path,
        backend=make_backend(),
        limits={"max_total_trials": 1},
    ).run(listener=toy_trainers.OnceAtEpoch(0, sigterm_soon))
    (trial,) = result.study.get_trials(deepcopy=False)
    assert trial.state == TrialState.COMPLETE, trial.user_attrs
    assert trial.user_attrs["preemptions"] == 1 and "losses" not in trial.user_attrs
    folder = trial_dir(tmp_path / "bt", 0)
    log = (folder / "trial.log").read_text()
    stopped = re.search(r"preemption notice: state saved at epoch 1, batch (\d+)", log)
    assert stopped is not None and 0 < int(stopped.group(1)) < 1437 // 64, log[-2000:]
    assert f"at epoch 1, batch {stopped.group(1)}" in log  # the next worker went on from there
    assert [r["epoch"] for r in read_history(folder)] == [0, 1]
    trained = [json.loads(x)["epoch"] for x in (folder / "outputs" / "metrics.jsonl").open()]
    assert trained == [0, 1]  # the trainer's own record: no epoch trained twice


def _sigterm_trial_workers() -> None:
    """SIGTERM to this process's Ray trial workers (its raylet's children), as a node's
    shutdown sends every process on it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    todo, mine = [os.getpid()], []
    while todo:
        for child in children.get(todo.pop(), []):
            mine.append(child)
            todo.append(child)
    for pid in mine:
        with contextlib.suppress(OSError):
            if b"TrialWorker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.parametrize("make_backend", ["local_ray"], indirect=True)
def test_a_trial_that_kills_its_worker_every_time_fails_after_a_few_losses(tmp_path, make_backend):
    result = _sweep(tmp_path, make_backend=make_backend, die_always_at=2).run()
    (trial,) = result.study.get_trials(deepcopy=False)
    assert trial.state == TrialState.FAIL and "worker process died" in trial.user_attrs["reason"]
    starts = [
        s["from"] for s in _records(trial_dir(tmp_path / "ck", 0), "span.jsonl") if "from" in s
    ]
    assert starts == [0, 2, 2, 2]


# -- training a completed trial further --------------------------------------------------------


def test_continue_trains_a_completed_trial_further_as_a_new_linked_trial(tmp_path):
    sweep = Sweep(
        name="ck",
        search_space=SPACE,
        trainer=toy_trainers.checkpointing,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 3},
        limits={"max_total_trials": 2},
        sampling_algorithm={"type": "random", "seed": 2},
    )
    first = sweep.run()
    best = first.best.number
    # Only the best completed trial keeps a checkpoint on the coordinator's disk.
    kept = [n for n in (0, 1) if CheckpointStore(trial_dir(tmp_path / "ck", n)).latest()]
    assert kept == [best]
    again = Sweep.load(
        "ck", root=tmp_path, trainer=toy_trainers.checkpointing, backend=InProcessBackend()
    )
    result = again.continue_trial(best, epochs=6)
    trials = result.study.get_trials(deepcopy=False)
    assert len(trials) == 3
    new = trials[2]
    assert new.state == TrialState.COMPLETE and new.user_attrs["continues"] == best
    assert new.params == trials[best].params
    folder = trial_dir(tmp_path / "ck", 2)
    history = read_history(folder)
    assert [r["epoch"] for r in history] == list(range(6))
    assert history[:3] == read_history(trial_dir(tmp_path / "ck", best))
    assert [s["from"] for s in _records(folder, "span.jsonl") if "from" in s] == [3]
    assert json.loads((folder / "params.json").read_text())["num_epochs"] == 6
    assert result.best.number == 2  # trained longer, better: the sweep's best now
    assert "continues trial" in result.trials.set_index("number").loc[2, "reason"]


@pytest.mark.parametrize(
    ("trainer", "args", "trial", "epochs", "message"),
    [
        ("checkpointing", {}, 7, 6, "has no trial 7"),
        ("checkpointing", {}, 0, 3, "has trained 3 epochs already"),
        ("checkpointing", {"fail_at": 0}, 0, 6, "trial 0 is failed"),
        ("quadratic", {}, 0, 6, "kept no checkpoint"),
    ],
)
def test_continue_refuses_what_it_cannot_do_in_one_sentence(
    tmp_path, trainer, args, trial, epochs, message
):
    from sweep.errors import SweepInputError

    fn = getattr(toy_trainers, trainer)
    Sweep(
        name="ck",
        search_space=SPACE,
        trainer=fn,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 3, **args},
        limits={"max_total_trials": 1},
    ).run()
    again = Sweep.load("ck", root=tmp_path, trainer=fn, backend=InProcessBackend())
    with pytest.raises(SweepInputError, match=message):
        again.continue_trial(trial, epochs=epochs)
    assert len(again.result().trials) == 1  # nothing was added


@pytest.mark.slow
@pytest.mark.parametrize("make_backend", ["local_ray"], indirect=True)
def test_a_retry_after_a_trial_timeout_continues_from_the_checkpoint(tmp_path, make_backend):
    sweep = Sweep(
        name="ck",
        search_space=SPACE,
        trainer=toy_trainers.checkpointing,
        root=tmp_path,
        backend=make_backend(),
        trainer_args={"num_epochs": 5, "hang_at": 3},
        retries=1,
        # The clock starts at launch: a worker's start on a busy 2-CPU machine took 4 s once,
        # the trial timed out before its first checkpoint and ran again under a new number.
        limits={"max_total_trials": 1, "trial_timeout": 10},
    )
    result = sweep.run()
    folder = _one_history(result, tmp_path / "ck", epochs=5)
    assert [s["from"] for s in _records(folder, "span.jsonl") if "from" in s] == [0, 3]


def test_ctrl_c_then_resume_continues_the_trial_from_its_last_report(tmp_path):
    from sweep.errors import SweepInterrupted

    with pytest.raises(SweepInterrupted, match="continue from it"):
        _sweep(tmp_path).run(listener=toy_trainers.CtrlCAfter(3))  # at epoch 2
    (trial,) = Sweep.load("ck", root=tmp_path).result().study.get_trials(deepcopy=False)
    assert trial.state == TrialState.RUNNING  # kept for resume, not failed
    result = Sweep.load(
        "ck", root=tmp_path, trainer=toy_trainers.checkpointing, backend=InProcessBackend()
    ).resume()
    folder = _one_history(result, tmp_path / "ck")
    assert [s["from"] for s in _records(folder, "span.jsonl") if "from" in s] == [0, 3]


def test_keep_checkpoints_none_gives_no_folder_and_a_retry_starts_over(tmp_path):
    sweep = Sweep(
        name="ck",
        search_space=SPACE,
        trainer=toy_trainers.checkpointing,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 8, "fail_at": 5},
        retries=1,
        limits={"max_total_trials": 1},
        keep={"checkpoints": "none"},
    )
    trials = sweep.run().study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].user_attrs["replaces"] == 0
    assert [r["epoch"] for r in read_history(trial_dir(tmp_path / "ck", 1))] == list(range(8))
    assert not (trial_dir(tmp_path / "ck", 0) / "checkpoint").exists()


@pytest.mark.slow
def test_continue_with_the_built_in_trainer_on_the_command_line_registers_the_new_best(
    tmp_path, capsys
):
    import yaml

    from sweep.cli import main

    (tmp_path / "digits.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "digits",
                "trainer": {
                    "args": {
                        "data": "digits",
                        "image_size": 16,
                        "batch_size": 64,
                        "num_epochs": 2,
                        "threads": TRAIN_THREADS,
                        "lr_schedule": "none",
                    }
                },
                "search_space": {"learning_rate": {"type": "choice", "values": [0.05]}},
                "limits": {"max_total_trials": 1},
                "register": {"model_name": "dg", "root": str(tmp_path / "models")},
            }
        )
    )
    root = ["--root", str(tmp_path / "sweeps")]
    assert main(["run", str(tmp_path / "digits.yaml"), *root]) == 0
    assert main(["continue", "digits", "--trial", "0", "--epochs", "4", *root]) == 0
    out = capsys.readouterr().out
    assert "trial 1" in out and "registered: dg:2" in out
    card = json.loads((tmp_path / "models" / "dg" / "2" / "card.json").read_text())
    assert card["trial"] == 1 and [h["epoch"] for h in card["history"]] == [0, 1, 2, 3]
    # The built-in trainer continued from its state: epochs 3 and 4 ran, 1 and 2 did not.
    ran = tmp_path / "sweeps" / "digits" / "trials" / "0001" / "outputs" / "metrics.jsonl"
    assert [json.loads(line)["epoch"] for line in ran.read_text().splitlines()] == [2, 3]


def test_a_trainer_is_told_the_checkpoint_policy_with_the_rungs_where_it_may_pause(tmp_path):
    """checkpoint: {every: 3} under promotion ASHA: each trial is told to save every 3 epochs
    and at its rungs (1 and 3 of 9, its bracket's), whatever every says; the plan says so."""
    from sweep.cli.run_cmd import describe

    def told(name: str, **settings: object) -> tuple[dict, Sweep]:
        sweep = Sweep(
            name=name,
            search_space={"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
            trainer=toy_trainers.checkpointing,
            root=tmp_path,
            backend=InProcessBackend(),
            trainer_args={"num_epochs": 9},
            early_termination={"type": "asha", "mode": "promotion", "min_resource": 1},
            limits={"max_total_trials": 1},
            **settings,
        )
        sweep.run()
        folder = trial_dir(tmp_path / name, 0) / "outputs"
        return json.loads((folder / "told.json").read_text()), sweep

    policy, sweep = told("every3", checkpoint={"every": 3, "interval": "10m"})
    assert policy == {"checkpoint_every": 3, "checkpoint_interval_s": 600.0, "checkpoint_at": "1,3"}
    assert "checkpoints: every 3 epochs or 600 s, at every rung" in describe(sweep.config)
    # The default (every epoch) tells a trainer nothing: it saves each epoch, as before.
    policy, sweep = told("each")
    assert policy == {} and "checkpoints:" not in describe(sweep.config)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"every": 0}, "checkpoint.every: expected a whole number of epochs, 1 or more, got 0"),
        ({"every": 2.5}, "checkpoint.every: expected a whole number"),
        ({"interval": "soon"}, "checkpoint.interval: expected a duration"),
        ({"interval": -5}, "checkpoint.interval: expected a duration"),
        ({"each": 2}, "checkpoint"),
    ],
)
def test_a_checkpoint_section_that_is_wrong_is_one_line_naming_the_key(section, message):
    from search_spaces import SearchSpaceError, parse_sweep

    with pytest.raises(SearchSpaceError, match=message):
        parse_sweep(
            {
                "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
                "checkpoint": section,
            }
        )
    ok = parse_sweep(
        {
            "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
            "checkpoint": {"every": 2, "interval": "1.5h"},
        }
    )
    assert (ok.checkpoint.every, ok.checkpoint.interval_s) == (2, 5400.0)


def test_what_a_sweep_says_of_checkpoint_every_the_trainer_takes():
    """``checkpoint: {every: 3}`` in a sweep without rungs or PBT tells the trainer no
    boundary (``checkpoint_at: ""``); the built-in trainer refused that, so every such sweep
    failed all its trials at their start."""
    from search_spaces import parse_sweep
    from sweep.scheduling.verdicts import checkpoint_params

    config = parse_sweep(
        {
            "name": "every3",
            "trainer": {"entry": "trainer", "args": {"data": "digits", "num_epochs": 9}},
            "search_space": {
                "learning_rate": {"type": "uniform", "min_value": 0.01, "max_value": 0.1}
            },
            "checkpoint": {"every": 3},
        }
    )
    told = checkpoint_params(config, None, 0, 9)
    assert told["checkpoint_at"] == ""
    from trainer.options import TrainConfig

    policy = TrainConfig.from_params({"data": "digits", "num_epochs": 9, **told})
    assert [e for e in range(1, 10) if policy.saves_after(e, since_save_s=0.0)] == [3, 6, 9]
