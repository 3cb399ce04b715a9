"""The third hostile-input round: what a trainer leaves in its checkpoint folder, a `continue`
interrupted at any point, values that validated and then crashed, and what was accepted where
it should have been refused. Each test is one probe of the round and fails without its fix."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.cli import main
from sweep.errors import SweepInterrupted
from sweep.records.checkpoint_folder import LiveCheckpoint
from sweep.records.checkpoint_store import CheckpointStore, write_token
from sweep.records.layout import JOURNAL, LOCK, read_history, trial_dir
from sweep.trials import CheckpointFiles
from tests.sweep_tests import toy_trainers

SPACE = {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}}


# -- the checkpoint folder: only regular files, bounded, one bad entry costs itself ----------


def _changes_within(live: LiveCheckpoint, seconds: float = 10.0) -> CheckpointFiles | None:
    """``live.changes()``, failing the test (not hanging it) when it does not return."""
    out: list[CheckpointFiles | None] = []
    thread = threading.Thread(target=lambda: out.append(live.changes()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"changes() did not return within {seconds} s"
    return out[0]


@pytest.fixture
def live(tmp_path):
    live = LiveCheckpoint(tmp_path / "trial", max_bytes=1 << 20)
    folder = live.fill(None)
    (folder / "state.pt").write_bytes(b"s" * 100)
    yield live
    live.remove()


def test_a_socket_in_the_folder_is_skipped_with_a_note_and_the_rest_kept(live):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(live.path / "sock"))
    try:
        changes = _changes_within(live)
    finally:
        sock.close()
    assert changes is not None and dict(changes.changed) == {"state.pt": b"s" * 100}
    assert changes.names == ("state.pt",)
    assert any("sock: is a socket" in note for note in changes.notes)


def test_a_fifo_does_not_hang_the_report(live):
    os.mkfifo(live.path / "pipe")
    changes = _changes_within(live)
    assert changes is not None and changes.names == ("state.pt",)
    assert any("pipe: is a FIFO" in note for note in changes.notes)


def test_a_device_is_not_read(live):
    try:
        os.mknod(live.path / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
    except PermissionError:
        pytest.skip("making a device node needs root")
    changes = _changes_within(live)
    assert changes is not None and changes.names == ("state.pt",)
    assert any("zero: is a device" in note for note in changes.notes)


def test_a_file_past_max_checkpoint_bytes_is_left_out_with_one_note(live):
    with open(live.path / "huge.bin", "wb") as f:
        f.truncate(50 << 20)  # sparse: 50 MB that cost no disk
    changes = _changes_within(live)
    assert changes is not None and "huge.bin" not in changes.changed
    assert "huge.bin" not in changes.names and "state.pt" in changes.names
    (note,) = changes.notes
    assert "huge.bin" in note and "keep.max_checkpoint_bytes" in note
    (live.path / "state.pt").write_bytes(b"t" * 100)
    again = live.changes()
    assert again is not None and not again.notes  # said once, not at every report
    assert dict(again.changed) == {"state.pt": b"t" * 100}


def test_a_folder_replaced_by_a_link_is_not_followed(live, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.pem").write_text("not yours")
    live.changes()
    for entry in live.path.iterdir():
        entry.unlink()
    live.path.rmdir()
    live.path.symlink_to(elsewhere, target_is_directory=True)
    changes = _changes_within(live)
    assert changes is not None and not changes.changed and changes.names == ()
    assert any("replaced by a link" in note for note in changes.notes)
    live.remove()
    assert (elsewhere / "secret.pem").exists()  # the link went, not what it points at


def test_a_link_inside_the_folder_is_not_followed(live, tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "big").write_bytes(b"o" * 10)
    (live.path / "to_dir").symlink_to(tmp_path / "outside", target_is_directory=True)
    (live.path / "to_file").symlink_to(tmp_path / "outside" / "big")
    changes = _changes_within(live)
    assert changes is not None and changes.names == ("state.pt",)


def test_one_badly_named_file_costs_itself_not_the_checkpoint(live, tmp_path):
    (live.path / "a\\b").write_bytes(b"x")
    changes = _changes_within(live)
    assert changes is not None and changes.names == ("state.pt",)
    assert any("'a\\\\b'" in note for note in changes.notes)
    store = CheckpointStore(tmp_path / "store")
    store.commit(0, {}, changes)
    files = store.read()
    assert files is not None and dict(files.changed) == {"state.pt": b"s" * 100}


def test_the_store_skips_a_bad_name_it_is_sent_and_keeps_the_rest(tmp_path):
    store = CheckpointStore(tmp_path)
    names = ("good.pt", "a\\b", "../escape")
    store.commit(0, {}, CheckpointFiles({n: b"x" for n in names}, names))
    files = store.read()
    assert files is not None and set(files.changed) == {"good.pt"}
    assert not (tmp_path / "escape").exists()


def test_a_file_removed_between_the_scan_and_the_read_is_left_to_the_next_report(live, monkeypatch):
    (live.path / "gone.pt").write_bytes(b"g")
    scan = LiveCheckpoint._scan

    def scan_then_remove(self):  # type: ignore[no-untyped-def]
        found = scan(self)
        (self.path / "gone.pt").unlink(missing_ok=True)
        return found

    monkeypatch.setattr(LiveCheckpoint, "_scan", scan_then_remove)
    changes = live.changes()
    assert changes is not None and changes.names == ("state.pt",)


_KINDS = st.sampled_from(["file", "big", "fifo", "socket", "link_file", "link_dir", "dir"])
_NAMES = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=12
).filter(lambda n: n not in (".", ".."))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    entries=st.dictionaries(_NAMES, _KINDS, max_size=6),
    sizes=st.lists(st.integers(0, 3000), min_size=6, max_size=6),
    staged=st.booleans(),
)
def test_fuzz_whatever_the_folder_holds_a_report_returns_and_commits_its_regular_files(
    tmp_path_factory, entries, sizes, staged
):
    """Sent as bytes (a worker on another node) or staged in the store (on the
    coordinator's disk), the same files arrive."""
    root = tmp_path_factory.mktemp("fuzz")
    trial = root / "trials" / "0000"
    store = CheckpointStore(trial)
    token = write_token(root) if staged else ""
    live = LiveCheckpoint(trial, max_bytes=4000, store_token=token)
    folder = live.fill(None)
    (root / "target").mkdir()
    regular: dict[str, bytes] = {}
    socks = []
    for (name, kind), size in zip(entries.items(), sizes, strict=False):
        path = folder / name
        try:
            if kind in ("file", "big"):
                data = os.urandom(size if kind == "file" else 5000)
                path.write_bytes(data)
                if not name.endswith(".tmp") and "\\" not in name:
                    regular[name] = data
            elif kind == "fifo":
                os.mkfifo(path)
            elif kind == "socket":
                sock = socket.socket(socket.AF_UNIX)
                sock.bind(str(path))
                socks.append(sock)
            elif kind == "link_file":
                (root / "target" / "f").write_bytes(b"f")
                path.symlink_to(root / "target" / "f")
            elif kind == "link_dir":
                path.symlink_to(root / "target", target_is_directory=True)
            else:
                path.mkdir()
        except OSError:
            continue  # a name the file system refuses (too long for a socket's path)
    try:
        changes = _changes_within(live)
    finally:
        for sock in socks:
            sock.close()
    sent = dict(changes.changed) if changes is not None else {}
    if changes is not None and changes.staged:
        assert staged and not sent
        sent = {n: (store.root / changes.staged / n).read_bytes() for n in changes.staged_names}
    assert sum(len(d) for d in sent.values()) <= 4000
    assert all(sent[name] == regular[name] for name in sent)  # only regular files, as written
    if sum(len(d) for d in regular.values()) <= 4000:
        assert sent == regular
    if changes is not None:
        store.commit(0, {}, changes)
        files = store.read()
        assert files is not None and dict(files.changed) == sent
    live.remove()
    assert not folder.exists() and (root / "target").is_dir()


# -- `sweep continue`: every interruption of it resumable, never stranded -------------------


def _checkpointed(root: Path, trials: int = 2) -> Sweep:
    return Sweep(
        name="ck",
        search_space=SPACE,
        trainer=toy_trainers.checkpointing,
        root=root,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 3},
        limits={"max_total_trials": trials},
        sampling_algorithm={"type": "random", "seed": 2},
    )


