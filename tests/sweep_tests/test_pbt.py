"""Population-based training: generations, exploit (a donor's checkpoint), explore, resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.records.layout import read_history, trial_dir
from tests.browser import drew_svg, rendered_dom
from tests.sweep_tests import toy_trainers

ROOT = Path(__file__).resolve().parents[2]
LR = {"lr": {"type": "loguniform", "min_value": math.log(1e-4), "max_value": math.log(0.1)}}
EPOCHS = 24


def _pbt(
    root: Path,
    *,
    seed: int = 1,
    epochs: int = EPOCHS,
    population: int = 8,
    trainer=toy_trainers.pbt_curve,
    slots: int = 2,
    synchronous: bool = True,
    **extra,
) -> Sweep:  # type: ignore[no-untyped-def]
    return Sweep(
        name="pbt",
        search_space=LR,
        trainer=trainer,
        root=root,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": epochs},
        objective={"primary_metric": "acc", "goal": "maximize"},
        sampling_algorithm={
            "type": "pbt",
            "population_size": population,
            "perturbation_interval": 2,
            "quantile": 0.25,
            "perturbation_factors": [0.5, 2.0],
            "seed": seed,
            **({} if synchronous else {"synchronous": False}),
        },
        limits={"max_concurrent_trials": slots},
        **extra,
    )


def _check_generations(trials: list[optuna.trial.FrozenTrial], sweep_dir: Path, epochs: int) -> int:
    """Every member's history is one curve of ``epochs`` epochs, each run once; every copy
    continued from its donor's state at that epoch with the params it was given. Returns
    the number of copies."""
    histories = {t.number: read_history(trial_dir(sweep_dir, t.number)) for t in trials}
    copies = 0
    for t in trials:
        assert t.state == TrialState.COMPLETE, (t.number, t.state, t.user_attrs)
        history = histories[t.number]
        assert [r["epoch"] for r in history] == list(range(epochs))
        ran = [
            json.loads(line)["epoch"]
            for line in (trial_dir(sweep_dir, t.number) / "outputs" / "ran.jsonl")
            .read_text()
            .splitlines()
        ]
        assert sorted(ran) == list(range(epochs))  # no epoch ran twice
        for entry in t.user_attrs.get("lineage", []):
            g, donor = entry["epoch"], entry["from"]
            assert g % 2 == 0 and 0 < g < epochs
            # Its next report started from the donor's accuracy, with the explored rate.
            assert history[g]["start_acc"] == pytest.approx(histories[donor][g - 1]["acc"])
            assert history[g]["lr"] == pytest.approx(entry["params"]["lr"])
            # Its own report of the epoch before stays its own.
            assert history[g - 1]["acc"] == pytest.approx(t.intermediate_values[g - 1])
            copies += 1
    return copies


@pytest.mark.slow
def test_the_bottom_quantile_copies_a_top_members_checkpoint_each_generation(tmp_path):
    result = _pbt(tmp_path).run()
    trials = result.study.get_trials(deepcopy=False)
    assert len(trials) == 8
    copies = _check_generations(trials, tmp_path / "pbt", EPOCHS)
    # 8 members, quantile 0.25: 2 copies in each of the 11 generations (boundaries 2..22).
    assert copies == 2 * 11
    for g in range(2, EPOCHS, 2):
        donors = [
            e["from"] for t in trials for e in t.user_attrs.get("lineage", []) if e["epoch"] == g
        ]
        ranked = sorted(trials, key=lambda t: t.intermediate_values[g - 1], reverse=True)
        assert set(donors) <= {t.number for t in ranked[:2]}, g
        receivers = [
            t.number
            for t in trials
            if any(e["epoch"] == g for e in t.user_attrs.get("lineage", []))
        ]
        assert set(receivers) == {t.number for t in ranked[-2:]}, g


@pytest.mark.slow
def test_on_a_curve_whose_best_rate_falls_pbt_beats_every_fixed_rate(tmp_path):
    def fixed(lr: float) -> float:
        acc = 0.0
        for _ in range(EPOCHS):
            acc += toy_trainers.curve_gain(lr, acc)
        return acc

    best_fixed = max(fixed(10 ** (-4 + 3 * i / 600)) for i in range(601))
    result = _pbt(tmp_path).run()
    assert result.best is not None
    assert result.best.value > best_fixed + 0.1, (result.best.value, best_fixed)
    # The winner's schedule: its rate fell as its accuracy rose.
    schedule = result.best.schedule
    assert schedule and schedule[0]["epoch"] == 0
    assert (
        schedule[-1]["params"]["lr"] < schedule[0]["params"]["lr"]
        or len({round(math.log10(s["params"]["lr"]), 3) for s in schedule}) > 1
    )


def _forgetful(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    for epoch in range(int(params["num_epochs"])):
        if report(epoch, {"acc": epoch * params["lr"]}):
            break
    return {"acc": 0.0}


def test_a_trainer_that_cannot_checkpoint_fails_its_members_saying_how(tmp_path):
    result = _pbt(tmp_path, trainer=_forgetful, population=2).run()
    reasons = list(result.trials["reason"])
    assert all(
        "sampling_algorithm: pbt" in r and "params['checkpoint_dir']" in r for r in reasons
    ), reasons


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"early_termination": {"type": "median"}}, "early_termination"),
        ({"compute": "azure:gpu-cluster"}, "sampling_algorithm"),
        ({"keep": {"checkpoints": "none"}}, "keep.checkpoints: none"),
        ({"sampling_algorithm": {"type": "pbt", "quantile": 0.7}}, "sampling_algorithm.quantile"),
        (
            {"sampling_algorithm": {"type": "pbt", "synchronous": "no"}},
            "sampling_algorithm.synchronous: expected true or false",
        ),
        (
            {"sampling_algorithm": {"type": "pbt", "population_size": 1}},
            "sampling_algorithm.population_size",
        ),
        (
            {"sampling_algorithm": {"type": "pbt", "perturbation_factors": [0.8, -1]}},
            "sampling_algorithm.perturbation_factors",
        ),
    ],
)
def test_validate_refuses_what_pbt_cannot_do_in_one_sentence(tmp_path, change, says):
    import yaml

    doc = {
        "name": "pbt",
        "trainer": {"entry": "tests.sweep_tests.toy_trainers:pbt_curve", "args": {"num_epochs": 4}},
        "search_space": {"lr": {"type": "uniform", "min_value": 0.01, "max_value": 0.1}},
        "objective": {"primary_metric": "acc", "goal": "maximize"},
        "sampling_algorithm": {"type": "pbt", "population_size": 4},
        **change,
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(doc))
    done = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "validate", "space.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr, done.stderr


SPACE = """\
name: pbt
trainer:
  entry: tests.sweep_tests.toy_trainers:pbt_curve
  args: {num_epochs: 8, epoch_s: 0.4}
