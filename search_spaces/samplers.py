"""Sampling algorithms as plain values: one frozen dataclass per sampler that checks itself
when built (its messages show the values), and one table from ``type`` to its class. The reader
takes each sampler's keys from the class's fields; ``sweep.coordination.study`` maps each class
to its Optuna sampler; ``azure`` marks Azure ML's own three. Adding a sampler: a dataclass here
(and its row in ``TABLE``), and its row in ``sweep.coordination.study.SAMPLERS``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from search_spaces._errors import SearchSpaceError, abbreviate

_PATH = "sampling_algorithm"


@dataclass(frozen=True)
class Sampler:
    seed: int | None = None
    type: ClassVar[str] = ""
    azure: ClassVar[bool] = False
    """One of Azure ML's own sampling algorithms (the rest run locally only)."""

    def __post_init__(self) -> None:
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise SearchSpaceError(
                f"{_PATH}.seed", f"expected an integer, got {abbreviate(self.seed)}"
            )
        if self.seed is not None and not 0 <= self.seed < 2**32:
            raise SearchSpaceError(
                f"{_PATH}.seed",
                f"expected an integer from 0 to 2**32 - 1 "
                f"(what NumPy's and Optuna's generators take), got "
                f"{abbreviate(self.seed)}",
            )

    def options(self) -> dict[str, Any]:
        """The settings other than the seed that are set, by name."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "seed" and getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class Random(Sampler):
    """Azure ML's random sampling: ``rule: sobol`` for a scrambled Sobol sequence, and
    ``logbase``, the base of the log expressions (handled by the reader)."""

    rule: str | None = None
    logbase: float | str | None = None
    type: ClassVar[str] = "random"
    azure: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rule is not None and self.rule not in ("random", "sobol"):
            raise SearchSpaceError(
                f"{_PATH}.rule", f"{abbreviate(self.rule)} is not one of random, sobol"
            )
        base = self.logbase
        if base is not None and not (
            base == "e"
            or (
                isinstance(base, int | float)
                and not isinstance(base, bool)
                and base > 0
                and base != 1
            )
        ):
            raise SearchSpaceError(
                f"{_PATH}.logbase",
                f"must be 'e' or a positive number other than 1, got {abbreviate(base)}",
            )


@dataclass(frozen=True)
class Grid(Sampler):
    type: ClassVar[str] = "grid"
    azure: ClassVar[bool] = True


@dataclass(frozen=True)
class Bayesian(Sampler):
    """Azure ML's name; here Optuna's TPE (multivariate, constant liar)."""

    type: ClassVar[str] = "bayesian"
    azure: ClassVar[bool] = True


@dataclass(frozen=True)
class Tpe(Sampler):
    type: ClassVar[str] = "tpe"


@dataclass(frozen=True)
class CmaEs(Sampler):
    type: ClassVar[str] = "cmaes"


@dataclass(frozen=True)
class Gp(Sampler):
    type: ClassVar[str] = "gp"


@dataclass(frozen=True)
class Qmc(Sampler):
    type: ClassVar[str] = "qmc"


@dataclass(frozen=True)
class Nsga2(Sampler):
    """Optuna's NSGAIISampler: several objectives (and constraints), by generations of
    ``population_size`` trials."""

    population_size: int | None = None
    type: ClassVar[str] = "nsga2"

    def __post_init__(self) -> None:
        super().__post_init__()
        size = self.population_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 2):
            raise SearchSpaceError(
                f"{_PATH}.population_size",
                f"expected an integer of 2 or more, got {abbreviate(size)}",
            )


@dataclass(frozen=True)
class Pbt(Sampler):
    """Population-based training (``sweep.scheduling.population``): ``population_size`` members
    spread over the space (a Latin hypercube: one a stratum of each parameter) train side by
    side; every ``perturbation_interval`` epochs the bottom ``quantile`` copy a top-``quantile``
    member's checkpoint and explore its parameters
    (``search_spaces.explore``)."""

    population_size: int = 8
    perturbation_interval: int = 2
    quantile: float = 0.25
    resample_probability: float = 0.25
    perturbation_factors: tuple[float, ...] | list[float] = (0.8, 1.2)
    synchronous: bool = True
    """False: a member that reaches a boundary is judged at once against the members that
    reached it too, no generation waits for its slowest member (Ray Tune's default)."""
    type: ClassVar[str] = "pbt"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, low in (("population_size", 2), ("perturbation_interval", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SearchSpaceError(
                    f"{_PATH}.{name}",
                    f"expected an integer of {low} or more, got {abbreviate(value)}",
                )
        if not _number(self.quantile) or not 0 < self.quantile <= 0.5:
            raise SearchSpaceError(
                f"{_PATH}.quantile",
                f"expected a number above 0 and at most 0.5, got {abbreviate(self.quantile)}",
            )
        if not _number(self.resample_probability) or not 0 <= self.resample_probability <= 1:
            raise SearchSpaceError(
                f"{_PATH}.resample_probability",
                f"expected a number from 0 to 1, got {abbreviate(self.resample_probability)}",
            )
        if not isinstance(self.synchronous, bool):
            raise SearchSpaceError(
                f"{_PATH}.synchronous",
                f"expected true or false, got {abbreviate(self.synchronous)}",
            )
        factors = self.perturbation_factors
        if (
            not isinstance(factors, list | tuple)
            or not factors
            or not all(_number(f) and 0 < f < math.inf for f in factors)
        ):
            raise SearchSpaceError(
                f"{_PATH}.perturbation_factors",
                "expected a list of positive "
                f"numbers such as [0.8, 1.2], got {abbreviate(factors)}",
            )
        object.__setattr__(self, "perturbation_factors", tuple(float(f) for f in factors))

    def options(self) -> dict[str, Any]:
        # Every setting, the defaults too: the plan and the coordinator read them from here
        # (a list, not a tuple: the options are written back to YAML and JSON).
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "seed"}
        out["perturbation_factors"] = list(self.perturbation_factors)
        return out


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and value == value
    )  # not NaN


TABLE: dict[str, type[Sampler]] = {
    cls.type: cls for cls in (Random, Grid, Bayesian, Tpe, CmaEs, Gp, Qmc, Nsga2, Pbt)
}
"""Every sampling algorithm by its ``type``: Azure ML's three first, then Optuna's."""


def setting_names(cls: type[Sampler]) -> set[str]:
    """The keys a sweep file may give this sampler (besides ``type``)."""
    return {f.name for f in dataclasses.fields(cls)}
