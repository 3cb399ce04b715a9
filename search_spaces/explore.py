"""PBT's explore step: a value moved to a nearby one of the same expression's support.

As Ray Tune's and Syne Tune's PBT do it: with ``resample_probability`` the value is drawn
again from the expression; otherwise a number is multiplied by one of the factors (0.8 or
1.2 by default), then put back inside the bounds and onto the ``q``/``step`` grid, and a
choice moves to a neighbouring value. The result is always one the expression could have
sampled (``expr.contains``), which is what keeps a member inside its search space.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from search_spaces.expressions import (
    Choice,
    Expression,
    FloatRange,
    IntRange,
    LogUniform,
    Normal,
    QLogNormal,
    QLogUniform,
    QNormal,
    QUniform,
    RandInt,
    Uniform,
)

DEFAULT_FACTORS = (0.8, 1.2)


def explore(
    space: Mapping[str, Expression],
    params: Mapping[str, Any],
    rng: random.Random,
    factors: Sequence[float] = DEFAULT_FACTORS,
    resample_probability: float = 0.25,
) -> dict[str, Any]:
    """New values for the searched parameters in ``params`` (other keys are kept as given)."""
    out = dict(params)
    for key, expr in space.items():
        if key not in params:
            continue
        if rng.random() < resample_probability:
            out[key] = expr.sample(rng)
        else:
            out[key] = perturb(expr, params[key], rng, factors)
    return out


def perturb(
    expr: Expression,
    value: Any,
    rng: random.Random,  # noqa: C901 - one per type
    factors: Sequence[float] = DEFAULT_FACTORS,
) -> Any:
    """``value`` moved to a neighbour inside ``expr``'s support."""
    if isinstance(expr, Choice):
        return _neighbour(expr, value, rng)
    factor = rng.choice(list(factors))
    if isinstance(expr, RandInt):
        return _clip(round(value * factor), 0, expr.upper - 1)
    if isinstance(expr, IntRange):
        moved = _clip(round(value * factor), expr.low, expr.high)
        return _clip(
            expr.low + round((moved - expr.low) / expr.step) * expr.step,
            expr.low,
            expr.low + (expr.high - expr.low) // expr.step * expr.step,
        )
    if isinstance(expr, FloatRange):
        moved = _clip(value * factor, expr.low, expr.high)
        if expr.step is None:
            return moved
        top = expr.low + math.floor((expr.high - expr.low) / expr.step + 1e-9) * expr.step
        return _clip(expr.low + round((moved - expr.low) / expr.step) * expr.step, expr.low, top)
    if isinstance(expr, QUniform | QLogUniform):
        low, high = _bounds(expr)
        return _on_q_grid(value * factor, low, high, expr.q)
    if isinstance(expr, Uniform):  # uniform and loguniform
        low, high = _bounds(expr)
        return _clip(value * factor, low, high)
    if isinstance(expr, QNormal):
        return round(value * factor / expr.q) * expr.q
    if isinstance(expr, QLogNormal):
        return max(round(value * factor / expr.q) * expr.q, 0.0)
    if isinstance(expr, Normal):  # normal and lognormal: unbounded (lognormal: above 0)
        return value * factor
    raise TypeError(f"no explore step for {type(expr).__name__}")


def _neighbour(expr: Choice, value: Any, rng: random.Random) -> Any:
    index = _index_of(expr, value)
    if index is None:
        return expr.sample(rng)
    moved = _clip(index + rng.choice((-1, 1)), 0, len(expr.values) - 1)
    if moved == index:
        return value
    option = expr.values[moved]
    if isinstance(option, dict):  # a nested space: its expressions are sampled afresh
        return {k: v.sample(rng) if hasattr(v, "sample") else v for k, v in option.items()}
    return option


def _index_of(expr: Choice, value: Any) -> int | None:
    for i, option in enumerate(expr.values):
        if option == value or (isinstance(option, dict) and Choice((option,)).contains(value)):
            return i
    return None


def _bounds(expr: Uniform) -> tuple[float, float]:
    if isinstance(expr, LogUniform | QLogUniform):  # Azure's bounds are log exponents
        return math.exp(expr.min_value), math.exp(expr.max_value)
    return expr.min_value, expr.max_value


def _on_q_grid(value: float, low: float, high: float, q: float) -> float:
    """The multiple of ``q`` nearest ``value`` among those ``round(uniform(low, high)/q)*q``
    can give (its support runs from ``round(low/q)*q`` to ``round(high/q)*q``)."""
    first, last = round(low / q), round(high / q)
    return _clip(round(value / q), first, last) * q


def _clip(value: Any, low: Any, high: Any) -> Any:
    return min(max(value, low), high)
