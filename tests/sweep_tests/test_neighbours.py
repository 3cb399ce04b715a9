"""The earlier sweep's trials most like a new one bound where it ends: a trial whose like
trials never rose is stopped after one epoch, one whose like trials rose is kept, and a
trial beyond every earlier end is never held to their ends."""

from __future__ import annotations

import math
import random

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution

from search_spaces import EarlyTermination
from sweep import Sweep
from sweep.replay.simulator import Curve, replay
from sweep.replay.sources import crossing_curves
from sweep.scheduling.neighbours import NeighbourBound
from sweep.scheduling.pruners import ForecastJudge
from tests.sweep_tests import toy_trainers

SPACE = {
    "model": CategoricalDistribution(["trains", "stalls"]),
    "lr": FloatDistribution(1e-4, 1.0, log=True),
}


def _earlier(n: int = 40, seed: int = 0) -> list[optuna.trial.FrozenTrial]:
    """Half the trials of a model that rises from chance to 0.9 or more, half of one that
    stays at chance; every curve starts at chance, so its first epoch tells them apart not."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        model = "trains" if i % 2 else "stalls"
        top = rng.uniform(0.9, 0.95) if model == "trains" else rng.uniform(0.1, 0.13)
        curve = [0.1 + (top - 0.1) * min(1.0, e / 5) for e in range(9)]
        out.append(
            optuna.trial.create_trial(
                value=curve[-1],
                params={"model": model, "lr": 10 ** rng.uniform(-4, 0)},
                distributions=SPACE,
                intermediate_values=dict(enumerate(curve)),
            )
        )
    return out


def _done(value: float) -> list[optuna.trial.FrozenTrial]:
    return [
        optuna.trial.create_trial(
            value=value, params={}, distributions={}, intermediate_values={0: value}
        )
    ]


def test_the_earlier_trials_most_like_it_stop_a_hopeless_trial_after_one_epoch():
    judge = ForecastJudge(risk=0.05)
    judge.calibrate_on(_earlier())
    assert judge.min_epochs == 1
    done = _done(0.85)
    stalls = judge.hopeless([0.1], 9, done, True, {"model": "stalls", "lr": 0.01})
    assert (
        stalls is not None and "earlier trials most like it" in stalls and "< best 0.85" in stalls
    )
    assert judge.hopeless([0.1], 9, done, True, {"model": "trains", "lr": 0.01}) is None
    # Without the trials' params (as before the bound) the same first epoch says nothing:
    # half the earlier curves rose from it.
    assert judge.hopeless([0.1], 9, done, True) is None
    judge.neighbours = None
    assert judge.hopeless([0.1], 9, done, True, {"model": "stalls", "lr": 0.01}) is None


def test_a_trial_beyond_every_earlier_end_is_not_held_to_their_ends():
    bound = NeighbourBound(_earlier())
    reach = bound.reach({"model": "trains", "lr": 0.01}, [0.97], 9, True, 0.05)
    assert reach is not None and reach >= 0.97  # gains, not ends: a wider space's winner
    assert bound.reach({"model": "trains"}, [0.1], 9, True, 0.05) is not None  # lr unknown
    assert NeighbourBound(_earlier(8)).reach({"model": "trains"}, [0.1], 9, True, 0.05) is None


def test_the_margin_covers_the_winners_of_new_trials_like_the_earlier_ones():
    """Split conformal on the earlier top tenth: of new trials that end in their top tenth,
    at most ``risk`` (plus sampling noise) end above the bound after one epoch."""
    earlier = crossing_curves(150, seed=1).curves
    fresh = crossing_curves(400, seed=2).curves
    bound = NeighbourBound(_as_trials(earlier))
    ends = sorted(c.values[-1] for c in fresh)
    top = [c for c in fresh if c.values[-1] >= ends[int(0.9 * (len(ends) - 1))]]
    missed = 0
    for c in top:
        reach = bound.reach(c.params, c.values[:1], 9, True, 0.05)
        assert reach is not None
        missed += c.values[-1] > reach
    assert missed / len(top) <= 0.05 + 0.05


def _as_trials(curves: tuple[Curve, ...] | list[Curve]) -> list[optuna.trial.FrozenTrial]:
    from sweep.replay.simulator import as_trials, distributions_of

    return as_trials(curves, distributions_of(curves))


def test_a_replay_calibrated_on_an_earlier_sweep_stops_sooner_with_the_trials_params():
    """The replayed trials carry their curves' params, so the bound judges them; stripped
    of params, the same replay falls back to the curve's own forecast and trains more."""
    curves = list(crossing_curves(100, seed=1).curves)
    earlier = list(crossing_curves(200, seed=7).curves)
    forecast = EarlyTermination("forecast", {"risk": 0.05})
    none = replay(curves, EarlyTermination("none"), workers=4)
    with_params = replay(curves, forecast, workers=4, calibration=earlier)
    bare = [Curve(c.values, c.epoch_s, c.planned, c.start_s, c.label) for c in curves]
    bare_earlier = [Curve(c.values, c.epoch_s, c.planned, c.start_s, c.label) for c in earlier]
    without = replay(bare, forecast, workers=4, calibration=bare_earlier)
    assert with_params.best(True) == without.best(True) == none.best(True)
    assert with_params.epochs < without.epochs


