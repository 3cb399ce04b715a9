"""The Azure ML v2 sweep-job form of a search space, as plain YAML-ready mappings.

Only the sweep part (search_space, sampling_algorithm, objective, early_termination, limits):
the trial command, code and environment are the Azure backend's business. Nothing here
imports Azure's SDK. Every conversion either keeps the meaning exactly or raises.
"""

from __future__ import annotations

import math
from typing import Any

from search_spaces._errors import SearchSpaceError
from search_spaces.config import AZURE_POLICIES, AZURE_SAMPLERS, SweepConfig
from search_spaces.expressions import Expression, FloatRange, IntRange
from search_spaces.policies import TABLE as POLICY_TABLE

# What Azure ML's Bayesian sampling accepts (its hyperparameter-tuning documentation).
BAYESIAN_EXPRESSIONS = ("choice", "uniform", "quniform")
MIN_TIMEOUT_S = 60
# An int range wider than this would make an unwieldy choice list.
_MAX_CHOICE_FOR_INT = 1000


def expression_to_azure(expr: Expression, path: str) -> dict[str, Any]:
    """The Azure ML expression with the same support and scale as ``expr``, or an error."""
    if isinstance(expr, FloatRange):
        if expr.step is not None:
            if not _is_multiple(expr.low, expr.step) or not _is_multiple(expr.high, expr.step):
                raise SearchSpaceError(
                    path,
                    "a float step range maps to Azure's quniform only when low and high "
                    f"are multiples of step (got low {expr.low}, high {expr.high}, "
                    f"step {expr.step})",
                )
            return {
                "type": "quniform",
                "min_value": expr.low,
                "max_value": expr.high,
                "q": expr.step,
            }
        if expr.log:
            return {
                "type": "loguniform",
                "min_value": math.log(expr.low),
                "max_value": math.log(expr.high),
            }
        return {"type": "uniform", "min_value": expr.low, "max_value": expr.high}
    if isinstance(expr, IntRange):
        if expr.log:
            # round(exp(U(ln(low-.5), ln(high+.5)))) is exactly Optuna's log-int draw.
            return {
                "type": "qloguniform",
                "min_value": math.log(expr.low - 0.5),
                "max_value": math.log(expr.high + 0.5),
                "q": 1,
            }
        values = list(range(expr.low, expr.high + 1, expr.step))
        if len(values) > _MAX_CHOICE_FOR_INT:
            raise SearchSpaceError(
                path,
                f"an int range of {len(values)} values has no exact Azure ML form; "
                f"use randint or quniform",
            )
        return {"type": "choice", "values": values}
    return expr.to_dict()


def _is_multiple(value: float, step: float) -> bool:
    k = value / step
    return math.isclose(k, round(k), abs_tol=1e-9)


def check_azure_compatible(config: SweepConfig) -> None:
    """Raises for what Azure ML would refuse or could not express; returns None otherwise."""
    sampling = config.sampling_algorithm
    if config.multi_objective:
        raise SearchSpaceError(
            "objective",
            f"Azure ML sweep jobs take one objective, this "
            f"file lists {len(config.goals)}; run it locally or on Ray",
        )
    if config.constraints:
        raise SearchSpaceError(
            "constraints",
            "Azure ML sweep jobs have no constraints; run this file locally or on Ray",
        )
    if sampling.type not in AZURE_SAMPLERS:
        raise SearchSpaceError(
            "sampling_algorithm",
            f"{sampling.type!r} runs locally only; Azure ML offers {', '.join(AZURE_SAMPLERS)}",
        )
    if sampling.seed is not None and sampling.type != "random":
        raise SearchSpaceError(
            "sampling_algorithm.seed", f"Azure ML's {sampling.type} sampling takes no seed"
        )
    policy = config.early_termination.type
    if policy != "none" and not POLICY_TABLE[policy].azure:
        raise SearchSpaceError(
            "early_termination.type",
            f"{policy!r} runs locally only; Azure ML offers {', '.join(AZURE_POLICIES)}",
        )
    for key, expr in config.search_space.items():
        form = expression_to_azure(expr, f"search_space.{key}")
        if sampling.type == "bayesian" and form["type"] not in BAYESIAN_EXPRESSIONS:
            raise SearchSpaceError(
                f"search_space.{key}",
                f"Azure ML's bayesian sampling accepts only "
                f"{', '.join(BAYESIAN_EXPRESSIONS)}, got {form['type']}",
            )
    if sampling.type == "bayesian" and policy != "none":
        raise SearchSpaceError(
            "early_termination",
            "Azure ML's bayesian sampling does not support early "
            "termination; use random sampling or drop the policy",
        )
    if config.early_termination.options.get("exclude_finished_jobs"):
        raise SearchSpaceError(
            "early_termination.exclude_finished_jobs",
            "Azure ML's v2 sweep jobs have no such "
            "setting (finished trials always count); it works locally only",
        )
    for key in ("timeout", "trial_timeout"):
        value = getattr(config.limits, key)
        if value is not None and value < MIN_TIMEOUT_S:
            # azure-ai-ml would quietly raise it to 60 s: a different sweep than the file says.
            raise SearchSpaceError(
                f"limits.{key}", f"Azure ML takes {MIN_TIMEOUT_S} seconds or more, got {value:g}"
            )
    if config.resources.gpus_per_trial not in (0, int(config.resources.gpus_per_trial)):
        raise SearchSpaceError(
            "resources.gpus_per_trial", "Azure ML gives each trial whole nodes, not GPU fractions"
        )


def to_azure_sweep(config: SweepConfig) -> dict[str, Any]:
    """The sweep part of an Azure ML v2 sweep job for ``config``.

    Example:
        >>> to_azure_sweep(config)["search_space"]["lr"]  # doctest: +SKIP
        {'type': 'loguniform', 'min_value': -9.2, 'max_value': -2.3}
    """
    check_azure_compatible(config)
    sampling: dict[str, Any] = {"type": config.sampling_algorithm.type}
    if config.sampling_algorithm.seed is not None:
        sampling["seed"] = config.sampling_algorithm.seed
    sampling.update(config.sampling_algorithm.options)
    out: dict[str, Any] = {
        "type": "sweep",
        "search_space": {
            k: expression_to_azure(e, f"search_space.{k}") for k, e in config.search_space.items()
        },
        "objective": {
            "primary_metric": config.objective.primary_metric,
            "goal": config.objective.goal,
        },
        "sampling_algorithm": sampling,
        "limits": {k: v for k, v in vars(config.limits).items() if v is not None},
    }
    if config.early_termination.type != "none":
        options = dict(config.early_termination.options)
        options.pop("exclude_finished_jobs", None)  # False here: v2's only behaviour
        out["early_termination"] = {"type": config.early_termination.type, **options}
    return out
