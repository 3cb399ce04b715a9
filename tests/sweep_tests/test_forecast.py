"""The forecasting policy: its forecasts on curves of known form, its calibrated margin, and
a slow-starting winner it keeps where rung ranking stops it."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from search_spaces import EarlyTermination
from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.cli import main
from sweep.replay.simulator import Curve, replay
from sweep.scheduling.forecast import forecast, margin
from tests.sweep_tests import toy_trainers


@pytest.mark.parametrize("form", ["exponential", "power"])
@pytest.mark.parametrize("seen", [3, 5, 8])
def test_a_noise_free_curve_of_either_form_is_within_the_forecasts_interval(form, seen):
    rng = np.random.default_rng(seen)
    for _ in range(20):
        a, b = rng.uniform(0.6, 1.0), rng.uniform(0.2, 0.6)
        c = float(rng.choice(np.geomspace(0.03, 3.0, 24)[4:20]))
        t = np.arange(1, 31)
        curve = a - b * (np.exp(-c * t) if form == "exponential" else t**-c)
        said = forecast(curve[:seen], 30)
        assert abs(said.value - curve[-1]) <= said.spread + 1e-6, (a, b, c)


def test_a_curve_that_has_flattened_is_forecast_from_where_it_is_not_from_the_fits_level():
    """A ResNet on digits (the 27-epoch bank) rises from 0.14 to 0.94 by epoch 14 and stays
    there. Neither form bends that sharply, so their best fits run above its flat end: read
    from the fits' level, 20 epochs forecast 0.967 at epoch 27 and a best case of 0.997, and
    it ran to epoch 25 in replays. The fits' gain from the last epoch, added to the last
    value, forecasts 0.951 (fails with the level back)."""
    curve = [0.14, 0.35, 0.68, 0.78, 0.83, 0.86, 0.88, 0.91, 0.91, 0.92, 0.92, 0.93, 0.93]
    curve += [0.94] * 7
    said = forecast(curve, 27, noise=1.3e-4)  # the 27-epoch bank's median noise
    assert 0.94 <= said.value < 0.955
    assert said.best_case(True) < 0.97


def _family(rng: random.Random, n: int, horizon: int = 20) -> list[np.ndarray]:
    """Saturating curves with noise, of both forms, at rates off the forecast's grid."""
    curves = []
    for _ in range(n):
        a, b, c = rng.uniform(0.5, 1.0), rng.uniform(0.1, 0.5), rng.uniform(0.05, 1.5)
        t = np.arange(1, horizon + 1)
        shape = np.exp(-c * t) if rng.random() < 0.5 else t**-c
        curves.append(a - b * shape + np.array([rng.gauss(0, 0.005) for _ in t]))
    return curves


@pytest.mark.parametrize("risk", [0.05, 0.2])
def test_the_calibrated_margin_covers_all_but_risk_of_new_curves(risk):
    rng = random.Random(1)
    calibration, fresh = _family(rng, 60), _family(rng, 400)
    cut = 4
    errors = [c[-1] - forecast(c[:cut], len(c)).value for c in calibration]
    room = margin(errors, risk)
    assert room is not None and room > 0
    missed = sum(c[-1] > forecast(c[:cut], len(c)).value + room for c in fresh)
    assert missed / len(fresh) <= risk + 0.05  # split conformal: at most risk, plus noise
    assert margin(errors[:1], risk) is None  # too little history: no bound at all


def _crossing(x: float, epochs: int = 9) -> Curve:
    values = tuple(
        (0.7 + 0.25 * x) * (1 - math.exp(-(1.5 - 1.3 * x) * (t + 1))) for t in range(epochs)
    )
    return Curve(values, (1.0,) * epochs, epochs, label=f"x={x}")


def test_forecast_keeps_a_slow_starting_winner_that_asha_stops():
    # Fast starters finish first; then the winner, last at every early rung.
    curves = [_crossing(x) for x in (0.0, 0.05, 0.1, 0.15, 0.2, 0.1, 0.05, 1.0)]
    winner = curves[-1].values[-1]
    assert all(c.values[0] > curves[-1].values[0] for c in curves[:-1])  # it starts last
    asha = replay(curves, EarlyTermination("asha", {"min_resource": 1, "reduction_factor": 3}))
    assert asha.best(True) < winner  # rung ranking stops it
    kept = replay(curves, EarlyTermination("forecast", {"risk": 0.05}))
    assert kept.best(True) == winner
    assert kept.epochs < sum(len(c.values) for c in curves)  # and it still stopped others


def test_a_slow_starters_best_case_reaches_where_it_ends_however_long_it_trains():
    """The winner of a family of crossing curves starts almost as a straight line, which
    rates that saturate soon fit as well as the slow one it has; judged by the best-fitting
    rate, its 45-epoch end (0.954) was forecast at 0.835 from 3 epochs (fails with only the
    best rate kept)."""
    from sweep.replay import crossing_curves

    for epochs in (18, 45):
        curves = crossing_curves(300, epochs=epochs, seed=0).curves
        winner = max(curves, key=lambda c: c.values[-1])
        for cut in (3, 4, 5, 6):
            said = forecast(winner.values[:cut], epochs)
            assert said.best_case(True) >= winner.values[-1], (epochs, cut)


