"""Checkpoints from a worker on the coordinator's disk: copied into the store by the kernel,
only their names sent; from anywhere else, their bytes (through Ray)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from sweep import Sweep
from sweep.backends import Backend, InProcessBackend
from sweep.errors import SweepError
from sweep.records.checkpoint_folder import LiveCheckpoint
from sweep.records.checkpoint_store import STAGED, CheckpointStore, write_token
from sweep.records.layout import trial_dir
from sweep.records.trial_records import THROUGH_RAY_VAR, TrialRecords, store_token
from sweep.trials import CheckpointFiles, Reported
from tests.sweep_tests import toy_trainers
from trainer.checkpoint import STATE_FILE, load_state, save_state


def _staged_folders(store: CheckpointStore) -> list[Path]:
    return [p for p in store.root.iterdir() if p.name.startswith(STAGED)]


@pytest.fixture
def pair(tmp_path):
    """A trial's store, the coordinator's token in the sweep's folder, and the working copy of
    a worker that reads it."""
    trial = trial_dir(tmp_path, 0)
    store = CheckpointStore(trial)
    live = LiveCheckpoint(trial, store_token=write_token(tmp_path))
    live.fill(None)
    yield store, live
    live.remove()


def test_a_worker_on_the_coordinator_s_disk_stages_its_changes_and_sends_only_names(pair):
    store, live = pair
    assert live.stages
    (live.path / "state.pt").write_bytes(b"s" * 1000)
    (live.path / "sub").mkdir()
    (live.path / "sub" / "w.bin").write_bytes(b"w" * 10)
    changes = live.changes()
    assert changes is not None and dict(changes.changed) == {}  # no bytes travel
    assert changes.staged.startswith(STAGED)
    assert sorted(changes.staged_names) == ["state.pt", "sub/w.bin"]
    assert (store.root / changes.staged / "state.pt").read_bytes() == b"s" * 1000
    store.commit(0, {"acc": 0.5}, changes)
    assert not _staged_folders(store)  # the staged folder became the version
    files = store.read()
    assert files is not None
    assert dict(files.changed) == {"state.pt": b"s" * 1000, "sub/w.bin": b"w" * 10}
    # The next report: one file changed, one unchanged (linked from the version before).
    (live.path / "state.pt").write_bytes(b"t" * 1000)
    changes = live.changes()
    assert changes is not None and changes.staged_names == ("state.pt",)
    store.commit(1, {"acc": 0.6}, changes)
    files = store.read()
    assert files is not None
    assert dict(files.changed) == {"state.pt": b"t" * 1000, "sub/w.bin": b"w" * 10}


def test_a_worker_that_does_not_find_the_run_s_token_sends_bytes(tmp_path):
    trial = trial_dir(tmp_path, 0)
    write_token(tmp_path)
    for token in ("", "another run's token"):
        live = LiveCheckpoint(trial, store_token=token)
        live.fill(None)
        (live.path / "state.pt").write_bytes(b"s")
        changes = live.changes()
        assert not live.stages
        assert (
            changes is not None
            and not changes.staged
            and dict(changes.changed) == {"state.pt": b"s"}
        )
        live.remove()


def test_a_new_run_drops_what_the_last_one_staged_and_a_new_token_retires_the_old(tmp_path):
    records = TrialRecords(tmp_path, 0)
    live = LiveCheckpoint(records.folder, store_token=store_token(tmp_path))
    live.fill(None)
    (live.path / "state.pt").write_bytes(b"s")
    assert live.stages and live.changes() is not None  # never sent (a lost worker)
    assert _staged_folders(records.checkpoint)
    records.new_run()
    assert not _staged_folders(records.checkpoint)
    store_token(tmp_path)  # the coordinator's next run
    late = LiveCheckpoint(records.folder, rank=1, store_token="stale")
    assert not late.stages
    live.remove()


def test_committing_one_report_keeps_the_next_report_s_staged_files(pair):
    """The coordinator commits a report after answering it: a short epoch's next report can
    be staged before that commit clears the store's old folders."""
    store, live = pair
    (live.path / "state.pt").write_bytes(b"1")
    first = live.changes()
    (live.path / "state.pt").write_bytes(b"22")
    second = live.changes()
    assert first is not None and second is not None and first.staged != second.staged
    store.commit(0, {}, first)
    store.commit(1, {}, second)
    files = store.read()
    assert files is not None and dict(files.changed) == {"state.pt": b"22"}


def test_a_staged_folder_name_that_is_not_one_is_refused(pair, tmp_path):
    store, _ = pair
    store.commit(0, {}, CheckpointFiles({"a": b"1"}, ("a",)))
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "a").write_bytes(b"x")
    (store.root / ".staged-link").symlink_to(tmp_path / "outside", target_is_directory=True)
    latest = store.latest()
    assert latest is not None
    for name in ("../outside", latest.folder.name, ".staged-link", ".staged-missing"):
        with pytest.raises(SweepError, match="is not a folder staged"):
            store.commit(1, {}, CheckpointFiles({}, ("a",), staged=name, staged_names=("a",)))
    assert store.latest() == latest and (tmp_path / "outside" / "a").read_bytes() == b"x"


