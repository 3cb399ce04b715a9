"""A real ``sweep run`` killed with -9 or stopped with Ctrl-C, then ``sweep resume``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweep.records.budget import replaced_numbers

ROOT = Path(__file__).resolve().parents[2]
SPACE = """\
name: crash
trainer:
  entry: tests.sweep_tests.toy_trainers:slow
  args: {num_epochs: 4}
search_space:
  x: {type: uniform, min_value: 0.0, max_value: 1.0}
sampling_algorithm: {type: random, seed: 3}
limits: {max_total_trials: 6, max_concurrent_trials: 2}
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _study(root: Path) -> optuna.Study:
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(
        JournalFileBackend(str(root / "crash" / "study.journal"))
    )
    return optuna.load_study(study_name="crash", storage=storage)


def _wait_for(root: Path, ready, timeout: float = 180) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (root / "crash" / "study.journal").exists():
            trials = _study(root).get_trials(deepcopy=False)
            if ready(trials):
                return
        time.sleep(0.5)
    raise AssertionError("the sweep did not get there in time")


def _start(tmp_path: Path, space: str = SPACE) -> subprocess.Popen[str]:
    (tmp_path / "space.yaml").write_text(space)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweep.cli",
            "run",
            str(tmp_path / "space.yaml"),
            "--root",
            str(tmp_path / "sweeps"),
        ],
        env=_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_interruptible,
    )


def _interruptible() -> None:
    # An ignored or blocked signal stays so across exec (a shell without job control starts
    # background commands with SIGINT ignored; a library may block it in the suite's
    # process): the coordinator must hear Ctrl-C as a terminal's foreground process would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _resume(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweep.cli", "resume", "crash", "--root", str(tmp_path / "sweeps")],
        env=_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _session_processes(sid: int) -> list[str]:
    """The processes still in the session the coordinator led (its Ray included)."""
    out = subprocess.run(
        ["ps", "-o", "pid=,stat=,args=", "-s", str(sid)], capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line.split()[1:2] != ["Z"]]


def _check_totals(study: optuna.Study, kept: dict[int, float]) -> None:
    trials = study.get_trials(deepcopy=False)
    replaced = replaced_numbers(trials)
    counted = [t for t in trials if t.number not in replaced]
    assert len(counted) == 6, [(t.number, t.state) for t in trials]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in counted)
    # Completed trials survived with their values; nothing ran twice under one number.
    for number, value in kept.items():
        assert trials[number].state == TrialState.COMPLETE and trials[number].value == value
    # A seeded sampler resumed continues its sequence: no finished trial's params replayed.
    assert len({t.params["x"] for t in counted}) == len(counted)
    by_number = {t.number: t for t in trials}
    for t in trials:
        if "replaces" in t.user_attrs:
            assert by_number[t.user_attrs["replaces"]].params == t.params


@pytest.mark.slow
def test_kill_9_then_resume_loses_nothing_and_counts_once(tmp_path):
    root = tmp_path / "sweeps"
    proc = _start(tmp_path)
    try:
        _wait_for(
            root,
            lambda ts: (
                sum(t.state == TrialState.COMPLETE for t in ts) >= 2
                and any(t.state == TrialState.RUNNING for t in ts)
            ),
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # Nothing of the sweep outlives it: Ray's processes, its agents, the trials.
        left = _session_processes(proc.pid)
        for _ in range(30):
            if not left:
                break
            time.sleep(0.5)
            left = _session_processes(proc.pid)
        assert not left, left
    finally:
        time.sleep(1)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the Ray processes it had started
        except ProcessLookupError:
            pass
    before = _study(root).get_trials(deepcopy=False)
    kept = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}
    interrupted = {t.number: t.params for t in before if t.state == TrialState.RUNNING}
    assert interrupted

    done = _resume(tmp_path)
    assert done.returncode == 0, done.stderr
    study = _study(root)
    _check_totals(study, kept)
    trials = study.get_trials(deepcopy=False)
    for number, params in interrupted.items():
        assert trials[number].state == TrialState.FAIL
        (rerun,) = [t for t in trials if t.user_attrs.get("replaces") == number]
        assert rerun.params == params


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    root = tmp_path / "sweeps"
    proc = _start(tmp_path)
    # Early (the first round of trials): on a busy machine the signal must still find the
    # sweep running, not finished.
    _wait_for(
        root,
        lambda ts: (
            any(t.state == TrialState.RUNNING and t.intermediate_values for t in ts)
            and sum(t.state == TrialState.COMPLETE for t in ts) <= 1
        ),
    )
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "sweep resume crash" in err and "Traceback" not in err
    trials = _study(root).get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert [t for t in trials if t.state == TrialState.WAITING]
    kept = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}

    done = _resume(tmp_path)
    assert done.returncode == 0, done.stderr
    _check_totals(_study(root), kept)


@pytest.mark.slow
def test_two_coordinators_raced_on_one_sweep_the_second_is_refused(tmp_path):
    root = tmp_path / "sweeps"
    # 6 trials of 4 1.5-second epochs, 2 at a time: the winner runs for 18 s or more, far
    # longer than the resume below takes, so the resume always meets it running.
    long = SPACE.replace("args: {num_epochs: 4}", "args: {num_epochs: 4, epoch_s: 1.5}")
    first = _start(tmp_path, long)
    second = _start(tmp_path, long)  # the same file at the same moment
    _wait_for(root, lambda ts: any(t.state == TrialState.RUNNING for t in ts))
    during = _resume(tmp_path)  # and a resume while the winner runs
    still_running = first.poll() is None or second.poll() is None
    assert still_running  # else this test would check nothing about the resume
    out = [p.communicate(timeout=300) for p in (first, second)]
    codes = [first.returncode, second.returncode]
    assert sorted(codes) == [0, 2], out
    loser = out[codes.index(2)][1]
    assert "already running" in loser or "already exists" in loser, loser
    assert "Traceback" not in loser
    assert during.returncode == 2 and "already running (coordinator pid" in during.stderr
    trials = _study(root).get_trials(deepcopy=False)
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.params["x"] for t in trials}) == 6  # nothing ran twice