def _load(root: Path) -> Sweep:
    return Sweep.load(
        "ck", root=root, trainer=toy_trainers.checkpointing, backend=InProcessBackend()
    )


def test_continue_after_resume_with_more_trials_runs_and_is_not_stranded(tmp_path):
    _checkpointed(tmp_path).run()
    _load(tmp_path).resume(max_trials=3)  # the README's own step: the budget is now spent
    best = _load(tmp_path).result().best
    assert best is not None
    result = _load(tmp_path).continue_trial(best.number, epochs=5)
    new = result.study.get_trials(deepcopy=False)[-1]
    assert new.state == TrialState.COMPLETE and new.user_attrs["continues"] == best.number
    assert [r["epoch"] for r in read_history(trial_dir(tmp_path / "ck", new.number))] == list(
        range(5)
    )
    assert _load(tmp_path).trials_left(3) == 0  # outside the budget: nothing left behind


def test_ctrl_c_during_continue_is_resumed_by_the_command_it_prints(tmp_path):
    _checkpointed(tmp_path).run()
    best = _load(tmp_path).result().best
    assert best is not None
    with pytest.raises(SweepInterrupted, match="sweep resume ck"):
        _load(tmp_path).continue_trial(best.number, epochs=8, listener=toy_trainers.CtrlCAfter(5))
    stopped = _load(tmp_path).result().study.get_trials(deepcopy=False)[-1]
    assert stopped.state == TrialState.RUNNING and "continues" in stopped.user_attrs
    assert _load(tmp_path).trials_left() == 1  # not "finished, nothing to resume"
    result = _load(tmp_path).resume()
    trials = result.study.get_trials(deepcopy=False)
    assert len(trials) == 3 and trials[-1].state == TrialState.COMPLETE
    assert [r["epoch"] for r in read_history(trial_dir(tmp_path / "ck", 2))] == list(range(8))


