from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces.expressions import (
    Choice,
    FloatRange,
    IntRange,
    LogNormal,
    LogUniform,
    QLogNormal,
    QLogUniform,
    QNormal,
    QUniform,
    RandInt,
    Uniform,
)
from search_spaces.optuna_form import to_optuna

finite = st.floats(-50, 50, allow_nan=False)
positive = st.floats(0.01, 10, allow_nan=False)
qs = st.sampled_from([0.01, 0.1, 0.5, 1, 2, 5])


@st.composite
def bounds(draw, lo=-5.0, hi=5.0):  # type: ignore[no-untyped-def]
    a = draw(st.floats(lo, hi, allow_nan=False))
    b = draw(st.floats(lo, hi, allow_nan=False))
    if a == b:
        b = a + 1
    return min(a, b), max(a, b)


@st.composite
def expressions(draw):  # type: ignore[no-untyped-def]
    kind = draw(st.sampled_from(list(range(12))))
    lo, hi = draw(bounds())
    q = draw(qs)
    mu, sigma = draw(st.floats(-3, 3)), draw(st.floats(0.1, 2))
    ilo = draw(st.integers(1, 50))
    ihi = ilo + draw(st.integers(0, 50))
    return [
        Choice(tuple(draw(st.lists(st.integers(), min_size=1, max_size=5)))),
        RandInt(draw(st.integers(1, 100))),
        Uniform(lo, hi),
        QUniform(lo, hi, q),
        LogUniform(lo, hi),
        QLogUniform(lo, hi, q),
        QNormal(mu, sigma, q),
        LogNormal(mu, sigma),
        QLogNormal(mu, sigma, q),
        FloatRange(math.exp(lo), math.exp(hi), log=True),
        FloatRange(float(ilo), float(ihi) + 1.0, step=0.5),
        IntRange(ilo, ihi, log=draw(st.booleans())),
    ][kind]


@settings(max_examples=300, deadline=None)
@given(expressions(), st.integers(0, 2**32))
def test_samples_stay_in_the_documented_support(expr, seed):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    for _ in range(20):
        value = expr.sample(rng)
        assert expr.contains(value), (expr, value)


@settings(max_examples=300, deadline=None)
@given(expressions(), st.integers(0, 2**32))
def test_optuna_form_decodes_into_the_same_support(expr, seed):  # type: ignore[no-untyped-def]
    """Whatever value Optuna picks inside its distribution decodes to a valid value."""
    rng = random.Random(seed)
    space = to_optuna({"x": expr})
    ((name, dist),) = space.distributions().items()
    for _ in range(20):
        if hasattr(dist, "choices"):
            raw = rng.choice(dist.choices)
        elif dist.step is not None and type(dist).__name__ == "IntDistribution":
            raw = rng.randrange(dist.low, dist.high + 1, dist.step)
        elif getattr(dist, "step", None):
            raw = dist.low + rng.randint(0, int((dist.high - dist.low) / dist.step)) * dist.step
        else:
            raw = rng.uniform(dist.low, dist.high)
        assert expr.contains(space.decode({name: raw})["x"]), (expr, raw)


def test_quniform_rounds_to_the_grid_as_azure_defines_it():
    expr = QUniform(0.0, 10.0, 4.0)
    rng = random.Random(0)
    seen = {expr.sample(rng) for _ in range(2000)}
    # round(U(0, 10) / 4) * 4: the grid anchored at 0, not at min_value, ends at 8.
    assert seen == {0.0, 4.0, 8.0}


def test_loguniform_bounds_are_exponents():
    expr = LogUniform(-9.2, -2.3)
    values = [expr.sample(random.Random(i)) for i in range(500)]
    assert min(values) >= math.exp(-9.2) and max(values) <= math.exp(-2.3)
    assert max(values) > 0.01  # would be impossible if the bounds were read as values


def test_normal_latent_decoding_matches_the_normal_quantiles():
    space = to_optuna({"x": QNormal(10.0, 2.0, 1.0)})
    ((name, _),) = space.distributions().items()
    assert space.decode({name: 0.5})["x"] == 10.0
    # The 97.5% quantile of N(10, 2) is 13.92, which qnormal rounds to 14.
    assert space.decode({name: 0.975})["x"] == 14.0
    assert math.isfinite(space.decode({name: 0.0})["x"])
