"""One study on a real PostgreSQL server shared by several coordinators."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweep.records.budget import replaced_numbers
from sweep.records.shared_study import STALE_AFTER_VAR
from tests.sweep_tests.postgres_server import binaries, postgres_server

ROOT = Path(__file__).resolve().parents[2]
needs_server = pytest.mark.skipif(
    binaries() is None, reason="PostgreSQL's server is not installed (scripts/test.sh installs it)"
)


def _file(tmp_path: Path, url: str, trials: int, epoch_s: float) -> Path:
    path = tmp_path / "shared.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "shared",
                "trainer": {
                    "entry": "tests.sweep_tests.toy_trainers:quadratic",
                    "args": {"num_epochs": 3, "epoch_s": epoch_s},
                },
                "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
                "sampling_algorithm": {"type": "random", "seed": 1},
                "limits": {"max_total_trials": trials},
                "storage": url,
            }
        )
    )
    return path


def _coordinator(
    tmp_path: Path, path: Path, root: str, stale_after_s: int | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if stale_after_s is not None:
        env[STALE_AFTER_VAR] = str(stale_after_s)
    return subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "run", str(path), "--root", root, "--parallel", "1"],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="shared", storage=url).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


@pytest.mark.parametrize("value", ["soon", "5", "nan"])
def test_a_bad_stale_after_setting_is_one_sentence(tmp_path, monkeypatch, value):
    from sweep.errors import SweepInputError
    from sweep.records.shared_study import grace_s

    monkeypatch.setenv(STALE_AFTER_VAR, value)
    with pytest.raises(SweepInputError, match=r"^SWEEP_STALE_AFTER_S: expected seconds, 10 or"):
        grace_s()
    monkeypatch.setenv(STALE_AFTER_VAR, "45")
    assert grace_s() == 45.0
    monkeypatch.delenv(STALE_AFTER_VAR)
    assert grace_s() == 30.0


def test_a_missing_database_driver_is_one_sentence_naming_the_extra(tmp_path):
    path = _file(tmp_path, "postgresql://me@127.0.0.1:1/db", 2, 0.0)
    probe = (
        "import sys; sys.modules['psycopg'] = None; from sweep.cli import main; "
        f"sys.exit(main(['validate', {str(path)!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    assert done.stderr == (
        "sweep: error: storage: a postgresql:// URL needs the psycopg "
        "driver, which is not installed (pip install -e '.[postgres]')\n"
    )


@pytest.mark.slow
@needs_server
def test_two_coordinators_share_20_trials_and_one_killed_is_covered_by_the_other(tmp_path):
    with postgres_server() as url:
        path = _file(tmp_path, url, 20, 0.3)
        # The killed one's trials are taken over after 15 s of silence, not 30 (the suite's
        # time), still three heartbeats.
        first = _coordinator(tmp_path, path, "a", stale_after_s=15)
        time.sleep(3)  # the study exists: the second joins it
        second = _coordinator(tmp_path, path, "b", stale_after_s=15)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            for proc in (first, second):
                assert proc.poll() is None, proc.communicate()
            trials = _trials(url)
            mine = [t for t in trials if t.state == TrialState.COMPLETE]
            owners = {t.user_attrs.get("coordinator") for t in trials}
            if (
                len(mine) >= 6
                and len(owners) >= 2
                and any(t.state == TrialState.RUNNING for t in trials)
            ):
                break
            time.sleep(0.2)
        # Side by side, neither failed a trial of the other's.
        assert not [t for t in trials if t.state == TrialState.FAIL], trials
        os.killpg(first.pid, signal.SIGKILL)  # the first coordinator and its Ray
        first.wait()
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err[-3000:]
        assert "Traceback" not in err
        trials = _trials(url)
    replaced = replaced_numbers(trials)
    counted = [t for t in trials if t.number not in replaced]
    assert len(counted) == 20 and all(t.state == TrialState.COMPLETE for t in counted)
    assert len({t.user_attrs.get("coordinator") for t in counted}) == 2
    # Every trial the killed coordinator left running ran again exactly once.
    lost = [
        t
        for t in trials
        if t.state == TrialState.FAIL and "replaces" not in t.user_attrs and t.number in replaced
    ]
    for t in lost:
        assert [r.number for r in trials if r.user_attrs.get("replaces") == t.number]
    assert len({t.params["x"] for t in counted}) == 20  # no two coordinators proposed alike


@pytest.mark.slow
@needs_server
def test_optuna_dashboard_lists_the_shared_study(tmp_path):
    import json
    import socket
    import urllib.request

    with postgres_server() as url:
        optuna.create_study(study_name="shared", storage=url)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dashboard = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "optuna-dashboard"),
                url,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/api/studies", timeout=2
                    ) as answer:
                        body = json.loads(answer.read())
                        studies = body.get("studies", body.get("study_summaries"))
                    break
                except OSError:
                    assert time.monotonic() < deadline, "optuna-dashboard did not answer"
                    time.sleep(0.5)
        finally:
            os.killpg(dashboard.pid, signal.SIGKILL)
            dashboard.wait()
    assert [s["study_name"] for s in studies] == ["shared"]


@pytest.mark.slow
@needs_server
def test_a_trial_whose_coordinator_died_before_owning_it_is_run_again(tmp_path):
    """A coordinator killed between asking the database for a trial and marking it its own
    leaves a RUNNING trial with no owner and no heartbeat, which Optuna's stale-trial check
    passes over: the next coordinator waits for it, claims it once GRACE_S has passed (here
    it is made a minute old) and runs it again, and the sweep ends whole. (Found under load:
    the survivor of the test above ended with such a trial RUNNING.)"""
    import sqlalchemy
    from optuna.distributions import FloatDistribution

    with postgres_server() as url:
        first = _coordinator(tmp_path, _file(tmp_path, url, 3, 0.0), "a")
        _, err = first.communicate(timeout=300)
        assert first.returncode == 0, err[-3000:]
        study = optuna.load_study(study_name="shared", storage=url)
        orphan = study.ask({"x": FloatDistribution(0.0, 1.0)})  # and its coordinator dies
        engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as db:
            db.execute(
                sqlalchemy.text(
                    "UPDATE trials SET datetime_start = datetime_start - interval '60 seconds' "
                    "WHERE trial_id = :id"
                ),
                {"id": orphan._trial_id},
            )
        engine.dispose()
        (tmp_path / "four").mkdir()
        second = _coordinator(tmp_path / "four", _file(tmp_path / "four", url, 4, 0.0), "b")
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err[-3000:]
        trials = _trials(url)
    assert trials[orphan.number].state == TrialState.FAIL
    replaced = replaced_numbers(trials)
    counted = [t for t in trials if t.number not in replaced]
    assert orphan.number in replaced and len(counted) == 4
    assert all(t.state == TrialState.COMPLETE for t in counted), [t.state for t in trials]
