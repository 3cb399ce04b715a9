"""The journal written a batch at a time: what is committed is on disk, what is not is only
in memory, a started trial is always on disk, and a study used after the run writes at once."""

from __future__ import annotations

import subprocess
import sys
import threading

import optuna
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import TrialState

from search_spaces import parse_sweep, to_optuna
from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.coordination.study import batched_writes, open_study
from sweep.records.journal import FlockJournalLock, GroupCommit
from tests.sweep_tests import toy_trainers


def _on_disk(path) -> optuna.Study:  # type: ignore[no-untyped-def]
    """The study as another process would read it from the file now."""
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(backend))


def test_records_wait_for_commit_and_reads_see_them(tmp_path):
    config = parse_sweep(
        {"name": "s", "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}}}
    )
    study = open_study(config, to_optuna(config.search_space), tmp_path)
    with batched_writes(study) as commit:
        trial = study.ask()
        trial.report(0.5, 0)
        # This process sees its own records; the file does not have them yet.
        assert study.get_trials()[0].intermediate_values == {0: 0.5}
        assert _on_disk(tmp_path / "study.journal").get_trials() == []
        commit()
        assert len(_on_disk(tmp_path / "study.journal").get_trials()) == 1
        study.tell(trial, 1.0)
        assert _on_disk(tmp_path / "study.journal").get_trials()[0].state == TrialState.RUNNING
    # Leaving the block commits, and from then on every record is written at once.
    assert _on_disk(tmp_path / "study.journal").get_trials()[0].state == TrialState.COMPLETE
    study.set_user_attr("note", "after the run")
    assert _on_disk(tmp_path / "study.journal").user_attrs == {"note": "after the run"}


def test_an_uncommitted_batch_is_all_a_crash_loses(tmp_path):
    path = tmp_path / "study.journal"
    backend = GroupCommit(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    study = optuna.create_study(study_name="s", storage=optuna.storages.JournalStorage(backend))
    backend.batching = True
    first = study.ask()
    study.tell(first, 1.0)
    backend.commit()
    second = study.ask()
    second.report(0.1, 0)
    # The process dies here: the second trial's records never reach the file.
    trials = _on_disk(path).get_trials()
    assert [(t.number, t.state) for t in trials] == [(0, TrialState.COMPLETE)]


class _WatchingBackend(InProcessBackend):
    """Reads the journal file as each trial starts: the trial must already be there."""

    def __init__(self, path) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.path, self.seen = path, []

    def start(self, spec) -> None:  # type: ignore[no-untyped-def]
        on_disk = _on_disk_named(self.path, "batches")
        self.seen.append(spec.number in {t.number for t in on_disk.get_trials()})
        super().start(spec)


def _on_disk_named(path, name):  # type: ignore[no-untyped-def]
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))


def test_a_trial_is_on_disk_before_it_runs_and_all_is_there_at_the_end(tmp_path):
    backend = _WatchingBackend(tmp_path / "batches" / "study.journal")
    result = Sweep(
        name="batches",
        backend=backend,
        trainer=toy_trainers.quadratic,
        root=tmp_path,
        trainer_args={"num_epochs": 3},
        search_space={"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
        sampling_algorithm={"type": "random", "seed": 0},
        early_termination={"type": "median", "n_startup_trials": 2},
        limits={"max_total_trials": 6, "max_concurrent_trials": 2},
    ).run()
    assert backend.seen == [True] * 6
    on_disk = _on_disk_named(tmp_path / "batches" / "study.journal", "batches").get_trials()
    in_memory = result.study.get_trials()
    assert [(t.state, t.value, t.intermediate_values, t.user_attrs) for t in on_disk] == [
        (t.state, t.value, t.intermediate_values, t.user_attrs) for t in in_memory
    ]


def test_a_reader_sees_what_a_running_sweep_writes_after_it_opened(tmp_path):
    config = parse_sweep(
        {"name": "s", "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}}}
    )
    space = to_optuna(config.search_space)
    writer = open_study(config, space, tmp_path)
    reader = open_study(config, space, tmp_path, create=False)
    assert reader.get_trials() == []
    with batched_writes(writer) as commit:
        writer.tell(writer.ask(), 1.0)
        commit()
    assert [t.value for t in reader.get_trials()] == [1.0]


_HOLD = """
import os, sys, time
from sweep.records.journal import FlockJournalLock
lock = FlockJournalLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), 9)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def _holder(journal, how):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(journal), how], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _acquired_within(lock: FlockJournalLock, seconds: float) -> bool:
    got = threading.Event()

    def take() -> None:
        lock.acquire()
        got.set()
        lock.release()

    threading.Thread(target=take, daemon=True).start()
    return got.wait(seconds)


def test_the_journal_lock_excludes_another_writer_and_dies_with_its_holder(tmp_path):
    journal = tmp_path / "study.journal"
    holder = _holder(journal, "1.5")
    assert not _acquired_within(FlockJournalLock(str(journal)), 0.5)  # held elsewhere
    holder.wait(timeout=30)
    assert _acquired_within(FlockJournalLock(str(journal)), 5)
    # kill -9 while holding it: the next writer does not wait out Optuna's 30 s grace.
    _holder(journal, "die").wait(timeout=30)
    assert _acquired_within(FlockJournalLock(str(journal)), 1)


def test_a_sweep_s_writes_leave_no_lock_file_behind_or_made_per_write(tmp_path):
    Sweep(
        name="locks",
        backend=InProcessBackend(),
        trainer=toy_trainers.quadratic,
        root=tmp_path,
        trainer_args={"num_epochs": 2},
        search_space={"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
        sampling_algorithm={"type": "random", "seed": 0},
        limits={"max_total_trials": 3, "max_concurrent_trials": 1},
    ).run()
    names = sorted(p.name for p in (tmp_path / "locks").iterdir() if "journal" in p.name)
    assert names == ["study.journal", "study.journal" + FlockJournalLock.SUFFIX]