@pytest.mark.slow
def test_a_storage_secret_appears_in_no_file_and_no_output(tmp_path):
    secret = "s3cr@t:/%41-xyzzy"
    (tmp_path / "space.yaml").write_text(
        SPACE.replace("crash", "secret")
        + (f"storage: sqlite:///{tmp_path}/study.db?password=${{SWEEP_TEST_SECRET}}\n")
    )
    done = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "run", "space.yaml", "--root", "sweeps"],
        env={**_env(), "SWEEP_TEST_SECRET": secret},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "${SWEEP_TEST_SECRET}" in (tmp_path / "sweeps" / "secret" / "sweep.yaml").read_text()
    from urllib.parse import quote

    forms = {secret, quote(secret, safe=""), "xyzzy"}
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 10
    for path in written:
        data = path.read_bytes()
        assert not [f for f in forms if f.encode() in data], path
    assert not [f for f in forms if f in done.stdout + done.stderr]


CHECKPOINTING = SPACE.replace("toy_trainers:slow", "toy_trainers:slow_checkpointing").replace(
    "args: {num_epochs: 4}", "args: {num_epochs: 4, epoch_s: 1.0}"
)


def _ran_epochs(root: Path) -> int:
    return sum(
        len((p).read_text().splitlines())
        for p in (root / "crash" / "trials").glob("*/outputs/ran.jsonl")
    )


@pytest.mark.slow
def test_kill_9_then_resume_continues_each_trial_from_its_last_report(tmp_path):
    from sweep.records.layout import read_history, trial_dir

    root = tmp_path / "sweeps"
    (tmp_path / "space.yaml").write_text(CHECKPOINTING)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "run", "space.yaml", "--root", str(root)],
        env=_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # Mid-trial: a trial RUNNING with two of its four 1-second epochs reported (what the
        # journal shows is at most a second old), one trial completed already.
        _wait_for(
            root,
            lambda ts: (
                sum(t.state == TrialState.COMPLETE for t in ts) >= 1
                and any(
                    t.state == TrialState.RUNNING and len(t.intermediate_values) == 2 for t in ts
                )
            ),
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        time.sleep(1)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = _study(root).get_trials(deepcopy=False)
    interrupted = [t.number for t in before if t.state == TrialState.RUNNING]
    assert interrupted

    done = _resume(tmp_path)
    assert done.returncode == 0, done.stderr
    trials = _study(root).get_trials(deepcopy=False)
    replaced = replaced_numbers(trials)
    counted = [t for t in trials if t.number not in replaced]
    assert len(counted) == 6 and all(t.state == TrialState.COMPLETE for t in counted)
    continued = [n for n in interrupted if n not in replaced]
    assert continued, "no interrupted trial had a checkpoint"
    for number in continued:
        # The same trial, its history once per epoch, its pruner's values too.
        assert trials[number].user_attrs["restarts"] == 1
        folder = trial_dir(root / "crash", number)
        assert [r["epoch"] for r in read_history(folder)] == [0, 1, 2, 3]
        assert sorted(trials[number].intermediate_values) == [0, 1, 2, 3]
    # Epochs executed: the planned ones, plus at most one per interrupted trial.
    assert _ran_epochs(root) <= 6 * 4 + len(interrupted)


@pytest.mark.slow
def test_ctrl_c_three_times_in_a_row_ends_without_a_traceback(tmp_path):
    root = tmp_path / "sweeps"
    proc = _start(tmp_path)
    _wait_for(root, lambda ts: any(t.state == TrialState.RUNNING for t in ts))
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.15)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


@pytest.mark.slow
def test_kill_9_after_resume_with_a_changed_space_then_resume_keeps_the_new_space(tmp_path):
    """``sweep resume NAME --space FILE`` killed with -9 mid-way: a plain ``sweep resume``
    goes on in the changed space (it is in sweep.yaml and the study, not in the killed
    process), nothing finished is lost and the budget counts once."""
    root = tmp_path / "sweeps"
    first = SPACE.replace("max_total_trials: 6", "max_total_trials: 2")
    done = _start(tmp_path, first)
    assert done.wait(timeout=300) == 0, done.communicate()
    (tmp_path / "wider.yaml").write_text(
        "search_space:\n  x: {type: uniform, min_value: 1.0, max_value: 2.0}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "resume", "crash", "--root", str(root)]
        + ["--space", str(tmp_path / "wider.yaml"), "--max-trials", "6"],  # 6 in all
        env=_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(
            root,
            lambda ts: (
                sum(t.state == TrialState.COMPLETE for t in ts) >= 3
                and any(t.state == TrialState.RUNNING for t in ts)
            ),
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        time.sleep(1)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = _study(root).get_trials(deepcopy=False)
    kept = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}

    again = _resume(tmp_path)
    assert again.returncode == 0, again.stderr
    study = _study(root)
    _check_totals(study, kept)
    trials = study.get_trials(deepcopy=False)
    assert [t.params["x"] < 1.0 for t in trials[:2]] == [True, True]  # the first space
    assert all(1.0 <= t.params["x"] <= 2.0 for t in trials[2:])  # every one since: the new
    assert study.user_attrs["space_changes"][0]["from_trial"] == 2
    status = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "status", "crash", "--root", str(root)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "search space changed from trial 2 on" in status.stdout
