"""Azure ML's policies against hand-computed cases."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweep.scheduling.pruners import (
    BanditPruner,
    MedianStoppingPruner,
    TruncationSelectionPruner,
    make_pruner,
)


def _study(direction: str, peers: list[list[float]], states=None) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for i, series in enumerate(peers):
        state = (states or {}).get(i, TrialState.COMPLETE)
        study.add_trial(
            create_trial(
                state=state,
                value=series[-1] if state == TrialState.COMPLETE else None,
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0, 1)},
                intermediate_values=dict(enumerate(series)),
            )
        )
    return study


def _decide(pruner, study: optuna.Study, series: list[float]) -> bool:
    trial = create_trial(
        state=TrialState.RUNNING,
        params={"x": 0.1},
        distributions={"x": FloatDistribution(0, 1)},
        intermediate_values=dict(enumerate(series)),
    )
    object.__setattr__(trial, "_number", 999)
    return pruner.prune(study, trial)


PEERS = [[0.5, 0.8, 0.85], [0.6, 0.7, 0.9]]


@pytest.mark.parametrize(
    "series, pruned",
    [
        ([0.4, 0.7], True),  # best 0.8 at interval 2; 0.7 * 1.1 = 0.77 < 0.8
        ([0.4, 0.75], False),  # 0.75 * 1.1 = 0.825 >= 0.8
        ([0.73], False),  # interval 1: best is 0.6; 0.73 is the best
        ([0.5], True),  # interval 1: 0.5 * 1.1 = 0.55 < 0.6
    ],
)
def test_bandit_slack_factor_maximize(series, pruned):
    assert _decide(BanditPruner(slack_factor=0.1), _study("maximize", PEERS), series) is pruned


@pytest.mark.parametrize(
    "series, pruned",
    [
        ([0.75], True),  # minimize: best 0.5; 0.75 - 0.2 = 0.55 > 0.5
        ([0.65], False),  # 0.65 - 0.2 = 0.45 <= 0.5
    ],
)
def test_bandit_slack_amount_minimize(series, pruned):
    study = _study("minimize", [[0.5, 0.4], [0.9, 0.3]])
    assert _decide(BanditPruner(slack_amount=0.2), study, series) is pruned


def test_delay_and_interval_follow_azure_rules():
    # Applies at every multiple of evaluation_interval that is >= delay_evaluation.
    pruner = BanditPruner(slack_factor=0.0, evaluation_interval=2, delay_evaluation=3)
    assert [n for n in range(1, 9) if pruner.applies_at(n)] == [4, 6, 8]
    pruner = BanditPruner(slack_factor=0.0, evaluation_interval=1, delay_evaluation=5)
    assert [n for n in range(1, 8) if pruner.applies_at(n)] == [5, 6, 7]
    study = _study("maximize", PEERS)
    bad = [0.1, 0.1, 0.1]
    assert _decide(BanditPruner(slack_factor=0.0, delay_evaluation=4), study, bad) is False
    assert _decide(BanditPruner(slack_factor=0.0, delay_evaluation=3), study, bad) is True


@pytest.mark.parametrize(
    "series, pruned",
    [
        ([0.2, 0.5], True),  # running averages at interval 2: 0.55, 0.9, 0.3 -> median 0.55
        ([0.2, 0.6], False),  # best 0.6 >= 0.55
    ],
)
def test_median_stopping(series, pruned):
    study = _study("maximize", [[0.5, 0.6, 0.7], [0.9, 0.9, 0.9], [0.2, 0.4, 0.6]])
    assert _decide(MedianStoppingPruner(), study, series) is pruned


@pytest.mark.parametrize("value, pruned", [(0.3, True), (0.6, False)])
def test_truncation_selection(value, pruned):
    # Values at interval 1: 0.1, 0.5, 0.9 and ours; the lowest 50% of 4 are the two lowest.
    study = _study("maximize", [[0.1], [0.5], [0.9]])
    pruner = TruncationSelectionPruner(truncation_percentage=50)
    assert _decide(pruner, study, [value]) is pruned


def test_truncation_selection_can_exclude_finished_trials():
    # Two finished trials (0.1, 0.15) and one running (0.9). Counting everyone, 0.2 is third
    # of four and survives the lowest 50%; with finished trials excluded it is the lowest of two.
    states = {0: TrialState.COMPLETE, 1: TrialState.COMPLETE, 2: TrialState.RUNNING}
    study = _study("maximize", [[0.1], [0.15], [0.9]], states)
    keep_finished = TruncationSelectionPruner(truncation_percentage=50)
    exclude = TruncationSelectionPruner(truncation_percentage=50, exclude_finished_jobs=True)
    assert _decide(keep_finished, study, [0.2]) is False  # 0.1, 0.15 are the lowest two
    assert _decide(exclude, study, [0.2]) is True  # lowest of [0.2, 0.9]


def test_reasons_are_kept_for_reports():
    pruner = BanditPruner(slack_factor=0.1)
    assert _decide(pruner, _study("maximize", PEERS), [0.4, 0.7])
    assert pruner.reasons[999] == "interval 2: 0.7 is outside slack_factor 0.1 of the best 0.8"


@pytest.mark.parametrize(
    "kind, cls",
    [
        ("median", "MedianPruner"),
        ("percentile", "PercentilePruner"),
        ("asha", "SuccessiveHalvingPruner"),
        ("hyperband", "HyperbandPruner"),
        ("none", "NopPruner"),
        ("bandit", "BanditPruner"),
    ],
)
def test_every_policy_has_a_pruner(kind, cls):
    from search_spaces import parse_sweep

    et = {"type": kind, **({"slack_factor": 0.1} if kind == "bandit" else {})}
    config = parse_sweep(
        {
            "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
            "early_termination": et,
        }
    )
    pruner = make_pruner(config.early_termination)
    assert type(getattr(pruner, "inner", pruner)).__name__ == cls


@pytest.mark.parametrize(
    ("min_resource", "factor", "rungs"),
    [
        (1, 3, (1, 3)),  # Ray Tune's ASHA, grace_period=1, reduction_factor=3: 1, 3, 9, 27
        (1, 2, (1, 2)),
        (2, 2, (2, 4)),  # Syne Tune's rung levels r_min * eta^k
    ],
)
def test_asha_judges_a_trial_after_its_rungs_epochs_trained_counted_from_1(
    min_resource, factor, rungs
):
    """Reports are numbered by epoch from 0; a rung at resource r is decided when the trial
    has trained r epochs (its report of epoch r - 1), as Ray Tune and Syne Tune count."""
    from search_spaces import parse_sweep

    config = parse_sweep(
        {
            "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
            "early_termination": {
                "type": "asha",
                "min_resource": min_resource,
                "reduction_factor": factor,
            },
        }
    )
    study = optuna.create_study(direction="maximize", pruner=make_pruner(config.early_termination))

    def first_pruned(curve: list[float]) -> int | None:
        """Epochs trained when the pruner first stops a trial with this curve."""
        trial = study.ask()
        for epoch, value in enumerate(curve):
            trial.report(value, epoch)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                return epoch + 1
        study.tell(trial, curve[-1])
        return None

    for _ in range(6):  # strong trials fill the rungs first
        assert first_pruned([1.0] * 10) is None
    assert first_pruned([0.0] * 10) == rungs[0]  # bad from the start: the first rung
    good_then_bad = [1.0] * rungs[0] + [0.0] * (10 - rungs[0])
    assert first_pruned(good_then_bad) == rungs[1]  # promoted at rung 0, stopped at rung 1


def test_storage_urls_expand_variables_and_never_show_the_password(tmp_path, monkeypatch):
    from search_spaces import parse_sweep
    from search_spaces.optuna_form import to_optuna
    from sweep.coordination.study import open_study
    from sweep.errors import SweepError

    secret = "p@ss:w/rd%41hunter2"  # every character that breaks a hand-split URL
    monkeypatch.setenv("SWEEP_TEST_PASSWORD", secret)
    config = parse_sweep(
        {
            "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
            "storage": "postgresql://me:${SWEEP_TEST_PASSWORD}@127.0.0.1:1/nodb",
        }
    )
    with pytest.raises(SweepError) as caught:
        open_study(config, to_optuna(config.search_space), tmp_path)
    message = str(caught.value)
    assert "hunter2" not in message and "p%40ss" not in message and "@127.0.0.1:1" in message
    assert "me:${SWEEP_TEST_PASSWORD}@" in message  # shown as written in the file
    assert "${SWEEP_TEST_PASSWORD}" in config.storage


@pytest.mark.parametrize(("epochs", "some_pruned"), [(1, False), (4, True)])
def test_a_trial_is_never_pruned_at_its_last_epoch(tmp_path, epochs, some_pruned):
    """A trial at its last epoch has cost all it will: it completes, with its result kept.
    (With 4 epochs the same policy does prune: it is not switched off.)"""
    from sweep import Sweep
    from sweep.backends import InProcessBackend
    from tests.sweep_tests import toy_trainers

    result = Sweep(
        name="s",
        search_space={"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        trainer=toy_trainers.quadratic,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": epochs},
        sampling_algorithm={"type": "random", "seed": 4},
        early_termination={"type": "asha", "min_resource": 1, "reduction_factor": 2},
        limits={"max_total_trials": 12, "max_concurrent_trials": 1},
    ).run()
    pruned = int((result.trials["state"] == "pruned").sum())
    assert (pruned > 0) is some_pruned
