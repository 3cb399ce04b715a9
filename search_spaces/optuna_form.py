"""The Optuna form of a search space: distributions to ask for, and how to read the answers.

Where Optuna has the same distribution (choice, randint, uniform, loguniform, float, int) the
parameter is asked for directly under its own name. Where it has none (the q-variants and the
normal family) a latent parameter named ``NAME__latent`` is asked for and turned into the
value exactly as Azure ML defines the expression: ``round(x / q) * q`` for the q-variants, and
inverse-CDF sampling of a uniform quantile for the normal family, so samplers still model a
smooth latent space.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from search_spaces._errors import SearchSpaceError
from search_spaces.expressions import (
    Choice,
    Expression,
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
    normal_from_quantile,
)

LATENT_SUFFIX = "__latent"


def _identity(x: Any) -> Any:
    return x


@dataclass(frozen=True)
class OptunaParam:
    """One parameter as Optuna sees it: the name asked for, its distribution, and the decoder."""

    optuna_name: str
    distribution: BaseDistribution
    decode: Callable[[Any], Any]


@dataclass(frozen=True)
class NestedChoiceParam:
    """Azure's choice of mappings: Optuna picks an option's index under the parameter's name;
    each option's expressions are Optuna parameters of their own (``NAME.INDEX.KEY``), asked
    in every trial and read only when their option is chosen, so the space stays fixed."""

    optuna_name: str
    distribution: BaseDistribution
    options: tuple[Any, ...]
    """Per option: a scalar, or a mapping of its keys to a scalar or a parameter."""

    def distributions(self) -> dict[str, BaseDistribution]:
        out = {self.optuna_name: self.distribution}
        for option in self.options:
            if isinstance(option, dict):
                for value in option.values():
                    if isinstance(value, OptunaParam | NestedChoiceParam):
                        out.update(_dists(value))
        return out

    def decode(self, optuna_params: Mapping[str, Any]) -> Any:
        option = self.options[optuna_params[self.optuna_name]]
        if not isinstance(option, dict):
            return option
        return {
            k: _decode(v, optuna_params) if isinstance(v, OptunaParam | NestedChoiceParam) else v
            for k, v in option.items()
        }


def _dists(p: OptunaParam | NestedChoiceParam) -> dict[str, BaseDistribution]:
    if isinstance(p, NestedChoiceParam):
        return p.distributions()
    return {p.optuna_name: p.distribution}


def _decode(p: OptunaParam | NestedChoiceParam, optuna_params: Mapping[str, Any]) -> Any:
    if isinstance(p, NestedChoiceParam):
        return p.decode(optuna_params)
    return p.decode(optuna_params[p.optuna_name])


@dataclass(frozen=True)
class OptunaSpace:
    params: Mapping[str, OptunaParam | NestedChoiceParam]

    def distributions(self) -> dict[str, BaseDistribution]:
        """What to pass to ``study.ask(...)``, keyed by Optuna's parameter names."""
        out: dict[str, BaseDistribution] = {}
        for p in self.params.values():
            out.update(_dists(p))
        return out

    def decode(self, optuna_params: Mapping[str, Any]) -> dict[str, Any]:
        """The user's parameter values for the values Optuna chose.

        A trial sampled before the space changed (``sweep resume --space``) lacks the
        parameters added since (left out) and may have some removed since (kept as they
        were chosen)."""
        out = {
            key: _decode(p, optuna_params)
            for key, p in self.params.items()
            if all(name in optuna_params for name in _dists(p))
        }
        known = self.distributions()
        out.update({k: v for k, v in optuna_params.items() if k not in known})
        return out

    def grid(self) -> dict[str, list[Any]]:
        """The grid for Optuna's GridSampler; every parameter must be a choice."""
        grid = {}
        for key, p in self.params.items():
            if not isinstance(p.distribution, CategoricalDistribution) or (
                isinstance(p, NestedChoiceParam) and len(p.distributions()) > 1
            ):
                raise SearchSpaceError(f"search_space.{key}", "grid sampling needs a choice")
            grid[p.optuna_name] = list(p.distribution.choices)
        return grid


def to_optuna(space: Mapping[str, Expression]) -> OptunaSpace:
    """Converts a search space to Optuna distributions.

    Example:
        >>> from search_spaces.expressions import LogUniform
        >>> to_optuna({"lr": LogUniform(-9.2, -2.3)}).distributions()["lr"].log
        True
    """
    return OptunaSpace({key: _param(key, expr) for key, expr in space.items()})


def _qround(q: float) -> Callable[[float], float]:
    return lambda x: round(x / q) * q


def _nested_choice(key: str, expr: Choice) -> NestedChoiceParam:
    options: list[Any] = []
    for i, value in enumerate(expr.values):
        if isinstance(value, dict):
            value = {
                k: _param(f"{key}.{i}.{k}", v) if hasattr(v, "to_dict") else v
                for k, v in value.items()
            }
        options.append(value)
    return NestedChoiceParam(
        key, CategoricalDistribution(tuple(range(len(options)))), tuple(options)
    )


def _param(
    key: str,
    expr: Expression,  # noqa: C901 - one branch per type
) -> OptunaParam | NestedChoiceParam:
    latent = key + LATENT_SUFFIX
    if isinstance(expr, Choice):
        if expr.nested:
            return _nested_choice(key, expr)
        return OptunaParam(key, CategoricalDistribution(expr.values), _identity)
    if isinstance(expr, RandInt):
        return OptunaParam(key, IntDistribution(0, expr.upper - 1), _identity)
    if isinstance(expr, FloatRange):
        return OptunaParam(
            key, FloatDistribution(expr.low, expr.high, log=expr.log, step=expr.step), _identity
        )
    if isinstance(expr, IntRange):
        return OptunaParam(
            key, IntDistribution(expr.low, expr.high, log=expr.log, step=expr.step), _identity
        )
    if isinstance(expr, QUniform):
        return OptunaParam(
            latent, FloatDistribution(expr.min_value, expr.max_value), _qround(expr.q)
        )
    if isinstance(expr, LogUniform | QLogUniform):
        # exp(uniform(a, b)) is log-uniform on [exp(a), exp(b)]: the same distribution.
        dist = FloatDistribution(math.exp(expr.min_value), math.exp(expr.max_value), log=True)
        if isinstance(expr, LogUniform):
            return OptunaParam(key, dist, _identity)
        return OptunaParam(latent, dist, _qround(expr.q))
    if isinstance(expr, Uniform):
        return OptunaParam(key, FloatDistribution(expr.min_value, expr.max_value), _identity)
    if isinstance(expr, Normal):
        mu, sigma, transform = expr.mu, expr.sigma, _normal_transform(expr)
        return OptunaParam(
            latent,
            FloatDistribution(0.0, 1.0),
            lambda u: transform(normal_from_quantile(u, mu, sigma)),
        )
    raise SearchSpaceError(f"search_space.{key}", f"{type(expr).__name__} has no Optuna form")


def _normal_transform(expr: Normal) -> Callable[[float], float]:
    if isinstance(expr, QNormal):
        return _qround(expr.q)
    if isinstance(expr, LogNormal):
        return math.exp
    if isinstance(expr, QLogNormal):
        q = expr.q
        return lambda z: round(math.exp(z) / q) * q
    return _identity
