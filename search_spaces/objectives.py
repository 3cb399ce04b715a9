"""Several objectives and constraints: ``objective:`` as a list of ``{primary_metric, goal}``
(Optuna's directions, in order; the first is the one a pick is best on) and
``constraints: ["latency_ms <= 5", ...]`` (a trial that breaks one is infeasible: never the
pick, left off the Pareto front, and told to the samplers that take constraints)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from search_spaces._errors import SearchSpaceError, abbreviate

_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w./-]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``, read from a trial's final metrics."""

    metric: str
    op: str
    bound: float

    def violation(self, value: float) -> float:
        """Optuna's convention: at most 0 when met, by how much it is broken otherwise (a
        strict bound met with equality counts as broken, by the smallest amount)."""
        gap = value - self.bound if self.op in ("<=", "<") else self.bound - value
        if self.op in ("<", ">") and gap == 0:
            return math.ulp(abs(self.bound)) or 5e-324
        return gap

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_constraints(value: Any) -> tuple[Constraint, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise SearchSpaceError(
            "constraints", f"expected a list such as ['latency_ms <= 5'], got {abbreviate(value)}"
        )
    out = []
    for i, text in enumerate(value):
        match = _CONSTRAINT.match(text) if isinstance(text, str) else None
        bound = _number(match.group(3)) if match else None
        if match is None or bound is None:
            raise SearchSpaceError(
                f"constraints[{i}]",
                f"{abbreviate(text)} is not "
                "'METRIC <= NUMBER' (or <, >=, >), e.g. 'latency_ms <= 5'",
            )
        out.append(Constraint(match.group(1), match.group(2), bound))
    return tuple(out)


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
