"""Early termination for several objectives: ASHA's rungs ranked by Pareto front (non-dominated
sorting, ties by crowding distance), checked against a plain computation, at one rung, and in
a sweep."""

from __future__ import annotations

import itertools
import random

import optuna
import pytest

from search_spaces import SearchSpaceError, parse_sweep
from search_spaces.policies import Asha
from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.records.trial_attrs import PAUSED, PROMOTED
from sweep.scheduling.pareto import (
    VALUES_AT,
    VIOLATION_AT,
    ParetoRungs,
    ParetoShare,
    crowding,
    dominates,
    front_ranks,
    ranked,
    violation,
)
from sweep.scheduling.promotion import Promotion
from tests.sweep_tests import toy_trainers

UP_DOWN = (True, False)  # accuracy up, latency down
FILE = {
    "name": "mo",
    "trainer": {"entry": "tests.sweep_tests.toy_trainers:tradeoff_per_epoch"},
    "search_space": {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
    "objective": [
        {"primary_metric": "acc", "goal": "maximize"},
        {"primary_metric": "latency_ms", "goal": "minimize"},
    ],
}


def _peeled(points, maximize):  # type: ignore[no-untyped-def]
    """Fronts by peeling: the points no remaining point dominates, again and again."""
    left, ranks, rank = set(range(len(points))), {}, 0
    while left:
        front = {
            i
            for i in left
            if not any(
                all(
                    (a >= b) if up else (a <= b)
                    for a, b, up in zip(points[j], points[i], maximize, strict=True)
                )
                and points[j] != points[i]
                for j in left
            )
        }
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return [ranks[i] for i in range(len(points))]


@pytest.mark.parametrize("maximize", [UP_DOWN, (True, True, False)])
def test_front_ranks_equal_fronts_found_by_peeling_ties_included(maximize):
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randrange(1, 14)
        # Few distinct values: equal points and equal coordinates (ties) on most draws.
        points = [tuple(float(rng.randrange(4)) for _ in maximize) for _ in range(n)]
        assert front_ranks(points, maximize) == _peeled(points, maximize)


def test_dominance_and_crowding():
    assert dominates((0.9, 3.0), (0.8, 3.0), UP_DOWN)
    assert not dominates((0.9, 3.0), (0.9, 3.0), UP_DOWN)  # equal: neither
    assert not dominates((0.9, 3.0), (0.8, 2.0), UP_DOWN)  # a trade-off: neither
    # A front of four along a line: the ends infinitely far, the inner ones by their gaps.
    front = [(0.0, 0.0), (1.0, 1.0), (3.0, 3.0), (4.0, 4.0)]
    assert crowding(front) == [float("inf"), 2 * 3 / 4, 2 * 3 / 4, float("inf")]


SIX_AT_A_RUNG = {
    0: (0.9, 5.0),  # front, an end
    1: (0.8, 4.0),  # front, the middle
    2: (0.5, 1.0),  # front, the other end: worst accuracy of the front
    3: (0.4, 6.0),  # dominated
    4: (0.3, 7.0),
    5: (0.2, 8.0),
}
"""(accuracy, latency) of six trials at a rung: a front of three, three behind it."""


def _at_rung(values: dict[int, tuple[float, float]]) -> list[optuna.trial.FrozenTrial]:
    trials = []
    for number, point in values.items():
        t = optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING, user_attrs={f"{VALUES_AT}0": list(point)}
        )
        t.number = number
        trials.append(t)
    return trials


