"""The search-space expressions: Azure ML v2's, with Azure ML's semantics, plus plain ranges.

Each expression is a frozen value that knows its own maths (how Azure ML samples it, what its
support is) and nothing about Optuna, Ray or Azure's SDK. Azure ML defines them as:

- ``choice(values)``: one of the values.
- ``randint(upper)``: an integer in ``[0, upper)``.
- ``uniform(min_value, max_value)``: uniform between the bounds.
- ``quniform(min_value, max_value, q)``: ``round(uniform(min_value, max_value) / q) * q``.
- ``loguniform(min_value, max_value)``: ``exp(uniform(min_value, max_value))``: the bounds are
  natural-log exponents, not values.
- ``qloguniform(min_value, max_value, q)``: ``round(exp(uniform(min_value, max_value)) / q) * q``.
- ``normal(mu, sigma)``, ``qnormal(mu, sigma, q)``: ``round(normal(mu, sigma) / q) * q``.
- ``lognormal(mu, sigma)``: ``exp(normal(mu, sigma))``;
  ``qlognormal(mu, sigma, q)``: ``round(exp(normal(mu, sigma)) / q) * q``.

Ours: ``float(low, high, log=False, step=None)`` and ``int(low, high, log=False, step=1)``,
both with inclusive bounds, as Optuna's ``suggest_float`` / ``suggest_int`` define them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, ClassVar

# Latent uniform draws in [0, 1] are clipped to this band before the inverse normal CDF, so a
# drawn 0 or 1 cannot become an infinite value; it truncates the normal at about 7 sigma.
_QUANTILE_EPS = 1e-12


def _qround(value: float, q: float) -> float:
    return round(value / q) * q


def normal_from_quantile(u: float, mu: float, sigma: float) -> float:
    """Maps a uniform draw in [0, 1] to a normal(mu, sigma) draw (inverse-CDF sampling)."""
    u = min(max(u, _QUANTILE_EPS), 1.0 - _QUANTILE_EPS)
    return NormalDist(mu, sigma).inv_cdf(u)


def _on_grid(value: float, q: float) -> bool:
    k = value / q
    return math.isclose(k, round(k), rel_tol=0, abs_tol=1e-6)


@dataclass(frozen=True)
class Choice:
    """One of ``values``. A value may be a mapping (Azure's nested search space): its
    scalars are fixed and its expressions are sampled when that value is chosen."""

    values: tuple[Any, ...]
    type: ClassVar[str] = "choice"

    @property
    def nested(self) -> bool:
        """Sampled by index: some value is a mapping or a list (Optuna takes scalars only)."""
        return any(isinstance(v, dict | list) for v in self.values)

    def sample(self, rng: random.Random) -> Any:
        value = rng.choice(self.values)
        if isinstance(value, dict):
            return {k: v.sample(rng) if hasattr(v, "sample") else v for k, v in value.items()}
        return value

    def contains(self, value: Any) -> bool:
        if not isinstance(value, dict):
            return value in self.values
        for option in self.values:
            if (
                isinstance(option, dict)
                and option.keys() == value.keys()
                and all(
                    o.contains(value[k]) if hasattr(o, "contains") else o == value[k]
                    for k, o in option.items()
                )
            ):
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: x.to_dict() if hasattr(x, "to_dict") else plain(x) for k, x in v.items()}
            return v

        return {"type": self.type, "values": [plain(v) for v in self.values]}


@dataclass(frozen=True)
class RandInt:
    upper: int
    type: ClassVar[str] = "randint"

    def sample(self, rng: random.Random) -> int:
        return rng.randrange(self.upper)

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and 0 <= value < self.upper

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "upper": self.upper}


@dataclass(frozen=True)
class Uniform:
    min_value: float
    max_value: float
    type: ClassVar[str] = "uniform"

    def transform(self, u: float) -> float:
        """The value for a latent draw ``u`` from uniform(min_value, max_value)."""
        return u

    def sample(self, rng: random.Random) -> float:
        return self.transform(rng.uniform(self.min_value, self.max_value))

    def contains(self, value: Any) -> bool:
        return self.min_value <= value <= self.max_value

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "min_value": self.min_value, "max_value": self.max_value}


@dataclass(frozen=True)
class QUniform(Uniform):
    q: float = 1.0
    type: ClassVar[str] = "quniform"

    def transform(self, u: float) -> float:
        return _qround(u, self.q)

    def contains(self, value: Any) -> bool:
        lo, hi = _qround(self.min_value, self.q), _qround(self.max_value, self.q)
        return lo - 1e-9 <= value <= hi + 1e-9 and _on_grid(value, self.q)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "q": self.q}


@dataclass(frozen=True)
class LogUniform(Uniform):
    type: ClassVar[str] = "loguniform"

    def transform(self, u: float) -> float:
        return math.exp(u)

    def contains(self, value: Any) -> bool:
        lo, hi = math.exp(self.min_value), math.exp(self.max_value)
        return lo * (1 - 1e-12) <= value <= hi * (1 + 1e-12)


@dataclass(frozen=True)
class QLogUniform(Uniform):
    q: float = 1.0
    type: ClassVar[str] = "qloguniform"

    def transform(self, u: float) -> float:
        return _qround(math.exp(u), self.q)

    def contains(self, value: Any) -> bool:
        lo = _qround(math.exp(self.min_value), self.q)
        hi = _qround(math.exp(self.max_value), self.q)
        return lo - 1e-9 <= value <= hi + 1e-9 and _on_grid(value, self.q)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "q": self.q}


@dataclass(frozen=True)
class Normal:
    mu: float
    sigma: float
    type: ClassVar[str] = "normal"

    def transform(self, z: float) -> float:
        """The value for a latent draw ``z`` from normal(mu, sigma)."""
        return z

    def sample(self, rng: random.Random) -> float:
        return self.transform(rng.gauss(self.mu, self.sigma))

    def contains(self, value: Any) -> bool:
        return isinstance(value, int | float) and math.isfinite(value)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "mu": self.mu, "sigma": self.sigma}


@dataclass(frozen=True)
class QNormal(Normal):
    q: float = 1.0
    type: ClassVar[str] = "qnormal"

    def transform(self, z: float) -> float:
        return _qround(z, self.q)

    def contains(self, value: Any) -> bool:
        return super().contains(value) and _on_grid(value, self.q)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "q": self.q}


@dataclass(frozen=True)
class LogNormal(Normal):
    type: ClassVar[str] = "lognormal"

    def transform(self, z: float) -> float:
        return math.exp(z)

    def contains(self, value: Any) -> bool:
        return super().contains(value) and value >= 0


@dataclass(frozen=True)
class QLogNormal(Normal):
    q: float = 1.0
    type: ClassVar[str] = "qlognormal"

    def transform(self, z: float) -> float:
        return _qround(math.exp(z), self.q)

    def contains(self, value: Any) -> bool:
        return super().contains(value) and value >= 0 and _on_grid(value, self.q)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "q": self.q}


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False
    step: float | None = None
    type: ClassVar[str] = "float"

    def sample(self, rng: random.Random) -> float:
        if self.step is not None:
            n = math.floor((self.high - self.low) / self.step + 1e-9)
            return self.low + rng.randint(0, n) * self.step
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def contains(self, value: Any) -> bool:
        inside = self.low - 1e-9 <= value <= self.high + 1e-9
        if self.step is None:
            return inside
        return inside and _on_grid(value - self.low, self.step)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False
    step: int = 1
    type: ClassVar[str] = "int"

    def sample(self, rng: random.Random) -> int:
        if self.log:
            # Optuna's log-int: round a log-uniform draw over [low - 0.5, high + 0.5].
            v = math.exp(rng.uniform(math.log(self.low - 0.5), math.log(self.high + 0.5)))
            return min(max(round(v), self.low), self.high)
        return self.low + rng.randint(0, (self.high - self.low) // self.step) * self.step

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step != 1:
            out["step"] = self.step
        return out


Expression = (
    Choice
    | RandInt
    | Uniform
    | QUniform
    | LogUniform
    | QLogUniform
    | Normal
    | QNormal
    | LogNormal
    | QLogNormal
    | FloatRange
    | IntRange
)

EXPRESSION_TYPES: dict[str, type] = {
    cls.type: cls
    for cls in (
        Choice,
        RandInt,
        Uniform,
        QUniform,
        LogUniform,
        QLogUniform,
        Normal,
        QNormal,
        LogNormal,
        QLogNormal,
        FloatRange,
        IntRange,
    )
}