search_space:
  lr: {type: loguniform, min_value: -9.2, max_value: -2.3}
objective: {primary_metric: acc, goal: maximize}
sampling_algorithm: {type: pbt, population_size: 4, perturbation_interval: 2, quantile: 0.25,
                     perturbation_factors: [0.5, 2.0], seed: 4}
limits: {max_concurrent_trials: 2}
"""


def _study(root: Path) -> optuna.Study:
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(
        JournalFileBackend(str(root / "pbt" / "study.journal"))
    )
    return optuna.load_study(study_name="pbt", storage=storage)


@pytest.mark.slow
@pytest.mark.parametrize("synchronous", [True, False])
def test_kill_9_in_the_middle_of_a_pbt_sweep_then_resume_goes_on_where_it_was(
    tmp_path, synchronous
):
    root = tmp_path / "sweeps"
    space = SPACE if synchronous else SPACE.replace("seed: 4}", "seed: 4, synchronous: false}")
    assert space != SPACE or synchronous
    (tmp_path / "space.yaml").write_text(space)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "run", "space.yaml", "--root", str(root)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # After the first generation's copy, while members train their way to the next one.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if (root / "pbt" / "study.journal").exists():
                try:
                    trials = _study(root).get_trials(deepcopy=False)
                except KeyError:  # the journal is there before the study's first record
                    time.sleep(0.3)
                    continue
                if any(t.user_attrs.get("lineage") for t in trials) and any(
                    len(t.intermediate_values) == 3 for t in trials
                ):
                    break
            time.sleep(0.3)
        else:
            raise AssertionError("the sweep did not reach its second generation in time")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        time.sleep(1)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    done = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "resume", "pbt", "--root", str(root)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    trials = _study(root).get_trials(deepcopy=False)
    assert len(trials) == 4
    histories = {t.number: read_history(trial_dir(root / "pbt", t.number)) for t in trials}
    copies = []
    for t in trials:
        assert t.state == TrialState.COMPLETE, (t.number, t.state)
        by_epoch = {r["epoch"]: r for r in histories[t.number]}
        assert sorted(by_epoch) == list(range(8))  # one curve, no epoch twice
        for entry in t.user_attrs.get("lineage", []):
            # Asynchronously a member may continue from a donor further on (continued_at).
            g = int(entry.get("continued_at", entry["epoch"]))
            donor = {r["epoch"]: r for r in histories[entry["from"]]}
            assert by_epoch[g]["start_acc"] == pytest.approx(donor[g - 1]["acc"])
            copies.append(entry["epoch"])
    if synchronous:
        # 3 generations of 1 copy each (4 members, quantile 0.25), none lost or repeated.
        assert sorted(copies) == [2, 4, 6]
    else:
        assert copies and all(g in (2, 4, 6) for g in copies)


@pytest.mark.slow
def test_status_best_and_the_report_show_lineage_and_schedule(tmp_path, capsys):
    import re

    from reports import build_html
    from reports.plots import pbt_schedule
    from sweep import compare
    from sweep.cli import main

    result = _pbt(tmp_path, epochs=6, population=4).run()
    trials = result.study.get_trials(deepcopy=False)
    copies = [(t.number, e) for t in trials for e in t.user_attrs.get("lineage", [])]
    assert len(copies) == 2  # 4 members, quantile 0.25: one copy at 2 and one at 4 epochs

    assert main(["status", "pbt", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for number, entry in copies:
        line = next(x for x in out.splitlines() if x.split()[:1] == [str(number)])
        assert f"copied trial {entry['from']} at {entry['epoch']} epochs" in line
    assert main(["best", "pbt", "--root", str(tmp_path), "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    schedule = best["schedule"]
    assert schedule[0]["epoch"] == 0
    assert best["params"] == schedule[-1]["params"]  # the params it ended with
    mine = [e for n, e in copies if n == best["trial"]]
    assert [s["epoch"] for s in schedule[1:]] == [e["epoch"] for e in mine]

    # The chart: one square per member and epoch, one arrow per copy.
    data = compare(["pbt"], tmp_path).sweeps[0]
    fig = pbt_schedule(data)
    assert fig is not None
    assert len(fig.data[0].x) == 4 * 6 and len(fig.layout.annotations) == 2
    page = tmp_path / "report.html"
    build_html(compare(["pbt"], tmp_path), page)
    assert 'id="pbt-0"' in page.read_text() and "copied trial" in page.read_text()
    dom = rendered_dom(page, tmp_path / "p")
    assert drew_svg(dom, "pbt-0")
    assert re.search(r'<pre id="js-errors">\s*</pre>', dom)


class _Events:
    """The order in which the coordinator heard of reports and endings."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, int]] = []

    def trial_started(self, number, params):  # type: ignore[no-untyped-def]
        pass

    def trial_reported(self, number, epoch, value):  # type: ignore[no-untyped-def]
        self.seen.append(("report", number, epoch))

    def trial_ended(self, number, state, value, reason):  # type: ignore[no-untyped-def]
        self.seen.append(("end", number, -1))


