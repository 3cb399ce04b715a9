"""Sampling algorithms as plain values: one frozen dataclass per sampler that checks itself
when built (its messages show the values), and one table from ``type`` to its class. The
reader takes each sampler's keys from the class's fields; ``sweep.study`` maps each class to
its Optuna sampler; ``azure`` marks Azure ML's own three. Adding a sampler: a dataclass here
(and its row in ``TABLE``), and its row in ``sweep.study.SAMPLERS``."""

from __future__ import annotations

import dataclasses
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
        if self.seed is not None and (isinstance(self.seed, bool)
                                      or not isinstance(self.seed, int)):
            raise SearchSpaceError(f"{_PATH}.seed",
                                   f"expected an integer, got {abbreviate(self.seed)}")

    def options(self) -> dict[str, Any]:
        """The settings other than the seed that are set, by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "seed" and getattr(self, f.name) is not None}


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
            raise SearchSpaceError(f"{_PATH}.rule",
                                   f"{abbreviate(self.rule)} is not one of random, sobol")
        base = self.logbase
        if base is not None and not (base == "e" or (
                isinstance(base, int | float) and not isinstance(base, bool)
                and base > 0 and base != 1)):
            raise SearchSpaceError(f"{_PATH}.logbase", "must be 'e' or a positive number other "
                                   f"than 1, got {abbreviate(base)}")


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


TABLE: dict[str, type[Sampler]] = {
    cls.type: cls for cls in (Random, Grid, Bayesian, Tpe, CmaEs, Gp, Qmc)
}
"""Every sampling algorithm by its ``type``: Azure ML's three first, then Optuna's."""


def setting_names(cls: type[Sampler]) -> set[str]:
    """The keys a sweep file may give this sampler (besides ``type``)."""
    return {f.name for f in dataclasses.fields(cls)}
