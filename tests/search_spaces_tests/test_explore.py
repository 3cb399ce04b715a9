"""PBT's explore step stays inside every expression's support, and moves values nearby."""

from __future__ import annotations

import math
import random

import pytest

from search_spaces.explore import explore, perturb
from search_spaces.expressions import (
    Choice,
    FloatRange,
    IntRange,
    LogNormal,
    LogUniform,
    Normal,
    QLogNormal,
    QLogUniform,
    QNormal,
    QUniform,
    RandInt,
    Uniform,
)

EVERY_TYPE = [
    Choice((16, 32, 64, 128)),
    Choice(({"model": "resnet18", "lr": Uniform(0.01, 0.1)}, {"model": "mobilenet_v3_small"})),
    Choice((["mlm"], ["mlm", "cls"])),
    RandInt(5),
    Uniform(0.5, 0.99),
    QUniform(0.0, 100.0, 7.5),
    LogUniform(math.log(1e-5), math.log(1e-1)),
    QLogUniform(math.log(1), math.log(1000), 10),
    Normal(0.0, 1.0),
    QNormal(10.0, 3.0, 2.0),
    LogNormal(0.0, 1.0),
    QLogNormal(1.0, 0.5, 0.5),
    FloatRange(1e-4, 1e-1, log=True),
    FloatRange(0.1, 0.95, step=0.05),
    FloatRange(-1.0, 1.0),
    IntRange(1, 64, log=True),
    IntRange(2, 30, step=4),
]


@pytest.mark.parametrize("expr", EVERY_TYPE, ids=lambda e: type(e).__name__)
def test_explore_stays_in_bounds_for_every_expression_type(expr):
    rng = random.Random(0)
    for _ in range(300):
        value = expr.sample(rng)
        for factors in ((0.8, 1.2), (0.1, 10.0)):
            moved = perturb(expr, value, rng, factors)
            assert expr.contains(moved), (expr, value, moved)
        # Many steps in a row (a long PBT run) never leave the support either.
        walked = value
        for _ in range(20):
            walked = perturb(expr, walked, rng, (0.5, 2.0))
        assert expr.contains(walked), (expr, value, walked)


def test_a_number_is_multiplied_by_a_factor_and_a_choice_moves_to_a_neighbour():
    rng = random.Random(1)
    assert {perturb(Uniform(0.0, 10.0), 5.0, rng) for _ in range(50)} == {4.0, 6.0}
    assert sorted(
        {perturb(FloatRange(1e-4, 1.0, log=True), 0.01, rng) for _ in range(50)}
    ) == pytest.approx([0.008, 0.012])
    assert {perturb(Choice((16, 32, 64, 128)), 32, rng) for _ in range(50)} == {16, 64}
    assert {perturb(Choice((16, 32, 64, 128)), 16, rng) for _ in range(50)} == {16, 32}
    # At a bound the value is clipped to it, never past.
    assert {perturb(Uniform(0.0, 10.0), 10.0, rng) for _ in range(50)} == {8.0, 10.0}
    assert {perturb(QUniform(0.0, 100.0, 10.0), 50.0, rng) for _ in range(50)} == {40.0, 60.0}


def test_explore_resamples_with_its_probability_and_keeps_other_keys():
    space = {"lr": Uniform(0.0, 1.0)}
    rng = random.Random(2)
    kept = [
        explore(space, {"lr": 0.5, "num_epochs": 8}, rng, resample_probability=0.0)
        for _ in range(30)
    ]
    assert {k["lr"] for k in kept} == {0.4, 0.6} and {k["num_epochs"] for k in kept} == {8}
    drawn = {explore(space, {"lr": 0.5}, rng, resample_probability=1.0)["lr"] for _ in range(30)}
    assert len(drawn) == 30  # sampled afresh each time
