"""A trial's ending, owned by ``sweep.coordination.endings``: each ending has all five effects
(the trial's attributes and state in the study, its records, ``keep``, the tracker, the
listener), and every path that ends a trial (a verdict, an exception, a retry, a timeout, the
sweep's timeout, Ctrl-C, a dead coordinator's trials taken over) goes through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from search_spaces.config import Keep
from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.coordination.endings import Endings
from sweep.errors import SweepInterrupted
from sweep.records.checkpoint_folder import LIVE
from sweep.records.disk import ModelFiles
from sweep.records.layout import OUTPUTS, trial_dir
from sweep.records.tracking import NoTracking
from sweep.records.trial_attrs import ATTEMPT, EPOCHS, LOSSES, REASON, REPLACES
from sweep.records.trial_records import FAILURE, TrialRecords
from tests.sweep_tests import toy_trainers


class Heard(NoTracking):
    """Records what a tracker and a listener are told of trials' ends (both protocols)."""

    def __init__(self) -> None:
        self.ended: dict[int, tuple[str, str]] = {}

    def trial_started(self, number: int, params: Any) -> dict[str, str]:  # type: ignore[override]
        return {}

    def trial_reported(self, number: int, epoch: int, metrics: Any) -> None:
        pass

    def trial_ended(self, number: int, state: str, value: float | None, reason: str) -> None:
        self.ended[number] = (state, reason)


class _Bench:
    """One study, one sweep folder, ``keep: {models: 1}``: trials made by hand."""

    def __init__(self, root: Path, retries: int = 0) -> None:
        self.study = optuna.create_study(direction="maximize")
        self.root = root
        self.tracker, self.listener = Heard(), Heard()
        files = ModelFiles(root, Keep(models=1), maximize=[True], completed=[])
        self.endings = Endings(
            self.study, root, files, self.tracker, self.listener, retries=retries
        )

    def trial(self, *, checkpoint: bool = False) -> int:
        trial = self.study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        records = TrialRecords(self.root, trial.number)
        records.start({"x": trial.params["x"]})
        (records.folder / LIVE).mkdir()  # the worker's working copies
        (records.folder / OUTPUTS).mkdir()
        (records.folder / OUTPUTS / "model.pt").write_bytes(b"weights")
        if checkpoint:
            from sweep.trials import CheckpointFiles

            records.report(0, {"v": 0.5}, CheckpointFiles({"state.pt": b"s"}, ("state.pt",)))
        return trial.number

    def frozen(self, number: int) -> optuna.trial.FrozenTrial:
        return self.study.get_trials(deepcopy=False)[number]

    def model_kept(self, number: int) -> bool:
        return (trial_dir(self.root, number) / OUTPUTS / "model.pt").exists()

    def live_gone(self, number: int) -> bool:
        return not (trial_dir(self.root, number) / LIVE).exists()


def test_complete_has_all_five_effects_and_keep_drops_the_worse_model(tmp_path):
    bench = _Bench(tmp_path)
    first, second = bench.trial(), bench.trial()
    bench.endings.complete(first, [0.9], epochs=3)
    bench.endings.complete(second, [0.5], epochs=2, constraints={"latency <= 1": 0.0})
    assert bench.frozen(first).user_attrs[EPOCHS] == 3  # attributes
    assert bench.frozen(first).state == TrialState.COMPLETE  # study
    assert bench.frozen(first).value == 0.9
    assert bench.live_gone(first) and bench.live_gone(second)  # records
    assert bench.model_kept(first) and not bench.model_kept(second)  # keep: models 1
    assert bench.tracker.ended[first] == ("COMPLETE", "")  # tracker
    assert bench.listener.ended[second] == ("COMPLETE", "")  # listener


