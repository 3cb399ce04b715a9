"""The rules that compare a trial with its peers keep what finished trials said as they finish
(and promotion, what every trial said, read again only when it changed), so a decision costs
the running trials, not the whole sweep. Each is checked here against the same rule made
afresh at every decision, over whole replays where trials start, report, pause, continue,
finish and fail in every order: the two never disagree (a stale or doubled entry would)."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence

import optuna
import pytest
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial

from sweep.replay import simulator
from sweep.replay.simulator import Curve, _Simulation
from sweep.replay.sources import crossing_curves
from sweep.scheduling.pausing import Move
from sweep.scheduling.promotion import Promotion
from sweep.scheduling.pruners import make_pruner

CURVES = crossing_curves(60, epochs=9, seed=3).curves


class _Checked(BasePruner):
    """The pruner under test, and a new one of the same policy asked the same question."""

    def __init__(self, make: Callable[[], BasePruner]) -> None:
        self.make, self.live, self.asked = make, make(), 0

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        said = self.live.prune(study, trial)
        assert said == self.make().prune(study, trial), f"trial {trial.number}"
        self.asked += 1
        return said


class _CheckedPromotion:
    def __init__(self, make: Callable[[], Promotion]) -> None:
        self.make, self.live, self.moved = make, make(), 0

    def pauses_at(
        self, number: int, trained: int, asked: int | None, promoted: Sequence[int]
    ) -> bool:
        return self.live.pauses_at(number, trained, asked, promoted)

    def moves(
        self, trials: Sequence[FrozenTrial], active: Collection[int], launched_all: bool
    ) -> list[Move]:
        said = self.live.moves(trials, active, launched_all)
        assert said == self.make().moves(trials, active, launched_all)
        self.moved += len(said)
        return said


def _run(pruner: BasePruner, scheduler: object, curves: list[Curve], workers: int) -> None:
    study = optuna.create_study(direction="maximize", pruner=pruner)
    sim = _Simulation(study, curves, scheduler, workers, None, True)  # type: ignore[arg-type]
    sim.run(iter(range(len(curves))))


def _curves(seed: int) -> list[Curve]:
    """The bank in a shuffled order, a few curves cut short (trials that failed or were
    stopped in the sweep they came from) so that trials end in every way."""
    rng = random.Random(seed)
    curves = list(CURVES)
    rng.shuffle(curves)
    for i in rng.sample(range(len(curves)), 8):
        c = curves[i]
        cut = rng.randrange(1, c.planned)
        curves[i] = Curve(c.values[:cut], c.epoch_s[:cut], c.planned, c.start_s)
    return curves


@pytest.mark.parametrize(
    "policy",
    [
        {"type": "bandit", "slack_factor": 0.05, "evaluation_interval": 1, "delay_evaluation": 2},
        {"type": "bandit", "slack_amount": 0.05, "evaluation_interval": 2},
        {"type": "median_stopping", "evaluation_interval": 1, "delay_evaluation": 1},
        {"type": "truncation_selection", "truncation_percentage": 30, "evaluation_interval": 1},
        {
            "type": "truncation_selection",
            "truncation_percentage": 30,
            "exclude_finished_jobs": True,
            "delay_evaluation": 2,
        },
        {"type": "forecast", "risk": 0.1, "min_epochs": 2},
    ],
)
@pytest.mark.parametrize("workers", [1, 4])
def test_a_stopping_rule_decides_as_one_made_afresh_at_every_report(policy, workers):
    from search_spaces.sections import parse_early_termination

    parsed = parse_early_termination(policy)
    checked = _Checked(lambda: make_pruner(parsed, 9))
    _run(checked, None, _curves(workers), workers)
    assert checked.asked > 100


@pytest.mark.parametrize(
    "policy",
    [
        {"type": "asha", "mode": "promotion", "min_resource": 1, "reduction_factor": 3},
        {"type": "hyperband", "mode": "promotion", "min_resource": 1, "reduction_factor": 2},
        {"type": "forecast", "mode": "promotion", "min_resource": 2, "reduction_factor": 2},
    ],
)
@pytest.mark.parametrize("workers", [1, 4])
def test_promotion_decides_as_one_made_afresh_at_every_free_worker(policy, workers):
    from search_spaces.sections import parse_early_termination

    parsed = parse_early_termination(policy)

    def make() -> Promotion:
        made = Promotion.of(parsed.policy, True, 9)
        assert made is not None
        return made

    checked = _CheckedPromotion(make)
    _run(make_pruner(parsed, 9), checked, _curves(workers + 10), workers)
    assert checked.moved > 5


def test_a_replay_is_repeatable():
    """Optuna's Hyperband deals trials to brackets by a hash of the study's name, and a
    replay's study had a random one: two replays of the same curves differed."""
    policy = simulator.STANDARD["hyperband"]
    runs = [simulator.replay(CURVES, policy, workers=4) for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0] != simulator.replay(CURVES, policy, workers=4, study_name="other")
