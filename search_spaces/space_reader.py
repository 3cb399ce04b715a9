"""Reads a search space: each parameter's expression, checked key by key, with Azure ML's
semantics (and its ``logbase``)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any

from search_spaces import _checks as c
from search_spaces._errors import SearchSpaceError
from search_spaces.expressions import (
    EXPRESSION_TYPES,
    Choice,
    Expression,
    FloatRange,
    IntRange,
    LogNormal,
    LogUniform,
    Normal,
    QLogNormal,
    QLogUniform,
    RandInt,
    Uniform,
    normal_from_quantile,
)

# Each expression's keys, as Azure ML's sweep-job schema names them (plus our float/int).
_EXPRESSION_KEYS = {
    "choice": {"values"},
    "randint": {"upper"},
    "uniform": {"min_value", "max_value"},
    "loguniform": {"min_value", "max_value"},
    "quniform": {"min_value", "max_value", "q"},
    "qloguniform": {"min_value", "max_value", "q"},
    "normal": {"mu", "sigma"},
    "lognormal": {"mu", "sigma"},
    "qnormal": {"mu", "sigma", "q"},
    "qlognormal": {"mu", "sigma", "q"},
    "float": {"low", "high", "log", "step"},
    "int": {"low", "high", "log", "step"},
}


class SearchSpaceWarning(UserWarning):
    """A sweep file that is valid but probably not what its author meant."""


def parse_search_space(
    value: Any, problems: c.Problems | None = None, *, logbase: float | str = "e"
) -> dict[str, Expression]:
    """Reads ``search_space``; with ``problems``, every bad parameter is collected, else the
    first raises. ``logbase`` is Azure's random-sampling base of the log expressions."""
    own = problems is None
    problems = problems or c.Problems()
    out: dict[str, Expression] = {}
    with problems.check():
        space = c.mapping(value, "search_space")
        if not space:
            raise SearchSpaceError("search_space", "is empty; add at least one parameter")
        for key, expr in space.items():
            with problems.check():
                out[key] = rebase_log(parse_expression(expr, f"search_space.{key}"), logbase)
    if own:
        problems.raise_any()
    return out


def rebase_log(expr: Expression, logbase: float | str) -> Expression:
    """Azure's ``logbase`` b makes loguniform b**uniform(a, c) = exp(uniform(a ln b, c ln b)):
    the same expression in base e with its bounds (or mu, sigma) scaled by ln b."""
    if logbase == "e":
        return expr
    scale = math.log(float(logbase))
    if isinstance(expr, LogUniform | QLogUniform):
        return dataclasses.replace(
            expr, min_value=expr.min_value * scale, max_value=expr.max_value * scale
        )
    if isinstance(expr, LogNormal | QLogNormal):
        return dataclasses.replace(expr, mu=expr.mu * scale, sigma=expr.sigma * scale)
    return expr


def parse_expression(value: Any, path: str) -> Expression:
    d = c.mapping(value, path)
    kind = c.one_of(c.string(d, "type", path), tuple(EXPRESSION_TYPES), f"{path}.type")
    c.no_unknown_keys(d, path, _EXPRESSION_KEYS[kind] | {"type"})
    cls = EXPRESSION_TYPES[kind]
    if kind == "choice":
        values = d.get("values")
        if not isinstance(values, list) or not values:
            raise SearchSpaceError(f"{path}.values", f"expected a non-empty list, got {values!r}")
        return Choice(tuple(_choice_value(v, f"{path}.values[{i}]") for i, v in enumerate(values)))
    if kind == "randint":
        upper = c.integer(d, "upper", path)
        c.positive(upper, f"{path}.upper")
        return RandInt(upper)
    if kind in ("float", "int"):
        return _range(d, path, kind)
    q = {}
    if "q" in _EXPRESSION_KEYS[kind]:
        q["q"] = c.number(d, "q", path)
        c.positive(q["q"], f"{path}.q")
    if issubclass(cls, Uniform):
        lo, hi = c.number(d, "min_value", path), c.number(d, "max_value", path)
        if lo >= hi:
            raise SearchSpaceError(
                path,
                f"min_value {lo} is {'equal to' if lo == hi else 'greater than'} max_value {hi}",
            )
        if kind in ("loguniform", "qloguniform"):
            _warn_if_log_bounds_look_like_values(path, lo, hi)
        bounded = cls(lo, hi, **q)
        _check_finite(bounded, path, kind, (lo, hi))
        return bounded
    assert issubclass(cls, Normal)
    mu, sigma = c.number(d, "mu", path), c.number(d, "sigma", path)
    c.positive(sigma, f"{path}.sigma")
    expr = cls(mu, sigma, **q)
    assert isinstance(expr, Normal)
    # Its latent draws are truncated at about 7 sigma (see expressions._QUANTILE_EPS).
    _check_finite(
        expr,
        path,
        kind,
        (normal_from_quantile(0.0, mu, sigma), normal_from_quantile(1.0, mu, sigma)),
    )
    return expr