def test_an_infeasible_completion_keeps_no_model_and_says_which_constraint(tmp_path):
    bench = _Bench(tmp_path)
    number = bench.trial()
    bench.endings.complete(number, [0.99], epochs=2, constraints={"latency_ms <= 1": 3.0})
    assert bench.frozen(number).constraints == {"latency_ms <= 1": 3.0}
    assert not bench.model_kept(number)
    assert bench.listener.ended[number] == ("COMPLETE", "breaks latency_ms <= 1")


@pytest.mark.parametrize("ending", ["prune", "fail", "give_up"])
def test_prune_fail_and_give_up_have_all_five_effects(tmp_path, ending):
    bench = _Bench(tmp_path)
    number = bench.trial()
    getattr(bench.endings, ending)(number, "why it ended", epochs=2)
    frozen = bench.frozen(number)
    state = TrialState.PRUNED if ending == "prune" else TrialState.FAIL
    assert frozen.user_attrs[REASON] == "why it ended" and frozen.user_attrs[EPOCHS] == 2
    assert frozen.state == state
    assert bench.live_gone(number)
    failure = trial_dir(tmp_path, number) / FAILURE
    assert failure.exists() == (ending != "prune")  # a failure's whole message is kept
    assert not bench.model_kept(number)  # it can never be the best
    name = "PRUNED" if ending == "prune" else "FAIL"
    assert bench.tracker.ended[number] == (name, "why it ended")
    assert bench.listener.ended[number] == (name, "why it ended")


def test_run_again_fails_the_trial_with_every_effect_and_queues_a_counted_copy(tmp_path):
    bench = _Bench(tmp_path)
    number = bench.trial()
    counted = bench.endings.run_again(
        number, "interrupted", epochs=1, attempt=1, said=" (will retry)"
    )
    frozen, again = bench.study.get_trials(deepcopy=False)
    assert counted == 1
    assert frozen.state == TrialState.FAIL and frozen.user_attrs[REASON] == "interrupted"
    assert again.state == TrialState.WAITING
    assert again.system_attrs["fixed_params"] == frozen.params  # queued with its params
    assert again.user_attrs[REPLACES] == number and again.user_attrs[ATTEMPT] == 1
    assert bench.live_gone(number) and not bench.model_kept(number)
    assert bench.tracker.ended[number] == ("FAIL", "interrupted")
    assert bench.listener.ended[number] == ("FAIL", "interrupted (will retry)")


def test_a_sweep_continue_trial_that_runs_again_stays_outside_the_budget(tmp_path):
    bench = _Bench(tmp_path)
    number = bench.trial()
    bench.study.get_trials(deepcopy=False)  # a continue trial: it names its source
    optuna.Trial(bench.study, bench.frozen(number)._trial_id).set_user_attr("continues", 0)
    assert bench.endings.run_again(number, "lost", epochs=1) == 0
    assert bench.endings.outside == [number + 1]


def test_continue_keeps_the_trial_running_with_its_checkpoint_and_counts_why(tmp_path):
    bench = _Bench(tmp_path, retries=1)
    number = bench.trial(checkpoint=True)
    assert bench.endings.after_failure(number, "worker died", epochs=1, lost=True) == 0
    assert bench.endings.after_failure(number, "raised", epochs=1) == 0
    frozen = bench.frozen(number)
    assert frozen.state == TrialState.RUNNING
    assert frozen.user_attrs[LOSSES] == 1 and frozen.user_attrs[ATTEMPT] == 1
    assert [n for n, _ in bench.endings.to_continue] == [number, number]
    assert TrialRecords(tmp_path, number).can_continue()  # nothing of it went
    assert bench.model_kept(number) and number not in bench.listener.ended
    # No retry left: the next failure ends it for good, with every effect.
    assert bench.endings.after_failure(number, "raised again", epochs=1) == 0
    assert bench.frozen(number).state == TrialState.FAIL
    assert bench.listener.ended[number] == ("FAIL", "raised again")