def test_a_continue_stopped_while_starting_does_not_take_the_next_ones_place(tmp_path):
    _checkpointed(tmp_path).run()
    best = _load(tmp_path).result().best
    assert best is not None
    # What Ctrl-C during `continue`'s start-up leaves: its trial queued, never started.
    study = _load(tmp_path).result().study
    study.enqueue_trial(
        study.trials[best.number].params,
        user_attrs={"continues": best.number, "overrides": {"num_epochs": 600}},
    )
    result = _load(tmp_path).continue_trial(best.number, epochs=5)
    trials = result.study.get_trials(deepcopy=False)
    stale, asked = trials[2], trials[3]
    assert asked.state == TrialState.COMPLETE and asked.user_attrs["overrides"]["num_epochs"] == 5
    assert stale.state == TrialState.FAIL and "replaced" in stale.user_attrs["reason"]
    assert len(read_history(trial_dir(tmp_path / "ck", 3))) == 5
    assert _load(tmp_path).trials_left() == 0


# -- values that validated, then crashed: now refused by validate, in one line ---------------

SECTIONS = {
    "trainer": "{entry: 'tests.sweep_tests.toy_trainers:quadratic'}",
    "search_space": "{x: {type: uniform, min_value: 0, max_value: 1}}",
    "objective": "{primary_metric: best_val_acc, goal: maximize}",
}
BASE = "".join(f"{k}: {v}\n" for k, v in SECTIONS.items())