@pytest.mark.parametrize("seed", [4, 5])
def test_forecast_keeps_the_winner_of_long_crossing_curves(seed):
    """120 crossing curves of 45 epochs, 4 workers: in these orders the forecast stopped the
    winner after 3 or 4 epochs (fails with only the best-fitting rate kept)."""
    from sweep.replay import crossing_curves

    curves = list(crossing_curves(120, epochs=45, seed=0).curves)
    order = list(range(len(curves)))
    random.Random(seed).shuffle(order)
    none = replay(curves, EarlyTermination("none"), workers=4, order=order)
    kept = replay(curves, EarlyTermination("forecast", {"risk": 0.05}), workers=4, order=order)
    assert kept.best(True) == none.best(True)
    assert kept.epochs < none.epochs / 2  # and it still stopped most of the compute


def test_the_metrics_noise_from_finished_curves_lets_a_curve_that_bends_early_be_judged():
    """From its own 3 epochs, a curve that leaps and then flattens ([0.10, 0.82, 0.92]) reads
    as very noisy, so every rate fits it and nothing can be ruled out; the finished curves
    say the metric's noise is small, and it stops there (fails with the curve's own noise
    kept: it ran all 9 epochs)."""

    def smooth(top: float, rate: float) -> Curve:
        wobble = (0.001, -0.001, 0.0015, -0.0005, 0.0, 0.001, -0.001, 0.0005, 0.0)
        values = tuple(top * (1 - math.exp(-rate * (t + 1))) + wobble[t] for t in range(9))
        return Curve(values, (1.0,) * 9, 9)

    finished = [smooth(0.985 - 0.004 * i, 0.9 + 0.1 * i) for i in range(3)]
    leaper = Curve((0.10, 0.82, 0.92, 0.925, 0.93, 0.93, 0.931, 0.931, 0.932), (1.0,) * 9, 9)
    run = replay([*finished, leaper], EarlyTermination("forecast", {"risk": 0.05}))
    assert run.pruned == 1
    assert run.epochs == 3 * 9 + 3


def test_forecast_keeps_a_digits_winner_that_pauses_before_it_rises():
    """Half of the digits curve bank, 4 workers: its best curve pauses after a rise
    ([0.673, 0.839, 0.876, 0.876] then 0.975, 0.994: a learning-rate step). Read by its last
    step alone it looked converged and was stopped after 4 epochs; its largest recent step
    keeps it (fails with the scale back on the last step)."""
    from sweep.replay import load_bank

    bank = load_bank(Path(__file__).parents[2] / "benchmarks" / "curves" / "digits.jsonl.gz")
    order = list(range(len(bank.curves)))
    random.Random(115).shuffle(order)
    half = [bank.curves[i] for i in order[len(order) // 2 :]]
    best = replay(half, EarlyTermination("none"), workers=4).best(True)
    kept = replay(half, EarlyTermination("forecast", {"risk": 0.05}), workers=4)
    assert kept.best(True) == best
    assert kept.pruned > len(half) // 4  # and it still stopped many


def test_forecast_promotion_keeps_the_winner_that_promotion_asha_leaves_at_a_rung():
    """Promotion by forecast: a paused trial goes on unless its forecast cannot reach the
    best; promotion ASHA promotes the top third by value at the rung, never the slow
    starter (fails with the forecast replaced by rung ranking). 27 epochs: rungs at 3 and 9
    (at 9 epochs its one rung, 3, is too early for the forecast to rule out anything here)."""
    from sweep.replay import crossing_curves

    curves = list(crossing_curves(60, epochs=27, seed=0).curves)
    none = replay(curves, EarlyTermination("none"), workers=2)
    winner = none.best(True)
    asha = replay(
        curves,
        EarlyTermination("asha", {"mode": "promotion", "min_resource": 1, "reduction_factor": 3}),
        workers=2,
    )
    assert asha.best(True) < winner - 0.002
    kept = replay(curves, EarlyTermination("forecast", {"mode": "promotion"}), workers=2)
    assert kept.best(True) == winner
    assert kept.epochs < none.epochs * 0.75  # and it left a quarter of the compute unspent


def test_a_sweep_with_forecast_stops_hopeless_trials_saying_why(tmp_path, capsys):
    result = Sweep(
        name="fc",
        search_space={"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
        trainer=toy_trainers.crossing,
        root=tmp_path,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 9},
        sampling_algorithm={"type": "random", "seed": 3},
        early_termination={"type": "forecast", "risk": 0.1},
        limits={"max_total_trials": 16},
    ).run()
    reasons = result.trials.loc[result.trials["state"] == "pruned", "reason"].tolist()
    assert reasons and all(r.startswith("forecast ") and "< best" in r for r in reasons)
    assert main(["status", "fc", "--root", str(tmp_path)]) == 0
    assert "forecast " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        ("{type: forecast, risk: 1.5}", "early_termination.risk: must be a number between 0 and 1"),
        ("{type: forecast, risk: 0}", "early_termination.risk"),
        ("{type: forecast, riks: 0.1}", "early_termination"),
        ("{type: forecast, min_history: 1}", "early_termination.min_history"),
        (
            "{type: forecast, mode: sometimes}",
            "early_termination.mode: expected stopping or promotion",
        ),
    ],
)
def test_bad_forecast_settings_are_one_line_errors(tmp_path, capsys, policy, says):
    (tmp_path / "s.yaml").write_text(
        "trainer: {entry: 'tests.sweep_tests.toy_trainers:crossing'}\n"
        "search_space: {x: {type: uniform, min_value: 0, max_value: 1}}\n"
        f"early_termination: {policy}\n"
    )
    assert main(["validate", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err, err