def test_what_is_not_a_regular_file_is_never_staged(pair):
    store, live = pair
    (live.path / "state.pt").write_bytes(b"s" * 10)
    os.mkfifo(live.path / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(live.path / "sock"))
    (live.path / "link").symlink_to(live.path / "state.pt")
    with open(live.path / "huge.bin", "wb") as f:
        f.truncate(live.max_bytes + 1)  # sparse: past the limit, costs no disk
    try:
        changes = live.changes()
    finally:
        sock.close()
    assert changes is not None and changes.staged_names == ("state.pt",)
    assert changes.names == ("state.pt",)
    assert {n.split(":")[0] for n in changes.notes} == {"pipe", "sock", "link", "huge.bin"}
    staged = store.root / changes.staged
    assert sorted(p.name for p in staged.iterdir()) == ["state.pt"]


def _sweep(root: Path, backend: Backend | None = None) -> Sweep:
    return Sweep(
        name="st",
        search_space={"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
        trainer=toy_trainers.checkpointing,
        root=root,
        backend=backend or InProcessBackend(),
        trainer_args={"num_epochs": 4},
        limits={"max_total_trials": 2, "max_concurrent_trials": 2},
        sampling_algorithm={"type": "random", "seed": 3},
        keep={"checkpoints": "all"},
    )


@pytest.mark.parametrize("through_ray", [False, True])
def test_a_sweep_s_checkpoints_travel_by_the_disk_unless_told_otherwise(
    tmp_path, monkeypatch, through_ray
):
    reads: list[str] = []
    real_read = LiveCheckpoint._read

    def counted(self, name):  # type: ignore[no-untyped-def]
        reads.append(name)
        return real_read(self, name)

    monkeypatch.setattr(LiveCheckpoint, "_read", counted)
    if through_ray:
        monkeypatch.setenv(THROUGH_RAY_VAR, "1")
    result = _sweep(tmp_path).run()
    trials = result.study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for t in trials:
        store = CheckpointStore(trial_dir(tmp_path / "st", t.number))
        latest = store.latest()
        assert latest is not None and latest.epoch == 3
        assert not _staged_folders(store)
    # Staged, no file's bytes were read into the report; sent, every changed file's were.
    assert bool(reads) == through_ray


def test_the_built_in_trainer_s_state_is_not_flushed_at_every_save_unless_asked(
    tmp_path, monkeypatch
):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    model = torch.nn.Linear(3, 2)
    save_state(tmp_path / "a", 0, model=model)
    assert synced == []  # a sweep's working copy: the sweep keeps the durable one
    save_state(tmp_path / "b", 0, model=model, durable=True)
    assert len(synced) == 1
    assert load_state(tmp_path / "a", model=torch.nn.Linear(3, 2))[0] == 1


def test_the_built_in_trainer_s_saves_skip_the_crc_torch_load_never_checks(tmp_path):
    """torch.save's CRC-32 of every tensor cost ~0.1 s of each ResNet-18 epoch's save; the
    state written without it loads the same, and the process's own setting stays."""
    import zipfile

    model = torch.nn.Linear(300, 200)
    torch.serialization.set_crc32_options(True)
    save_state(tmp_path / "a", 4, model=model, extra={"best": 0.9})
    with zipfile.ZipFile(tmp_path / "a" / STATE_FILE) as archive:
        tensors = [i for i in archive.infolist() if "/data/" in i.filename]
        assert tensors and all(i.CRC == 0 for i in tensors)  # not computed
    assert torch.serialization.get_crc32_options() is True
    restored = torch.nn.Linear(300, 200)
    assert load_state(tmp_path / "a", model=restored) == (5, {"best": 0.9})
    assert torch.equal(restored.weight, model.weight)


@pytest.mark.slow
def test_workers_on_this_machine_stage_every_checkpoint(tmp_path, make_backend):
    """Ray's workers here (a local Ray, or the nodes of a ``ray start`` cluster on this
    machine) share the coordinator's disk: every report's checkpoint comes staged."""
    backend = make_backend()
    reports: list[Reported] = []
    poll = backend.poll

    def recording(timeout: float):  # type: ignore[no-untyped-def]
        events = poll(timeout)
        reports.extend(e for e in events if isinstance(e, Reported))
        return events

    backend.poll = recording  # type: ignore[method-assign]
    result = _sweep(tmp_path, backend).run()
    assert [t.state for t in result.study.get_trials()] == [TrialState.COMPLETE] * 2
    assert len(reports) == 8
    assert all(r.checkpoint is not None and r.checkpoint.staged for r in reports)


@pytest.mark.parametrize("planted", ["link", "fifo"])
def test_a_token_that_cannot_be_written_sends_bytes_and_touches_nothing_else(tmp_path, planted):
    target = tmp_path / "elsewhere"
    target.write_text("keep me")
    if planted == "link":
        (tmp_path / ".token").symlink_to(target)
    else:
        os.mkfifo(tmp_path / ".token")
    assert write_token(tmp_path) == ""  # no hang on the FIFO, no write through the link
    assert target.read_text() == "keep me"
    live = LiveCheckpoint(trial_dir(tmp_path, 0), store_token="")
    assert not live.stages
