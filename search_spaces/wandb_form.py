"""Reads a Weights & Biases sweep config into our sweep file's mapping.

W&B's ``log_uniform`` takes exponents (like Azure's loguniform) while ``log_uniform_values``
takes values; both are kept exact. What has no equivalent (beta, inv_log_uniform, nested
parameters, a program to run) raises instead of being dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from search_spaces._errors import SearchSpaceError

_METHODS = {"grid": "grid", "random": "random", "bayes": "bayesian"}
# Keys that describe where W&B runs a sweep, not what it searches; they have no meaning here.
_METADATA_KEYS = {"project", "entity", "description"}


def from_wandb(config: Mapping[str, Any], *, trainer: Mapping[str, Any] | None = None
               ) -> dict[str, Any]:
    """Converts a W&B sweep config to a sweep-file mapping (feed it to ``parse_sweep``).

    Args:
        config: the W&B sweep config (``method``, ``metric``, ``parameters``, …).
        trainer: our ``trainer`` section, which replaces W&B's ``program`` / ``command``.

    Example:
        >>> from_wandb({"method": "random", "parameters": {"lr": {"min": 0.1, "max": 1.0}}})
        ... # doctest: +ELLIPSIS
        {'sampling_algorithm': 'random', 'search_space': {'lr': {'type': 'uniform', ...}}}
    """
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = key
        if key == "method":
            if value not in _METHODS:
                raise SearchSpaceError(path, f"{value!r} is not one of {', '.join(_METHODS)}")
            out["sampling_algorithm"] = _METHODS[value]
        elif key == "parameters":
            if not isinstance(value, Mapping) or not value:
                raise SearchSpaceError(path, "expected a non-empty mapping of parameters")
            out["search_space"] = {
                name: _parameter(spec, f"{path}.{name}") for name, spec in value.items()
            }
        elif key == "metric":
            if not isinstance(value, Mapping) or "name" not in value:
                raise SearchSpaceError(path, "expected a mapping with name and goal")
            out["objective"] = {"primary_metric": value["name"],
                                "goal": value.get("goal", "minimize")}
        elif key == "early_terminate":
            out["early_termination"] = _early_terminate(value, path)
        elif key == "run_cap":
            out["limits"] = {"max_total_trials": value}
        elif key == "name":
            out["name"] = value
        elif key in ("program", "command"):
            if trainer is None:
                raise SearchSpaceError(
                    path, "W&B's program has no meaning here; pass trainer=… to from_wandb"
                )
        elif key not in _METADATA_KEYS:
            raise SearchSpaceError(path, "has no equivalent in a sweep file")
    if trainer is not None:
        out["trainer"] = dict(trainer)
    return out


# Our key paths back to W&B's, so that a message about a converted file names the W&B key.
_WANDB_PATHS = (("search_space.", "parameters."), (".min_value", ".min"), (".max_value", ".max"),
                (".low", ".min"), (".high", ".max"), ("objective.primary_metric", "metric.name"),
                ("objective.goal", "metric.goal"), ("limits.max_total_trials", "run_cap"),
                ("sampling_algorithm", "method"), ("early_termination", "early_terminate"))


def wandb_path(path: str) -> str:
    """``search_space.lr.min_value`` -> ``parameters.lr.min``: where the problem is in W&B's
    own file."""
    for ours, theirs in _WANDB_PATHS:
        path = path.replace(ours, theirs)
    return path


def _parameter(spec: Any, path: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise SearchSpaceError(path, f"expected a mapping, got {spec!r}")
    if "parameters" in spec:
        raise SearchSpaceError(path, "nested parameters have no equivalent in a sweep file")
    dist = spec.get("distribution") or _infer(spec, path)
    if dist == "constant" or (dist is None and "value" in spec):
        return {"type": "choice", "values": [spec["value"]]}
    lo, hi, q = spec.get("min"), spec.get("max"), spec.get("q", 1)
    mu, sigma = spec.get("mu", 0.0), spec.get("sigma", 1.0)
    forms: dict[str, Any] = {
        "categorical": lambda: {"type": "choice", "values": list(spec["values"])},
        "int_uniform": lambda: {"type": "int", "low": lo, "high": hi},
        "uniform": lambda: {"type": "uniform", "min_value": lo, "max_value": hi},
        "q_uniform": lambda: {"type": "quniform", "min_value": lo, "max_value": hi, "q": q},
        "log_uniform": lambda: {"type": "loguniform", "min_value": lo, "max_value": hi},
        "log_uniform_values": lambda: {"type": "float", "low": lo, "high": hi, "log": True},
        "q_log_uniform": lambda: {"type": "qloguniform", "min_value": lo, "max_value": hi,
                                  "q": q},
        "q_log_uniform_values": lambda: {"type": "qloguniform", "min_value": _ln(lo, path),
                                         "max_value": _ln(hi, path), "q": q},
        "normal": lambda: {"type": "normal", "mu": mu, "sigma": sigma},
        "q_normal": lambda: {"type": "qnormal", "mu": mu, "sigma": sigma, "q": q},
        "log_normal": lambda: {"type": "lognormal", "mu": mu, "sigma": sigma},
        "q_log_normal": lambda: {"type": "qlognormal", "mu": mu, "sigma": sigma, "q": q},
    }
    if dist not in forms:
        raise SearchSpaceError(f"{path}.distribution", f"{dist!r} has no equivalent here")
    return dict(forms[dist]())


def _infer(spec: Mapping[str, Any], path: str) -> str | None:
    if "values" in spec:
        return "categorical"
    if "value" in spec:
        return "constant"
    lo, hi = spec.get("min"), spec.get("max")
    if lo is None or hi is None:
        raise SearchSpaceError(path, "needs values, value, or min and max")
    if isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool):
        return "int_uniform"
    return "uniform"


def _ln(value: Any, path: str) -> float:
    if not isinstance(value, int | float) or value <= 0:
        raise SearchSpaceError(path, f"log values must be greater than 0, got {value!r}")
    return math.log(value)


def _early_terminate(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or value.get("type") != "hyperband":
        raise SearchSpaceError(path, "only W&B's hyperband early termination has an equivalent")
    extra = set(value) - {"type", "min_iter", "max_iter", "eta", "s"}
    if extra:
        raise SearchSpaceError(
            f"{path}.{sorted(extra)[0]}", "has no equivalent in Optuna's hyperband pruner"
        )
    eta = value.get("eta", 3)
    out: dict[str, Any] = {"type": "hyperband", "reduction_factor": eta}
    if "min_iter" in value:
        out["min_resource"] = value["min_iter"]
    elif "s" in value:
        # W&B's documented form: s brackets below max_iter, i.e. min_iter = max_iter / eta**s.
        if "max_iter" not in value:
            raise SearchSpaceError(f"{path}.s", "needs max_iter beside it (W&B's hyperband)")
        out["min_resource"] = max(1, int(value["max_iter"] // eta ** value["s"]))
    if "max_iter" in value:
        out["max_resource"] = value["max_iter"]
    return out