def test_at_a_rung_a_dominated_trial_stops_while_a_front_member_goes_on():
    """Six trials reached the rung (1 epoch), so 6 // 3 = 2 go on: the front's ends (the
    most accurate and the fastest) go on; a dominated one stops, and so does the middle of
    the front, nearer its neighbours. Ranking by accuracy alone would stop the fastest."""
    values = SIX_AT_A_RUNG
    trials = _at_rung(values)
    rule = ParetoRungs(UP_DOWN, min_resource=1, reduction_factor=3)
    said = {n: rule.hopeless(n, 1, values[n], trials) for n in values}
    assert said[0] is None and said[2] is None
    assert said[3] is not None and said[3].startswith("front 2 at 1 epochs")
    assert said[1] is not None and said[1].startswith("front 1")
    assert rule.hopeless(3, 2, values[3], trials) is None  # 2 epochs: no rung at eta 3
    by_accuracy = sorted(values, key=lambda n: -values[n][0])[:2]
    assert 2 not in by_accuracy  # what a one-objective ranking would have kept


def test_hyperband_ranks_a_trial_among_its_own_brackets_trials_at_that_brackets_rungs():
    """Two brackets: even trials' rungs at 1, 3, 9 epochs, odd trials' at 3, 9. At 1 epoch
    only bracket 0 is judged, and only against bracket 0: trial 2 is second of all six (two
    would go on) but second of the three even ones too, and 3 // 3 = 1 goes on, so it
    stops; trial 3, odd, is not judged at 1 epoch at all."""
    values = {
        0: (0.9, 1.0),
        1: (0.1, 9.0),
        2: (0.5, 5.0),
        3: (0.05, 9.5),
        4: (0.4, 6.0),
        5: (0.2, 8.0),
    }
    trials = _at_rung(values)
    rule = ParetoRungs(UP_DOWN, 1, 3, 0, (), brackets=2)
    assert rule.hopeless(0, 1, values[0], trials) is None
    said = rule.hopeless(2, 1, values[2], trials)
    assert said is not None and "first 1 of the 3 trials" in said
    assert rule.hopeless(3, 1, values[3], trials) is None  # bracket 1 has no rung at 1
    # Ranked among all six (one bracket), it is second, and 6 // 3 = 2 go on.
    assert ParetoRungs(UP_DOWN, 1, 3).hopeless(2, 1, values[2], trials) is None


def test_median_stopping_keeps_the_better_half_by_pareto_rank_at_each_interval():
    values = SIX_AT_A_RUNG
    trials = _at_rung(values)
    median = ParetoShare(UP_DOWN, 0.5, evaluation_interval=1, delay_evaluation=1)
    said = {n: median.hopeless(n, 1, values[n], trials) for n in values}
    assert [n for n, why in said.items() if why is None] == [0, 1, 2]  # the front: 3 of 6
    assert str(said[3]).startswith("front 2 at 1 epochs: not in the first 3 of the 6")
    assert ParetoShare(UP_DOWN, 0.5, delay_evaluation=2).hopeless(3, 1, values[3], trials) is None
    truncation = ParetoShare(UP_DOWN, 0.75)  # truncation_percentage 25: ceil(6 * 0.75) = 5
    assert [n for n in values if truncation.hopeless(n, 1, values[n], trials)] == [5]


def test_promotion_by_pareto_rank_promotes_a_front_end_that_one_value_would_leave():
    """Promotion ASHA on two objectives: six trials paused at the rung (1 epoch), 6 // 3 = 2
    may leave it. The two ends of the front go (the most accurate, and the fastest, whose
    accuracy is only the third); by accuracy alone the second most accurate would."""
    values = SIX_AT_A_RUNG
    trials = _at_rung(values)
    for t in trials:
        t.user_attrs[PAUSED] = 1
    promotion = Promotion.of(
        Asha(mode="promotion", min_resource=1, reduction_factor=3),
        True,
        9,
        ParetoRungs(UP_DOWN),
    )
    assert promotion is not None
    first = promotion.pick(trials)
    assert first == (0, 1)
    trials[0].user_attrs[PROMOTED] = [1]  # promoted, and since completed
    del trials[0].user_attrs[PAUSED]
    trials[0].state = optuna.trial.TrialState.COMPLETE
    assert promotion.pick(trials) == (2, 1)  # the fastest, not the 0.8 one
    trials[2].user_attrs[PROMOTED] = [1]
    del trials[2].user_attrs[PAUSED]
    assert promotion.pick(trials) is None  # the quota of 2 is spent
    assert "by Pareto rank" in promotion.why_left(1)