MAX_MAGNITUDE = 1e100
"""The largest value an expression may reach: past it the report's statistics (squares,
variances) overflow, and no hyperparameter means it."""


def _check_finite(
    expr: Uniform | Normal, path: str, kind: str, latent: tuple[float, float]
) -> None:
    """Refuses an expression whose values overflow a float anywhere in its range (exp(1000),
    the value written where the exponent belongs): a file that validates must run."""
    values = []
    for end in latent:
        try:
            # float(): an integer q rounds a huge bound to an int no float holds (-1.8e308, q 3)
            values.append((float(expr.transform(end)), end))
        except (OverflowError, ZeroDivisionError):
            values.append((math.inf, end))
    for value, end in values:
        if not math.isfinite(value):
            hint = (
                (
                    " (its bounds are natural-log exponents: max_value 1000 means exp(1000); "
                    "for values up to 1000 write max_value: 6.9)"
                )
                if "loguniform" in kind
                else ""
            )
            raise SearchSpaceError(
                path, f"{kind} reaches {value} at {end:.6g}, beyond what a float holds{hint}"
            )
    for value, end in values:
        if abs(value) > MAX_MAGNITUDE:
            raise SearchSpaceError(
                path,
                f"{kind} reaches {value:.3g} at {end:.6g}: no "
                f"hyperparameter is that large (at most {MAX_MAGNITUDE:g}), "
                "and reports of it would overflow; check mu and sigma (or "
                "the bounds: exponents for the log forms)",
            )
    if "loguniform" in kind and math.exp(latent[0]) == 0.0:
        raise SearchSpaceError(
            path,
            f"{kind} with min_value {latent[0]:.6g} starts at "
            f"exp({latent[0]:.6g}), which is 0 as a float; a log scale needs "
            "a start above 0 (min_value -700 or more)",
        )


def _choice_value(v: Any, path: str) -> Any:
    """A choice's value: a scalar, a list (W&B's ``values: [[mlm], [mlm, cls]]``, given to the
    trainer as written), or (Azure's nested search space) a mapping of scalars and
    expressions, sampled together when that value is chosen."""
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    if isinstance(v, list):
        return [_plain(x, f"{path}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, Mapping):
        c.mapping(v, path)
        return {
            k: (
                parse_expression(x, f"{path}.{k}")
                if isinstance(x, Mapping)
                else _choice_value(x, f"{path}.{k}")
            )
            for k, x in v.items()
        }
    raise SearchSpaceError(
        path, f"choices must be numbers, strings, booleans, lists or mappings, got {v!r}"
    )


def _plain(v: Any, path: str) -> Any:
    """A value inside a list choice: plain data only (nothing in it is sampled)."""
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    if isinstance(v, list):
        return [_plain(x, f"{path}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, Mapping):
        return {str(k): _plain(x, f"{path}.{k}") for k, x in v.items()}
    raise SearchSpaceError(path, f"expected plain data in a list choice, got {v!r}")


def _range(d: Mapping[str, Any], path: str, kind: str) -> FloatRange | IntRange:
    get = c.number if kind == "float" else c.integer
    lo, hi = get(d, "low", path), get(d, "high", path)
    log = c.boolean(d, "log", path, False)
    if lo > hi or (kind == "float" and lo == hi):
        raise SearchSpaceError(
            path,
            f"low {lo} is greater than high {hi}" if lo > hi else f"low {lo} is equal to high {hi}",
        )
    if log and lo <= 0:
        raise SearchSpaceError(f"{path}.low", f"must be greater than 0 when log is true, got {lo}")
    if kind == "float":
        step = c.optional_number(d, "step", path)
        if step is not None:
            c.positive(step, f"{path}.step")
            if log:
                raise SearchSpaceError(f"{path}.step", "cannot be combined with log: true")
        return FloatRange(float(lo), float(hi), log, step)
    istep = c.integer(d, "step", path, 1)
    c.positive(istep, f"{path}.step")
    if log and istep != 1:
        raise SearchSpaceError(f"{path}.step", "must be 1 when log is true")
    return IntRange(int(lo), int(hi), log, istep)


def _warn_if_log_bounds_look_like_values(path: str, lo: float, hi: float) -> None:
    # exp(0.0001)..exp(0.1) is 1.0001..1.105: almost surely values written where exponents go.
    if 0 < lo < hi <= 1:
        warnings.warn(
            f"{path}: loguniform bounds are exponents, so this samples exp({lo})..exp({hi}) = "
            f"{math.exp(lo):.4g}..{math.exp(hi):.4g}; for values {lo}..{hi} write "
            f"min_value: {math.log(lo):.4g}, max_value: {math.log(hi):.4g} "
            f"or {{type: float, low: {lo}, high: {hi}, log: true}}",
            SearchSpaceWarning,
            stacklevel=3,
        )


__all__ = ["SearchSpaceWarning", "parse_expression", "parse_search_space", "rebase_log"]