def _file(extra: str) -> str:
    """BASE with the section ``extra`` (``key: value``) added or put in its place."""
    key, _, value = extra.partition(": ")
    return "".join(f"{k}: {v}\n" for k, v in {**SECTIONS, key: value}.items())


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ("sampling_algorithm: {type: tpe, seed: -1}", "sampling_algorithm.seed"),
        (
            "sampling_algorithm: {type: random, seed: 100000000000000000000000}",
            "sampling_algorithm.seed",
        ),
        (
            "sampling_algorithm: {type: pbt, perturbation_factors: [.inf]}",
            "sampling_algorithm.perturbation_factors",
        ),
        ("storage: 'postgresql://u@[::1/x'", "storage: is not a valid URL"),
        ("storage: 'redis://localhost/0'", "storage: redis:// is not a database"),
        ("storage: 'file:///etc/passwd'", "storage: file:// is not a database"),
        ("storage: 'journal://x'", "storage: journal:// is not a database"),
        (
            "storage: 'postgresql://u:${SWEEP_TEST_UNSET_VAR}@db/x'",
            "storage: uses ${SWEEP_TEST_UNSET_VAR}, which is not set",
        ),
        (
            "trainer: {entry: 'tests.sweep_tests.toy_trainers:quadratic', env: {A: \"x\\0y\"}}",
            "trainer.env.A: holds a NUL byte",
        ),
        (
            "trainer: {entry: 'tests.sweep_tests.toy_trainers:quadratic', env: {A: '"
            + "x" * 200_000
            + "'}}",
            "trainer.env.A: is longer than",
        ),
        (
            "search_space: {x: {type: qlognormal, mu: 700, sigma: 1, q: 1}}",
            "search_space.x: qlognormal reaches",
        ),
    ],
)
def test_validate_refuses_what_run_would_crash_on_in_one_line(
    tmp_path, capsys, monkeypatch, extra, names
):
    monkeypatch.delenv("SWEEP_TEST_UNSET_VAR", raising=False)
    (tmp_path / "s.yaml").write_text(_file(extra))
    assert main(["validate", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert names in err, err


def test_a_wandb_tpe_seed_out_of_range_is_refused_by_validate(tmp_path, capsys):
    (tmp_path / "w.yaml").write_text(
        "job: my-team/digits/job-train.py:latest\nrun_cap: 4\n"
        "metric: {name: val_acc, goal: maximize}\nparameters: {x: {min: 0.0, max: 1.0}}\n"
        "scheduler: {job: wandb/sweep-jobs/job-optuna-sweep-scheduler:latest, num_workers: 1, "
        "settings: {sampler: {type: TPESampler, args: {seed: -1}}}}\n"
    )
    assert (
        main(
            [
                "validate",
                str(tmp_path / "w.yaml"),
                "--trainer",
                "tests.sweep_tests.toy_trainers:quadratic",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seed" in err and "Traceback" not in err, err


def test_set_reads_numbers_as_the_file_does(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(
        _file("search_space: {x: {type: uniform, min_value: 1e-4, max_value: 1}}")
    )
    assert (
        main(["validate", str(tmp_path / "s.yaml"), "--set", "search_space.x.min_value=1e-3"]) == 0
    ), capsys.readouterr().err


def test_a_relative_sqlite_path_is_relative_to_the_sweep_file(tmp_path, monkeypatch):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "s.yaml").write_text(_file("storage: sqlite:///studies/x.db"))
    monkeypatch.chdir(tmp_path)
    sweep = Sweep.from_yaml(tmp_path / "project" / "s.yaml")
    assert sweep.config.storage == f"sqlite:///{tmp_path / 'project' / 'studies' / 'x.db'}"


def test_a_trainer_module_that_calls_os_exit_is_one_line_and_leaves_no_lock(
    tmp_path, capsys, monkeypatch
):
    (tmp_path / "exits_at_import.py").write_text("import os\nos._exit(7)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "s.yaml").write_text(
        BASE.replace("tests.sweep_tests.toy_trainers:quadratic", "exits_at_import:train")
    )
    assert main(["run", str(tmp_path / "s.yaml"), "--root", str(tmp_path / "sw")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "os._exit(7)" in err and "exits_at_import.py:2" in err
    assert not (tmp_path / "sw" / "s" / LOCK).exists()


@pytest.mark.slow
def test_resume_heals_a_journal_damaged_in_the_middle(tmp_path, capsys):
    Sweep(
        name="s",
        search_space=SPACE,
        trainer=toy_trainers.quadratic,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 2},
        limits={"max_total_trials": 3},
    ).run()
    journal = tmp_path / "s" / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    journal.write_bytes(b"".join(lines[:middle] + [b"{not json\n"] + lines[middle:]))
    code = main(["resume", "s", "--root", str(tmp_path)])
    out = capsys.readouterr()
    assert code in (0, 1) and "Traceback" not in out.err, out.err
    assert "sweep resume" not in out.err  # not the advice that brought the user here
    (side,) = (tmp_path / "s").glob(f"{JOURNAL}.torn-*")
    assert side.read_bytes().startswith(b"{not json")
    assert main(["status", "s", "--root", str(tmp_path)]) == 0


def test_report_csv_onto_the_sweeps_own_report_html_is_refused(tmp_path, capsys):
    Sweep(
        name="s",
        search_space=SPACE,
        trainer=toy_trainers.quadratic,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 1},
        limits={"max_total_trials": 1},
    ).run()
    html = tmp_path / "s" / "report.html"
    before = html.read_bytes()
    assert main(["report", "s", "--root", str(tmp_path), "--csv", str(html)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "report.html" in err
    assert html.read_bytes() == before
    assert main(["report", "s", "--root", str(tmp_path), "--html", str(html)]) == 0


# -- tracking never holds a trial ------------------------------------------------------------


def test_a_dead_tracking_server_costs_one_warning_and_no_call(tmp_path, caplog, monkeypatch):
    from sweep.records import tracking

    monkeypatch.setattr(
        tracking.MlflowTracker,
        "client",
        property(lambda self: pytest.fail("MLflow was called for a server that does not answer")),
    )
    with caplog.at_level(logging.WARNING, logger="sweep.records.tracking"):
        result = Sweep(
            name="s",
            search_space=SPACE,
            trainer=toy_trainers.quadratic,
            root=tmp_path,
            backend=InProcessBackend(),
            trainer_args={"num_epochs": 2},
            limits={"max_total_trials": 2},
            tracking={"mlflow": "http://127.0.0.1:1"},
        ).run()
    assert result.counts.get("complete") == 2
    warnings = [r for r in caplog.records if r.name == "sweep.records.tracking"]
    assert len(warnings) == 1 and "127.0.0.1" in warnings[0].getMessage()


def test_a_file_tracking_uri_logs_the_trials(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    store = tmp_path / "mlruns"
    Sweep(
        name="s",
        search_space=SPACE,
        trainer=toy_trainers.quadratic,
        root=tmp_path / "sw",
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 2},
        limits={"max_total_trials": 2},
        tracking={"mlflow": f"file://{store}"},
    ).run()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"file://{store}")
    experiment = client.get_experiment_by_name("s")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2 and all("val_acc" in r.data.metrics for r in children)


# -- register: an infeasible trial only when asked, and its card says so --------------------


@pytest.mark.slow
def test_register_of_an_infeasible_trial_needs_infeasible_and_its_card_says_so(tmp_path, capsys):
    root, registry = tmp_path / "sweeps", tmp_path / "models"
    Sweep(
        name="inf",
        root=root,
        backend=InProcessBackend(),
        trainer="trainer",
        trainer_args={
            "data": "digits",
            "image_size": 16,
            "batch_size": 64,
            "num_epochs": 1,
            "threads": 1,
            "device": "cpu",
            "measure": ["params_m"],
        },
        search_space={"learning_rate": {"type": "choice", "values": [0.05]}},
        objective={"primary_metric": "best_val_acc", "goal": "maximize"},
        constraints=["params_m <= 1"],
        keep={"models": "all"},
        sampling_algorithm="grid",
        limits={"max_total_trials": 1},
        register={"model_name": "inf", "root": str(registry)},
    ).run()
    assert not (registry / "inf").exists()  # no feasible trial: nothing registered
    assert main(["register", "inf", "--trial", "0", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "breaks params_m <= 1" in err and "--infeasible" in err
    assert not (registry / "inf").exists()
    assert main(["register", "inf", "--trial", "0", "--infeasible", "--root", str(root)]) == 0
    card = json.loads((registry / "inf" / "1" / "card.json").read_text())
    assert card["infeasible"] == ["params_m <= 1"]


def test_ctrl_c_ends_the_tracked_run_of_a_trial_that_runs_again(tmp_path, monkeypatch):
    """A trial without a checkpoint stopped by Ctrl-C fails and is queued again: its tracked
    run ends (FAILED), as every failed trial's does, instead of staying RUNNING for ever."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    store = f"file://{tmp_path / 'mlruns'}"
    with pytest.raises(SweepInterrupted):
        Sweep(
            name="s",
            search_space=SPACE,
            trainer=toy_trainers.quadratic,
            root=tmp_path / "sw",
            backend=InProcessBackend(),
            trainer_args={"num_epochs": 6},
            limits={"max_total_trials": 1},
            tracking={"mlflow": store},
        ).run(listener=toy_trainers.CtrlCAfter(2))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("s")
    assert experiment is not None
    children = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" in r.data.tags
    ]
    assert [r.info.status for r in children] == ["FAILED"]
    assert children[0].data.tags["sweep.reason"].startswith("interrupted")