def _two_objective_sweep(root, **extra):  # type: ignore[no-untyped-def]
    """12 random trials of ``tradeoff_per_epoch``, one at a time, pruned by Pareto rank."""
    return Sweep(
        name="mo",
        search_space=FILE["search_space"],
        trainer=toy_trainers.tradeoff_per_epoch,
        trainer_args={"num_epochs": 3},
        root=root,
        backend=InProcessBackend(),
        objective=FILE["objective"],
        sampling_algorithm={"type": "random", "seed": 2},
        early_termination={"type": "asha", "min_resource": 1, "reduction_factor": 3},
        limits={"max_total_trials": 12, "max_concurrent_trials": 1},
        **extra,
    ).run()


def test_a_sweep_of_two_objectives_stops_trials_at_rungs_by_pareto_rank(tmp_path):
    result = _two_objective_sweep(tmp_path)
    trials = result.study.get_trials()
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and len(pruned) < len(trials)
    reasons = result.trials.loc[result.trials["state"] == "pruned", "reason"].tolist()
    assert all("by Pareto rank" in r for r in reasons)
    # Each stopped trial was behind the first n // 3 of the n trials at its rung (one at a
    # time: those with lower numbers had reported there), by fronts found by peeling.
    for t in pruned:
        epoch = max(int(k[len(VALUES_AT) :]) for k in t.user_attrs if k.startswith(VALUES_AT))
        key = f"{VALUES_AT}{epoch}"
        there = [u for u in trials if key in u.user_attrs and u.number <= t.number]
        points = [tuple(u.user_attrs[key]) for u in there]
        ranks = _peeled(points, UP_DOWN)
        mine = ranks[there.index(t)]
        kept = max(1, len(points) // 3)
        ahead = sum(r < mine for r in ranks)
        assert ahead >= kept or (
            ahead + sum(r == mine for r in ranks) > kept  # crowded out of its own front
        ), (t.number, points)
    # Every completed trial's values are those of the front or behind it, as recorded.
    assert all(t.values is not None for t in trials if t.state.name == "COMPLETE")


@pytest.mark.parametrize(
    ("policy", "extra", "says"),
    [
        ({"type": "median"}, {}, "median judges one per-epoch value"),
        ({"type": "bandit", "slack_factor": 0.1}, {}, "bandit judges one per-epoch value"),
        ({"type": "forecast"}, {}, "forecast judges one per-epoch value"),
    ],
)
def test_what_pareto_pruning_does_not_do_is_refused_in_one_sentence(policy, extra, says):
    doc = {
        **FILE,
        "early_termination": policy,
        **extra,
    }
    with pytest.raises(SearchSpaceError, match=says):
        parse_sweep(doc)
    doc["early_termination"] = {"type": "asha"}
    doc.pop("constraints", None)
    assert parse_sweep(doc).early_termination.type == "asha"


def test_an_infeasible_trial_ranks_after_every_feasible_one_the_least_broken_first():
    """Constraints on reported metrics: a trial that beats every other on both objectives but
    breaks a constraint stops, a feasible one it dominates goes on (NSGA-II's constrained
    domination); among the infeasible, the least broken ranks first."""
    from search_spaces.objectives import parse_constraints

    values = {0: (0.9, 1.0), 1: (0.5, 2.0), 2: (0.4, 3.0)}
    broken = {0: 4.0, 1: 0.0, 2: 1.0}
    trials = _at_rung(values)
    for t in trials:
        t.user_attrs[f"{VIOLATION_AT}0"] = broken[t.number]
    rule = ParetoRungs(UP_DOWN, 1, 3, 0, parse_constraints(["params_m <= 5"]))
    said = {n: rule.hopeless(n, 1, values[n], trials, broken[n]) for n in values}
    assert said[1] is None
    assert said[0] is not None and said[0].startswith("infeasible at 1 epochs")
    assert said[2] is not None
    assert ranked(list(values.values()), UP_DOWN, list(broken.values())) == [
        (4.0, 0, 0.0),
        (0.0, 0, -float("inf")),
        (1.0, 0, 0.0),
    ]
    unconstrained = ParetoRungs(UP_DOWN, 1, 3)
    assert unconstrained.hopeless(0, 1, values[0], _at_rung(values)) is None  # 0 dominates
    assert violation(rule.constraints, {"params_m": 7.5, "acc": 0.3}) == 2.5
    assert violation(rule.constraints, {"acc": 0.3}) == 0.0  # not reported: not judged


def test_ranks_are_independent_of_order():
    points = [(0.9, 5.0), (0.8, 4.0), (0.5, 1.0), (0.4, 6.0), (0.9, 5.0)]
    for perm in itertools.permutations(range(len(points))):
        shuffled = [points[i] for i in perm]
        ranks = front_ranks(shuffled, UP_DOWN)
        assert [ranks[perm.index(i)] for i in range(len(points))] == [0, 0, 0, 1, 0]


def test_the_plan_says_how_trials_of_several_objectives_are_stopped(tmp_path, capsys):
    import yaml

    from sweep.cli import main

    doc = {
        **FILE,
        "early_termination": {"type": "asha"},
    }
    (tmp_path / "mo.yaml").write_text(yaml.safe_dump(doc))
    assert main(["validate", str(tmp_path / "mo.yaml")]) == 0
    out = capsys.readouterr().out
    assert "ranked by Pareto front" in out and "forecast" not in out


def test_a_constrained_sweep_stops_the_trials_that_break_the_constraint_at_rungs(tmp_path):
    result = _two_objective_sweep(tmp_path, constraints=["latency_ms <= 3"])  # x <= 0.5
    rows = result.trials
    infeasible = rows[rows["reason"].fillna("").str.startswith("infeasible at")]
    assert len(infeasible) > 0
    assert all(x > 0.5 for x in infeasible["param_x"])
    assert all(
        t.user_attrs[f"{VIOLATION_AT}0"] > 0
        for t in result.study.get_trials()
        if t.number in set(infeasible["number"])
    )


@pytest.mark.parametrize("policy", ["asha", "hyperband"])
def test_a_sweep_of_two_objectives_promotes_by_pareto_rank_and_runs_no_epoch_twice(
    tmp_path, policy
):
    result = Sweep(
        name="mo",
        search_space=FILE["search_space"],
        trainer=toy_trainers.tradeoff_checkpointing,
        trainer_args={"num_epochs": 9},
        root=tmp_path,
        backend=InProcessBackend(),
        objective=FILE["objective"],
        sampling_algorithm={"type": "random", "seed": 2},
        early_termination={
            "type": policy,
            "mode": "promotion",
            "min_resource": 1,
            "reduction_factor": 3,
        },
        limits={"max_total_trials": 12, "max_concurrent_trials": 1},
    ).run()
    rows = result.trials
    assert (rows["state"] == "complete").sum() >= 1
    left = rows[rows["state"] == "pruned"]
    assert len(left) > 0 and all(r.endswith("by Pareto rank") for r in left["reason"])
    trials = result.study.get_trials()
    at_first_rung = [t for t in trials if f"{VALUES_AT}0" in t.user_attrs]
    promoted = [t for t in trials if 1 in t.user_attrs.get(PROMOTED, [])]
    assert 1 <= len(promoted) <= len(at_first_rung) // 3
    for t in trials:
        ran = (tmp_path / "mo" / "trials" / f"{t.number:04d}" / "ran.txt").read_text().split()
        assert len(ran) == len(set(ran)), (t.number, ran)  # continued, never trained again
