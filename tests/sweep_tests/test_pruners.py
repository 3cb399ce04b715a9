"""Azure ML's policies against hand-computed cases."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search_spaces import EarlyTermination
from sweep.pruners import (
    BanditPruner,
    MedianStoppingPruner,
    TruncationSelectionPruner,
    make_pruner,
)


def _study(direction: str, peers: list[list[float]], states=None) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for i, series in enumerate(peers):
        state = (states or {}).get(i, TrialState.COMPLETE)
        study.add_trial(create_trial(
            state=state, value=series[-1] if state == TrialState.COMPLETE else None,
            params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
            intermediate_values=dict(enumerate(series)),
        ))
    return study


def _decide(pruner, study: optuna.Study, series: list[float]) -> bool:
    trial = create_trial(
        state=TrialState.RUNNING, params={"x": 0.1},
        distributions={"x": FloatDistribution(0, 1)},
        intermediate_values=dict(enumerate(series)),
    )
    object.__setattr__(trial, "_number", 999)
    return pruner.prune(study, trial)


PEERS = [[0.5, 0.8, 0.85], [0.6, 0.7, 0.9]]


@pytest.mark.parametrize("series, pruned", [
    ([0.4, 0.7], True),    # best 0.8 at interval 2; 0.7 * 1.1 = 0.77 < 0.8
    ([0.4, 0.75], False),  # 0.75 * 1.1 = 0.825 >= 0.8
    ([0.73], False),       # interval 1: best is 0.6; 0.73 is the best
    ([0.5], True),         # interval 1: 0.5 * 1.1 = 0.55 < 0.6
])
def test_bandit_slack_factor_maximize(series, pruned):
    assert _decide(BanditPruner(slack_factor=0.1), _study("maximize", PEERS), series) is pruned


@pytest.mark.parametrize("series, pruned", [
    ([0.75], True),   # minimize: best 0.5; 0.75 - 0.2 = 0.55 > 0.5
    ([0.65], False),  # 0.65 - 0.2 = 0.45 <= 0.5
])
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


@pytest.mark.parametrize("series, pruned", [
    ([0.2, 0.5], True),   # running averages at interval 2: 0.55, 0.9, 0.3 -> median 0.55
    ([0.2, 0.6], False),  # best 0.6 >= 0.55
])
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
    assert _decide(exclude, study, [0.2]) is True          # lowest of [0.2, 0.9]


def test_reasons_are_kept_for_reports():
    pruner = BanditPruner(slack_factor=0.1)
    assert _decide(pruner, _study("maximize", PEERS), [0.4, 0.7])
    assert pruner.reasons[999] == "interval 2: 0.7 is outside slack_factor 0.1 of the best 0.8"


@pytest.mark.parametrize("kind, cls", [
    ("median", "MedianPruner"), ("percentile", "PercentilePruner"),
    ("asha", "SuccessiveHalvingPruner"), ("hyperband", "HyperbandPruner"),
    ("none", "NopPruner"), ("bandit", "BanditPruner"),
])
def test_every_policy_has_a_pruner(kind, cls):
    from search_spaces import parse_sweep

    et = {"type": kind, **({"slack_factor": 0.1} if kind == "bandit" else {})}
    config = parse_sweep({"search_space": {"x": {"type": "uniform", "min_value": 0,
                                                 "max_value": 1}}, "early_termination": et})
    assert isinstance(config.early_termination, EarlyTermination)
    assert type(make_pruner(config.early_termination)).__name__ == cls


def test_storage_urls_expand_variables_and_never_show_the_password(tmp_path, monkeypatch):
    from search_spaces import parse_sweep
    from search_spaces.optuna_form import to_optuna
    from sweep.errors import SweepError
    from sweep.study import open_study

    secret = "p@ss:w/rd%41hunter2"  # every character that breaks a hand-split URL
    monkeypatch.setenv("SWEEP_TEST_PASSWORD", secret)
    config = parse_sweep({
        "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        "storage": "postgresql://me:${SWEEP_TEST_PASSWORD}@127.0.0.1:1/nodb",
    })
    with pytest.raises(SweepError) as caught:
        open_study(config, to_optuna(config.search_space), tmp_path)
    message = str(caught.value)
    assert "hunter2" not in message and "p%40ss" not in message and "@127.0.0.1:1" in message
    assert "me:${SWEEP_TEST_PASSWORD}@" in message  # shown as written in the file
    assert "${SWEEP_TEST_PASSWORD}" in config.storage