@pytest.mark.parametrize("synchronous", [False, True])
def test_asynchronous_pbt_lets_the_fast_members_finish_without_waiting(tmp_path, synchronous):
    """Trial 0 trains twenty times slower. Synchronous generations hold every member at each
    boundary until it arrives; asynchronous PBT does not: the others end while it is still
    early in its run. Judged by the order of events, not by a clock."""
    events = _Events()
    sweep = _pbt(
        tmp_path,
        epochs=12,
        population=4,
        trainer=toy_trainers.pbt_uneven,
        slots=4,
        synchronous=synchronous,
    )
    result = sweep.run(listener=events)
    assert all(t.state == TrialState.COMPLETE for t in result.study.get_trials())
    first_end = events.seen.index(next(e for e in events.seen if e[0] == "end" and e[1] != 0))
    slow_epochs = [e[2] for e in events.seen[:first_end] if e[0] == "report" and e[1] == 0]
    slow_by_then = max(slow_epochs, default=-1) + 1
    if synchronous:
        assert slow_by_then >= 10  # the others waited for it at every boundary
    else:
        assert slow_by_then <= 6, slow_by_then


def test_asynchronous_pbt_copies_no_donor_that_holds_another_s_state_it_has_not_trained_on():
    """A top member that copied another at its own epoch has that other's checkpoint and its
    own history until it reports again: a member copying it then would start from a state
    its reports do not describe (the lineage's donor would be the wrong one)."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from search_spaces import parse_search_space, to_optuna
    from search_spaces.samplers import Pbt
    from sweep.records.trial_attrs import LINEAGE, PAUSED
    from sweep.scheduling.population import Population

    space = parse_search_space({"lr": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}})
    population = Population(
        Pbt(seed=0, synchronous=False, quantile=0.25), space, to_optuna(space).decode, True
    )

    def member(number, values, **attrs):  # type: ignore[no-untyped-def]
        trial = create_trial(
            state=TrialState.RUNNING,
            params={"lr": 0.5},
            distributions={"lr": FloatDistribution(0.0, 1.0)},
            intermediate_values=dict(enumerate(values)),
            user_attrs=attrs,
        )
        trial.number = number
        return trial

    def donor_of_0(top_attrs):  # type: ignore[no-untyped-def]
        trials = [
            member(0, [0.1, 0.2], **{PAUSED: 2}),  # the bottom member, at its boundary
            member(1, [0.5, 0.9], **top_attrs),  # the top one, still training
            member(2, [0.4, 0.5]),
            member(3, [0.3, 0.4]),
        ]
        (move,) = population.moves(trials, active={1, 2, 3}, launched_all=True)
        return move.donor

    assert donor_of_0({}) == 1
    copied = {LINEAGE: [{"epoch": 2, "from": 2, "params": {"lr": 0.4}}]}
    assert donor_of_0(copied) is None  # trial 1 holds trial 2's state: 0 goes on as it is
    trained_since = {LINEAGE: [{"epoch": 1, "from": 2, "params": {"lr": 0.4}}]}
    assert donor_of_0(trained_since) == 1  # it reported epoch 2 after its copy at 1


def test_asynchronous_pbt_copies_a_running_donor_s_committed_checkpoint(tmp_path):
    """A member in the bottom quantile at a boundary continues from a top member's latest
    committed checkpoint, at that member's epoch when it is further on (its lineage says
    where), and its next report starts from the donor's accuracy there."""
    sweep = _pbt(
        tmp_path, epochs=12, population=6, trainer=toy_trainers.pbt_uneven, synchronous=False
    )
    result = sweep.run()
    trials = result.study.get_trials()
    histories = {t.number: read_history(trial_dir(result.sweep_dir, t.number)) for t in trials}
    copies = 0
    for t in trials:
        assert t.state == TrialState.COMPLETE
        by_epoch = {r["epoch"]: r for r in histories[t.number]}
        assert sorted(by_epoch) == list(range(12))  # one curve: passed on or its own
        for entry in t.user_attrs.get("lineage", []):
            at = int(entry.get("continued_at", entry["epoch"]))  # epochs trained then
            donor = {r["epoch"]: r for r in histories[entry["from"]]}
            assert by_epoch[at]["start_acc"] == pytest.approx(donor[at - 1]["acc"])
            assert by_epoch[at]["lr"] == pytest.approx(entry["params"]["lr"])
            copies += 1
    assert copies >= 2