def test_a_trial_lost_before_its_first_checkpoint_runs_again_without_a_retry(tmp_path):
    bench = _Bench(tmp_path)
    number = bench.trial()
    assert bench.endings.after_failure(number, "node died", epochs=0, lost=True) == 1
    again = bench.study.get_trials(deepcopy=False)[-1]
    assert again.user_attrs[LOSSES] == 1 and again.user_attrs[ATTEMPT] == 0
    assert bench.tracker.ended[number][0] == "FAIL"


# -- every path ends through it: real sweeps, and what each ended trial got ------------------

SPACE = {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}}


def _ran(root: Path, trainer: Any, listener: Heard | None = None, **settings: Any) -> Sweep:
    settings.setdefault("limits", {"max_total_trials": 3, "max_concurrent_trials": 1})
    sweep = Sweep(
        name="s",
        search_space=SPACE,
        trainer=trainer,
        root=root,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 3},
        sampling_algorithm={"type": "random", "seed": 3},
        keep={"models": 1},
        **settings,
    )
    return sweep


def _every_ended_trial_had_its_effects(root: Path, heard: Heard) -> list[str]:
    study = Sweep.load("s", root=root.parent, backend=InProcessBackend()).result().study
    assert study is not None
    ended = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    assert ended
    states = []
    for t in ended:
        assert (
            heard.ended.get(t.number, ("", ""))[0]
            == {
                TrialState.COMPLETE: "COMPLETE",
                TrialState.PRUNED: "PRUNED",
                TrialState.FAIL: "FAIL",
            }[t.state]
        ), t.number
        assert not (trial_dir(root / "s", t.number) / LIVE).exists()
        if t.state != TrialState.COMPLETE:
            assert t.user_attrs.get(REASON), t.number
        states.append(t.state.name)
    return states


def test_the_trial_timeout_path(tmp_path):
    heard = Heard()
    _ran(tmp_path, toy_trainers.hanging, limits={"max_total_trials": 1, "trial_timeout": 1}).run(
        listener=heard
    )
    assert _every_ended_trial_had_its_effects(tmp_path / "s", heard) == ["FAIL"]


def test_the_exception_and_retry_path(tmp_path):
    heard = Heard()
    _ran(tmp_path, toy_trainers.flaky, retries=1).run(listener=heard)
    states = _every_ended_trial_had_its_effects(tmp_path / "s", heard)
    assert states.count("FAIL") == 3 and states.count("COMPLETE") == 3


def test_the_ctrl_c_and_take_over_paths(tmp_path):
    heard = Heard()

    class CtrlC(Heard):
        """Presses Ctrl-C in the coordinator at the 4th report (a trial is mid-run)."""

        left = 4

        def trial_reported(self, number: int, epoch: int, metrics: Any) -> None:
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt

    stopper = CtrlC()
    with pytest.raises(SweepInterrupted):
        _ran(tmp_path, toy_trainers.quadratic).run(listener=stopper)
    heard.ended.update(stopper.ended)
    # A coordinator that died with a trial running: its trial is taken over at resume.
    study = Sweep.load("s", root=tmp_path).result().study
    assert study is not None
    stranded = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    TrialRecords(tmp_path / "s", stranded.number).start({"x": stranded.params["x"]})
    (trial_dir(tmp_path / "s", stranded.number) / LIVE).mkdir()
    Sweep.load("s", root=tmp_path, backend=InProcessBackend()).resume(listener=heard)
    states = _every_ended_trial_had_its_effects(tmp_path / "s", heard)
    assert heard.ended[stranded.number] == ("FAIL", "interrupted; runs again")
    assert states.count("COMPLETE") == 3


def test_the_sweep_timeout_path(tmp_path):
    heard = Heard()
    _ran(tmp_path, toy_trainers.hanging, limits={"max_total_trials": 2, "timeout": 1}).run(
        listener=heard
    )
    assert "FAIL" in _every_ended_trial_had_its_effects(tmp_path / "s", heard)
