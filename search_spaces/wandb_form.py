"""Reads a Weights & Biases sweep config into our sweep file's mapping.

W&B's ``log_uniform`` takes exponents (like Azure's loguniform) while ``log_uniform_values``
takes values; both are kept exact. So are the ``inv_log_uniform`` forms: W&B draws
``X = exp(-U)`` with ``U`` uniform between ``min`` and ``max`` (the ``_values`` form: between
``log(1/max)`` and ``log(1/min)``), and the reciprocal of a log-uniform value is log-uniform,
so they are log-uniform from ``exp(-max)`` to ``exp(-min)`` (from ``min`` to ``max``). What
has no equivalent (beta, a program to run) raises instead of being dropped. Nested
parameters become a choice of one nested space: the trainer gets the same mapping W&B's run
config holds.

A W&B Launch sweep config (``job:`` and ``scheduler:``) is read the same way: the training
``job`` is replaced by our trainer, as ``program`` is; ``scheduler.num_workers`` is the
parallel trials; the Optuna scheduler's ``settings.sampler``/``settings.pruner`` (Optuna
class names and their arguments, as W&B's ``optuna_scheduler.py`` builds them) map onto our
sampling algorithms and policies where they mean the same, and are refused, naming W&B
Launch, where they do not. Where the scheduler runs (``job``, ``resource``,
``docker_image``, the ``launch`` block) has no meaning here; ``resource_args.env`` (the
variables passed to runs) becomes ``trainer.env``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any, TypeGuard

from search_spaces._errors import SearchSpaceError

_METHODS = {"grid": "grid", "random": "random", "bayes": "bayesian"}
# Keys that describe where W&B runs a sweep, not what it searches; they have no meaning here.
_METADATA_KEYS = {"project", "entity", "description", "launch"}
_LAUNCH = "W&B Launch's"


def from_wandb(
    config: Mapping[str, Any], *, trainer: Mapping[str, Any] | None = None
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
            if "target" in value:
                raise SearchSpaceError(
                    f"{path}.target",
                    "W&B stops starting runs once one reaches it; a sweep here runs its "
                    "budget: remove target and set run_cap",
                )
            out["objective"] = {
                "primary_metric": value["name"],
                "goal": value.get("goal", "minimize"),
            }
        elif key == "early_terminate":
            out["early_termination"] = _early_terminate(value, path)
        elif key == "run_cap":
            out["limits"] = {"max_total_trials": value}
        elif key == "name":
            out["name"] = value
        elif key == "scheduler":
            out.update(_launch_scheduler(value, path, method="method" in config))
        elif key in ("program", "command", "job"):
            if trainer is None:
                raise SearchSpaceError(
                    path,
                    f"W&B runs {_what_it_runs(value, key)} itself; here the trials run a "
                    "Python function: give it with --trainer package.module:function (a "
                    "trainer: section, or trainer= to from_wandb)",
                )
        elif key not in _METADATA_KEYS:
            raise SearchSpaceError(path, "has no equivalent in a sweep file")
    if config.get("method") == "grid" and isinstance(config.get("parameters"), Mapping):
        out["search_space"] = {
            name: _grid_parameter(spec, f"parameters.{name}")
            for name, spec in config["parameters"].items()
        }
    if trainer is not None:
        out["trainer"] = {
            **dict(trainer),
            **({"env": out.pop("trainer_env")} if "trainer_env" in out else {}),
        }
    out.pop("trainer_env", None)
    if "search_space" not in out and "scheduler" in config:
        raise SearchSpaceError(
            "parameters",
            f"is required: {_LAUNCH} optuna_source (a Python "
            "search space) has no equivalent here; list the parameters",
        )
    if "max_concurrent_trials" in out:
        out["limits"] = {
            **out.get("limits", {}),
            "max_concurrent_trials": out.pop("max_concurrent_trials"),
        }
    return out


def _what_it_runs(value: Any, key: str) -> str:
    if key == "program" and isinstance(value, str) and len(value) <= 80 and value.isprintable():
        return value
    return f"its {key}"


# W&B Launch's Optuna scheduler: Optuna's classes by name -> ours, with the arguments each
# takes and what they become (None: accepted only at Optuna's default, given beside it).
_SAMPLERS = {
    "TPESampler": "tpe",
    "RandomSampler": "random",
    "CmaEsSampler": "cmaes",
    "QMCSampler": "qmc",
    "GridSampler": "grid",
}
_PRUNERS: dict[str, tuple[str, dict[str, tuple[str, Any] | None]]] = {
    "NopPruner": ("none", {}),
    "MedianPruner": (
        "median",
        {
            "n_startup_trials": ("n_startup_trials", None),
            "n_warmup_steps": ("n_warmup_steps", None),
            "interval_steps": ("interval_steps", None),
            "n_min_trials": None,
        },
    ),
    "PercentilePruner": (
        "percentile",
        {
            "percentile": ("percentile", None),
            "n_startup_trials": ("n_startup_trials", None),
            "n_warmup_steps": ("n_warmup_steps", None),
            "interval_steps": ("interval_steps", None),
            "n_min_trials": None,
        },
    ),
    "SuccessiveHalvingPruner": (
        "asha",
        {
            "min_resource": ("min_resource", "auto"),
            "reduction_factor": ("reduction_factor", None),
            "min_early_stopping_rate": ("min_early_stopping_rate", None),
            "bootstrap_count": None,
        },
    ),
    "HyperbandPruner": (
        "hyperband",
        {
            "min_resource": ("min_resource", None),
            "max_resource": ("max_resource", "auto"),
            "reduction_factor": ("reduction_factor", None),
            "bootstrap_count": None,
        },
    ),
}
# Optuna's defaults for the arguments accepted only at them.
_DEFAULT_ONLY = {"n_min_trials": 1, "bootstrap_count": 0}


def _launch_scheduler(value: Any, path: str, *, method: bool) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SearchSpaceError(path, f"expected {_LAUNCH} scheduler mapping, got {value!r}")
    out: dict[str, Any] = {}
    known = {"job", "resource", "docker_image", "num_workers", "resource_args", "settings"}
    for key in value:
        if key not in known:
            raise SearchSpaceError(
                f"{path}.{key}",
                f"has no equivalent here ({_LAUNCH} "
                "scheduler settings that map: num_workers, settings."
                "sampler, settings.pruner, settings.method)",
            )
    if "num_workers" in value:
        out["max_concurrent_trials"] = value["num_workers"]
    env = (
        (value.get("resource_args") or {}).get("env")
        if isinstance(value.get("resource_args"), Mapping)
        else None
    )
    if env:
        if not isinstance(env, list) or not all(isinstance(n, str) for n in env):
            raise SearchSpaceError(
                f"{path}.resource_args.env",
                "expected a list of variable names (passed to each run from this environment)",
            )
        out["trainer_env"] = {name: f"${{{name}}}" for name in env}
    settings = value.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise SearchSpaceError(f"{path}.settings", f"expected a mapping, got {settings!r}")
    for key in settings:
        if key not in ("sampler", "pruner", "method"):
            raise SearchSpaceError(
                f"{path}.settings.{key}",
                f"{_LAUNCH} {key} has no "
                "equivalent here (a Python file or artifact of Optuna "
                "objects); write the sampler and pruner as settings",
            )
    if "method" in settings:  # W&B's own scheduler, run as a job
        if settings["method"] not in _METHODS:
            raise SearchSpaceError(
                f"{path}.settings.method",
                f"{settings['method']!r} is not one of {', '.join(_METHODS)}",
            )
        out["sampling_algorithm"] = _METHODS[settings["method"]]
        return out
    optuna = (
        "sampler" in settings
        or "pruner" in settings
        or "optuna" in str(value.get("job", "")).lower()
    )
    if not optuna:
        if not method:
            raise SearchSpaceError(
                "method",
                f"is required: {_LAUNCH} standard scheduler samples with the config's method",
            )
        return out
    # The Optuna scheduler: TPE and Optuna's default MedianPruner unless told otherwise.
    out["sampling_algorithm"] = _sampler(
        settings.get("sampler") or {"type": "TPESampler"}, f"{path}.settings.sampler"
    )
    out["early_termination"] = _pruner(
        settings.get("pruner") or {"type": "MedianPruner"}, f"{path}.settings.pruner"
    )
    return out


def _class_and_args(value: Any, path: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        raise SearchSpaceError(path, "expected type: an Optuna class name, and its args")
    args = value.get("args") or {}
    if not isinstance(args, Mapping):
        raise SearchSpaceError(f"{path}.args", f"expected a mapping, got {args!r}")
    return value["type"], dict(args)


def _sampler(value: Any, path: str) -> dict[str, Any]:
    kind, args = _class_and_args(value, path)
    if kind not in _SAMPLERS:
        raise SearchSpaceError(
            f"{path}.type",
            f"{_LAUNCH} {kind} has no equivalent here (those that map: {', '.join(_SAMPLERS)})",
        )
    extra = sorted(set(args) - {"seed"})
    if extra:
        raise SearchSpaceError(
            f"{path}.args.{extra[0]}",
            f"{_LAUNCH} {kind} {extra[0]} has "
            "no equivalent here (only seed maps; our "
            f"{_SAMPLERS[kind]} sets the rest itself)",
        )
    return {"type": _SAMPLERS[kind], **({"seed": args["seed"]} if "seed" in args else {})}


def _pruner(value: Any, path: str) -> dict[str, Any]:
    kind, args = _class_and_args(value, path)
    if kind not in _PRUNERS:
        raise SearchSpaceError(
            f"{path}.type",
            f"{_LAUNCH} {kind} has no equivalent here (those that map: {', '.join(_PRUNERS)})",
        )
    ours, table = _PRUNERS[kind]
    out: dict[str, Any] = {"type": ours}
    for name, given in args.items():
        if name not in table:
            raise SearchSpaceError(f"{path}.args.{name}", f"is not an argument of Optuna's {kind}")
        target = table[name]
        if target is None:
            if given != _DEFAULT_ONLY[name]:
                raise SearchSpaceError(
                    f"{path}.args.{name}",
                    f"{_LAUNCH} {kind} {name} other "
                    f"than Optuna's default ({_DEFAULT_ONLY[name]}) has no "
                    "equivalent here",
                )
            continue
        ours_name, skip = target
        if given != skip:  # 'auto': our own default does the same
            out[ours_name] = given
    return out


# Our key paths back to W&B's, so that a message about a converted file names the W&B key.
_WANDB_PATHS = (
    ("search_space.", "parameters."),
    (".min_value", ".min"),
    (".max_value", ".max"),
    (".low", ".min"),
    (".high", ".max"),
    ("objective.primary_metric", "metric.name"),
    ("objective.goal", "metric.goal"),
    ("limits.max_total_trials", "run_cap"),
    ("limits.max_concurrent_trials", "scheduler.num_workers"),
    ("sampling_algorithm", "method"),
    ("early_termination", "early_terminate"),
)


def wandb_path(path: str) -> str:
    """``search_space.lr.min_value`` -> ``parameters.lr.min``: where the problem is in W&B's
    own file (a nested parameter's ``values[0].name`` is its ``parameters.name``)."""
    for ours, theirs in _WANDB_PATHS:
        path = path.replace(ours, theirs)
    return path.replace(".values[0].", ".parameters.")


def _parameter(spec: Any, path: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise SearchSpaceError(path, f"expected a mapping, got {spec!r}")
    if "parameters" in spec:
        return _nested(spec, path, _parameter)
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
        "inv_log_uniform": lambda: {
            "type": "loguniform",
            "min_value": -_exponent(hi, f"{path}.max"),
            "max_value": -_exponent(lo, f"{path}.min"),
        },
        "inv_log_uniform_values": lambda: {"type": "float", "low": lo, "high": hi, "log": True},
        "q_log_uniform": lambda: {"type": "qloguniform", "min_value": lo, "max_value": hi, "q": q},
        "q_log_uniform_values": lambda: {
            "type": "qloguniform",
            "min_value": _ln(lo, path),
            "max_value": _ln(hi, path),
            "q": q,
        },
        "normal": lambda: {"type": "normal", "mu": mu, "sigma": sigma},
        "q_normal": lambda: {"type": "qnormal", "mu": mu, "sigma": sigma, "q": q},
        "log_normal": lambda: {"type": "lognormal", "mu": mu, "sigma": sigma},
        "q_log_normal": lambda: {"type": "qlognormal", "mu": mu, "sigma": sigma, "q": q},
    }
    if dist not in forms:
        raise SearchSpaceError(f"{path}.distribution", f"{dist!r} has no equivalent here")
    _only_keys_of(spec, dist, path)
    return dict(forms[dist]())


def _only_keys_of(spec: Mapping[str, Any], dist: str, path: str) -> None:
    """Anything in a parameter its distribution does not read would be dropped: refused (a
    conversion is exact or raises). A categorical reads ``values``, the normal family ``mu``
    and ``sigma``, the others ``min`` and ``max``; a ``q_`` form ``q`` as well."""
    reads = (
        {"values"}
        if dist == "categorical"
        else {"mu", "sigma"}
        if dist.endswith("normal")
        else {"min", "max"}
    ) | ({"q"} if dist.startswith("q_") else set())
    extra = sorted(str(k) for k in set(spec) - reads - {"distribution"})
    if not extra:
        return
    if extra[0] == "probabilities":
        raise SearchSpaceError(
            f"{path}.probabilities",
            "W&B draws the values with these weights; a choice here draws them evenly: "
            "remove probabilities (or repeat a value to weigh it)",
        )
    raise SearchSpaceError(f"{path}.{extra[0]}", f"has no meaning for {dist} here")


def _nested(spec: Mapping[str, Any], path: str, each: Any) -> dict[str, Any]:
    """W&B's nested parameters (``optimizer: {parameters: {name: ..., momentum: ...}}``;
    the run's config gets ``optimizer`` as a mapping): a choice of one nested space, which
    gives the trainer the same mapping, each value sampled as its own parameter."""
    inner = spec["parameters"]
    if not isinstance(inner, Mapping) or not inner:
        raise SearchSpaceError(f"{path}.parameters", "expected a non-empty mapping of parameters")
    beside = sorted(k for k in spec if k != "parameters")
    if beside:
        raise SearchSpaceError(
            f"{path}.{beside[0]}", "has no meaning beside nested parameters here"
        )
    space = {name: each(sub, f"{path}.parameters.{name}") for name, sub in inner.items()}
    return {"type": "choice", "values": [space]}


def _grid_parameter(spec: Any, path: str) -> dict[str, Any]:
    """A parameter under ``method: grid``: W&B's ranges enumerated (``_grid_values``); nested
    parameters a choice of every combination of theirs, as W&B's grid takes each."""
    if isinstance(spec, Mapping) and "parameters" in spec:
        space = _nested(spec, path, _grid_parameter)["values"][0]
        for name, expr in space.items():
            if expr.get("type") != "choice":
                raise SearchSpaceError(
                    f"{path}.parameters.{name}",
                    "grid sampling needs values (or an int_uniform or q_uniform range) here",
                )
        names = list(space)
        # Counted before made: ten nested ranges of 100 values are 10**20 points.
        _at_most_grid_points(math.prod(len(space[n]["values"]) for n in names), path)
        combos = itertools.product(*(space[n]["values"] for n in names))
        points = [dict(zip(names, combo, strict=True)) for combo in combos]
        return {"type": "choice", "values": points}
    values = _grid_values(spec, path)
    return {"type": "choice", "values": values} if values is not None else _parameter(spec, path)


def _grid_values(spec: Mapping[str, Any], path: str) -> list[Any] | None:
    """W&B's grid enumerates its ranges (``grid_search.py`` in wandb/sweeps): ``int_uniform``
    is every integer from min to max, both included; ``q_uniform`` is numpy's
    ``arange(min, max, q)``, the upper end left out. None for any other distribution (it is
    a choice already, or refused by the grid)."""
    dist = spec.get("distribution") or _infer(spec, path)
    lo, hi, q = spec.get("min"), spec.get("max"), spec.get("q", 1)
    if dist == "int_uniform":
        if not _whole(lo) or not _whole(hi):
            raise SearchSpaceError(
                path, f"int_uniform needs integer min and max, got {lo!r}, {hi!r}"
            )
        _at_most_grid_points(hi - lo + 1, path)
        return list(range(lo, hi + 1))
    if dist == "q_uniform":
        if not _number(lo) or not _number(hi) or not _number(q):
            raise SearchSpaceError(
                path, f"q_uniform needs numbers min, max and q, got {lo!r}, {hi!r}, {q!r}"
            )
        if q <= 0:
            raise SearchSpaceError(f"{path}.q", f"must be greater than 0, got {q!r}")
        _at_most_grid_points(math.ceil((hi - lo) / q), path)
        import numpy as np

        values = np.arange(lo, hi, q).tolist()
        if not values:
            raise SearchSpaceError(path, f"q_uniform from {lo!r} to {hi!r} holds no grid point")
        return list(values)
    return None


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


MAX_GRID_POINTS = 100_000
"""Per parameter: a range past it is a mistake (and would fill memory), not a grid."""


def _at_most_grid_points(count: float, path: str) -> None:
    if count > MAX_GRID_POINTS:
        raise SearchSpaceError(
            path,
            f"makes {count:.3g} grid points; at most {MAX_GRID_POINTS:,} (raise q or narrow it)",
        )


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


def _exponent(value: Any, path: str) -> float:
    if not _number(value):
        raise SearchSpaceError(path, f"expected a number, got {value!r}")
    return float(value)


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
        # With min_iter, W&B's own hyperband_stop_runs reads no s (its bands run on by eta).
        out["min_resource"] = value["min_iter"]
    elif "s" in value:
        # W&B's documented form: s brackets below max_iter, i.e. min_iter = max_iter / eta**s.
        if "max_iter" not in value:
            raise SearchSpaceError(f"{path}.s", "needs max_iter beside it (W&B's hyperband)")
        out["min_resource"] = max(1, int(value["max_iter"] // eta ** value["s"]))
    if "max_iter" in value:
        out["max_resource"] = value["max_iter"]
    return out