def test_a_warm_started_sweep_says_its_neighbours_stopped_a_trial(tmp_path):
    crossing = toy_trainers.crossing_sweep(tmp_path)
    Sweep(
        name="before",
        sampling_algorithm={"type": "random", "seed": 3},
        limits={"max_total_trials": 12},
        **crossing,
    ).run()
    result = Sweep(
        name="after",
        sampling_algorithm={"type": "tpe", "seed": 5},
        early_termination={"type": "forecast"},
        warm_start={"from": ["before"]},
        limits={"max_total_trials": 12},
        **crossing,
    ).run()
    reasons = result.trials.loc[result.trials["state"] == "pruned", "reason"].tolist()
    assert any("earlier trials most like it" in r for r in reasons), reasons


def test_forecast_promotion_learns_from_an_earlier_sweep_too():
    """``mode: promotion`` judges paused trials with the same forecast: warm-started, its
    judge calibrates on the earlier curves and their trials (``teach_scheduler``, which the
    coordinator calls), so fewer paused trials are promoted and the best is kept."""
    from sweep.coordination.warm_start import teach_scheduler
    from sweep.scheduling.promotion import Promotion

    promotion = EarlyTermination("forecast", {"mode": "promotion"})
    scheduler = Promotion.of(promotion.policy, True, 9)
    assert scheduler is not None and scheduler.forecast is not None
    assert teach_scheduler(scheduler, _earlier()) == 40
    assert scheduler.forecast.neighbours is not None and scheduler.forecast.min_epochs == 1
    assert teach_scheduler(None, _earlier()) == 0

    curves = list(crossing_curves(100, seed=1).curves)
    earlier = list(crossing_curves(200, seed=7).curves)
    none = replay(curves, EarlyTermination("none"), workers=4)
    alone = replay(curves, promotion, workers=4)
    taught = replay(curves, promotion, workers=4, calibration=earlier)
    assert taught.best(True) == alone.best(True) == none.best(True)
    assert taught.epochs < alone.epochs


def test_a_bank_whose_params_optuna_cannot_hold_still_replays():
    """A bank written by hand may carry any JSON in its params: what Optuna cannot keep on a
    trial (a list, NaN) is left out of the replayed trials, the rest stays."""
    from sweep.replay.simulator import distributions_of

    curves = [
        Curve(c.values, c.epoch_s, c.planned, c.start_s, c.label, {**c.params, "layers": [1, 2]})
        for c in crossing_curves(30, seed=3).curves
    ]
    curves[0] = Curve(*(getattr(curves[0], f) for f in ("values", "epoch_s", "planned")))
    curves[1] = Curve(curves[1].values, curves[1].epoch_s, 9, params={"u": 0.5, "w": math.nan})
    space = distributions_of(curves)
    assert set(space) == {"u"}
    assert replay(curves[1:], EarlyTermination("forecast"), calibration=curves[:15]).trials == 29
