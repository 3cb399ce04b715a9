"""The scheduler seam: one verdict per report, in one order (the value check, the last
epoch, the stopping policy, the pausing scheduler), and the epochs a trial plans."""

from __future__ import annotations

import math

import optuna
import pytest

from search_spaces import read_sweep_file
from search_spaces.policies import Asha
from sweep.scheduling.promotion import Promotion
from sweep.scheduling.verdicts import Referee, fixed_epochs, planned_epochs, what_pauses

X = {"x": optuna.distributions.FloatDistribution(0, 1)}


class Always(optuna.pruners.BasePruner):
    """A stopping policy that stops every trial it is asked about."""

    reasons = {0: "stopped because it was asked"}

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def _referee(
    pruner: optuna.pruners.BasePruner | None = None, pausing: Promotion | None = None
) -> tuple[Referee, optuna.Trial]:
    study = optuna.create_study(direction="maximize", pruner=pruner)
    return Referee(study, "acc", pausing=pausing), study.ask(X)


@pytest.mark.parametrize("value", [math.nan, math.inf, "0.5", True])
def test_a_value_that_is_not_a_finite_number_fails_the_trial(value):
    referee, trial = _referee()
    verdict = referee.judge(trial, 2, value, planned=10)
    assert verdict.action == "fail" and verdict.stops
    assert verdict.reason == f"acc is {value} at epoch 3"
    assert trial.study.get_trials()[0].intermediate_values == {}  # the study never saw it


def test_a_report_without_the_metric_continues_and_tells_nothing():
    referee, trial = _referee(Always())
    assert referee.judge(trial, 0, None, planned=5).action == "continue"
    assert trial.study.get_trials()[0].intermediate_values == {}


def test_the_stopping_policy_stops_with_its_reason_but_never_at_the_last_epoch():
    referee, trial = _referee(Always())
    assert referee.judge(trial, 4, 0.9, planned=5).action == "continue"  # its last epoch
    verdict = referee.judge(trial, 1, 0.5, planned=5)
    assert verdict.action == "stop" and verdict.reason == "stopped because it was asked"
    assert trial.study.get_trials()[0].intermediate_values == {1: 0.5, 4: 0.9}


def test_the_pausing_scheduler_pauses_at_its_rung_after_the_stopping_policy_spared_it():
    promotion = Promotion.of(
        Asha(min_resource=1, reduction_factor=3, mode="promotion"), maximize=True, epochs=9
    )
    assert promotion is not None
    referee, trial = _referee(pausing=promotion)
    assert referee.judge(trial, 0, 0.5, planned=9).rung == 1  # rung 1: paused
    promoted = referee.study.ask(X)  # one that left rung 1 goes on past it
    assert referee.judge(promoted, 0, 0.5, planned=9, promoted=[1]).action == "continue"
    assert referee.judge(trial, 1, 0.6, planned=9).action == "continue"
    pause = referee.judge(trial, 2, 0.7, planned=9)
    assert pause.action == "pause" and pause.rung == 3 and pause.stops
    stopped, _ = _referee(Always(), pausing=promotion)
    trial = stopped.study.ask(X)
    assert stopped.judge(trial, 0, 0.5, planned=9).action == "stop"  # stopping comes first


def test_several_objectives_check_the_value_and_keep_no_per_epoch_values():
    study = optuna.create_study(directions=["maximize", "minimize"], pruner=Always())
    referee, trial = Referee(study, "acc", several_objectives=True), study.ask(X)
    assert referee.judge(trial, 0, 0.5, planned=9).action == "continue"
    assert referee.judge(trial, 1, math.nan, planned=9).action == "fail"


def test_planned_epochs_one_rule_for_function_and_command_trials(tmp_path):
    file = tmp_path / "s.yaml"
    file.write_text(
        "trainer: {entry: 'm:f', args: {num_epochs: 6}}\n"
        "search_space: {x: {type: uniform, min_value: 0, max_value: 1}}\n"
        "objective: {primary_metric: acc, goal: maximize}\n"
    )
    config = read_sweep_file(file)
    assert fixed_epochs(config) == 6
    assert planned_epochs({"x": 0.1}, fixed_epochs(config)) == 6
    assert planned_epochs({"num_epochs": 9}, fixed_epochs(config)) == 9  # sampled, continued
    assert planned_epochs({"num_epochs": "9"}, None) is None
    assert what_pauses(config) is None
