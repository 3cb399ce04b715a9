"""The sections every sweep file shares (ours and Azure ML's): objective, sampling,
early termination, limits, resources, compute, storage, register; each checked on its own."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from search_spaces import _checks as c
from search_spaces._errors import SearchSpaceError, abbreviate
from search_spaces.config import (
    CheckpointPolicy,
    EarlyTermination,
    Keep,
    Limits,
    Objective,
    Register,
    Resources,
    SamplingAlgorithm,
    WarmStart,
)
from search_spaces.expressions import (
    Choice,
)
from search_spaces.objectives import parse_constraints
from search_spaces.policies import TABLE as POLICY_TABLE
from search_spaces.policies import field_kinds
from search_spaces.samplers import TABLE as SAMPLER_TABLE
from search_spaces.samplers import setting_names
from search_spaces.space_reader import parse_search_space
from search_spaces.storage_url import check_storage

# Names that become folder names (the sweep, a registered model): no separators, no "..", no
# control characters. \Z, not $: "$" also matches before a trailing newline.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")

SHARED_KEYS = frozenset({"storage", "register", "keep", "checkpoint", "warm_start", "tracking"})
"""Our sections that an Azure ML job file may carry too (Azure ML knows none of them)."""

_COMPUTE = re.compile(r"^(local|ray://[^\s/]+|ray:[^\s/]+|azure:[A-Za-z][A-Za-z0-9-]{1,31})$")


def sweep_name(data: Mapping[str, Any], default_name: str) -> str:
    name = c.string(data, "name", "", default_name)
    if not SAFE_NAME.match(name):
        raise SearchSpaceError(
            "name", f"{name!r} must be letters, digits, '.', '_' or '-' (it becomes a folder name)"
        )
    return name


def sweep_sections(data: Mapping[str, Any], problems: c.Problems, *, azure: bool) -> dict[str, Any]:
    """The sections ours and Azure's files share, each checked on its own so that every
    problem is reported: search_space, objective, sampling, early termination, limits,
    storage, register."""
    out: dict[str, Any] = {}
    sampling = SamplingAlgorithm()
    with problems.check():
        sampling = _sampling(data.get("sampling_algorithm", "random"))
        out["sampling_algorithm"] = dataclasses.replace(
            sampling, options={k: v for k, v in sampling.options.items() if k != "logbase"}
        )
    if "search_space" not in data:
        problems.errors.append(SearchSpaceError("search_space", "is required"))
    else:
        logbase = sampling.options.get("logbase", "e")
        space = parse_search_space(data["search_space"], problems, logbase=logbase)
        out["search_space"] = space
        if sampling.type == "grid":
            for key, expr in space.items():
                if not isinstance(expr, Choice):
                    problems.errors.append(
                        SearchSpaceError(
                            f"search_space.{key}",
                            f"grid sampling needs choice expressions only, got {expr.type}",
                        )
                    )
    if azure and "objective" not in data:
        problems.errors.append(
            SearchSpaceError(
                "objective", "is required in an Azure ML sweep job (primary_metric and goal)"
            )
        )
    readers = {
        "objectives": lambda: _objectives(data.get("objective", {}), azure=azure),
        "constraints": lambda: parse_constraints(data.get("constraints")),
        "early_termination": lambda: parse_early_termination(data.get("early_termination")),
        "limits": lambda: _limits(data.get("limits", {})),
        "storage": lambda: check_storage(data.get("storage", "default")),
        "register": lambda: _register(data.get("register")),
        "keep": lambda: _keep(data.get("keep")),
        "checkpoint": lambda: _checkpoint(data.get("checkpoint")),
        "warm_start": lambda: _warm_start(data.get("warm_start")),
        "tracking_uri": lambda: _tracking(data.get("tracking")),
    }
    for key, read in readers.items():
        with problems.check():
            out[key] = read()
    objectives = out.pop("objectives", ())
    if objectives:
        out["objective"] = objectives[0]
        if len(objectives) > 1:
            out["objectives"] = objectives
            _check_several(objectives, sampling, out, problems)
    if out.get("warm_start") is not None:
        _check_warm_start(sampling, problems)
    if sampling.type == "pbt" and out.get("early_termination", EarlyTermination()).type != "none":
        problems.errors.append(
            SearchSpaceError(
                "early_termination",
                "PBT replaces its weakest members itself (exploit and "
                "explore); drop early_termination from a sweep with sampling_algorithm: pbt",
            )
        )
    return out


def _objectives(value: Any, *, azure: bool) -> tuple[Objective, ...]:
    """One objective (a mapping, as Azure ML writes it) or several (a list of them)."""
    if not isinstance(value, list):
        return (_objective(value, "objective"),)
    if azure:
        raise SearchSpaceError(
            "objective",
            "an Azure ML sweep job takes one objective (a "
            "mapping); several objectives are a sweep file of ours",
        )
    if not value:
        raise SearchSpaceError("objective", "expected at least one {primary_metric, goal}")
    found = tuple(_objective(v, f"objective[{i}]") for i, v in enumerate(value))
    names = [o.primary_metric for o in found]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise SearchSpaceError(f"objective[{i}].primary_metric", f"{name!r} is listed twice")
    return found


def _objective(value: Any, path: str) -> Objective:
    d = c.mapping(value, path)
    c.no_unknown_keys(d, path, {"primary_metric", "goal"})
    metric = c.string(d, "primary_metric", path, "best_val_acc")
    goal = c.string(d, "goal", path, "maximize")
    c.one_of(goal, ("maximize", "minimize"), f"{path}.goal")
    return Objective(metric, goal)


# Optuna's samplers that take several objectives; cmaes and pbt take one.
SEVERAL_OBJECTIVES = ("random", "grid", "bayesian", "tpe", "gp", "qmc", "nsga2")


def _check_several(
    objectives: tuple[Objective, ...],
    sampling: SamplingAlgorithm,
    out: dict[str, Any],
    problems: c.Problems,
) -> None:
    if sampling.type not in SEVERAL_OBJECTIVES:
        problems.errors.append(
            SearchSpaceError(
                "sampling_algorithm",
                f"{sampling.type} takes one objective; with "
                f"{len(objectives)} use one of {', '.join(SEVERAL_OBJECTIVES)}",
            )
        )
    policy = out.get("early_termination", EarlyTermination())
    # These rank the trials by Pareto front, constraints included (sweep.scheduling.pareto):
    # at rungs (asha, hyperband; stopping or promotion) or at each evaluation interval
    # (median_stopping keeps the better half, truncation_selection all but its percentage).
    # The others judge one value against a number (a slack, a forecast, a median of values).
    if policy.type not in ("none", *BY_PARETO_RANK):
        problems.errors.append(
            SearchSpaceError(
                "early_termination",
                f"{policy.type} judges one per-epoch value; with several objectives use "
                f"one of {', '.join(BY_PARETO_RANK)} (trials ranked by Pareto front) or none",
            )
        )


BY_PARETO_RANK = ("asha", "hyperband", "median_stopping", "truncation_selection")
"""The early-termination policies that take several objectives."""


def _sampling(value: Any) -> SamplingAlgorithm:
    path = "sampling_algorithm"
    if isinstance(value, str):
        value = {"type": value}
    d = c.mapping(value, path)
    kind = c.one_of(c.string(d, "type", path), tuple(SAMPLER_TABLE), f"{path}.type")
    cls = SAMPLER_TABLE[kind]
    c.no_unknown_keys(d, path, setting_names(cls) | {"type"})
    sampler = cls(**{k: v for k, v in d.items() if k != "type" and v is not None})
    return SamplingAlgorithm(kind, sampler.seed, sampler.options())


def parse_early_termination(value: Any) -> EarlyTermination:
    """A sweep file's ``early_termination`` (a type, or a mapping), checked key by key."""
    path = "early_termination"
    if value is None:
        return EarlyTermination()
    if isinstance(value, str):
        value = {"type": value}
    d = c.mapping(value, path)
    kind = c.one_of(c.string(d, "type", path), tuple(POLICY_TABLE), f"{path}.type")
    cls = POLICY_TABLE[kind]
    kinds = field_kinds(cls)
    c.no_unknown_keys(d, path, set(kinds) | {"type"})
    given: dict[str, Any] = {}
    for key, of in kinds.items():
        if d.get(key) is None:
            continue
        given[key] = (
            c.integer(d, key, path)
            if of == "int"
            else c.boolean(d, key, path, False)
            if of == "bool"
            else c.string(d, key, path)
            if of == "str"
            else c.number(d, key, path)
        )
    return EarlyTermination(kind, cls(**given).options())


def _limits(value: Any) -> Limits:
    path = "limits"
    d = c.mapping(value, path)
    c.no_unknown_keys(
        d, path, {"max_total_trials", "max_concurrent_trials", "timeout", "trial_timeout"}
    )
    total = c.integer(d, "max_total_trials", path, 20)
    c.positive(total, f"{path}.max_total_trials")
    concurrent = c.optional_integer(d, "max_concurrent_trials", path)
    if concurrent is not None:
        c.positive(concurrent, f"{path}.max_concurrent_trials")
    timeout = c.optional_number(d, "timeout", path)
    trial_timeout = c.optional_number(d, "trial_timeout", path)
    for key, v in (("timeout", timeout), ("trial_timeout", trial_timeout)):
        if v is not None:
            c.positive(v, f"{path}.{key}")
    return Limits(total, concurrent, timeout, trial_timeout)


def parse_resources(value: Any, path: str = "resources") -> Resources:
    d = c.mapping(value, path)
    c.no_unknown_keys(
        d, path, {"cpus_per_trial", "gpus_per_trial", "workers_per_trial", "distribution"}
    )
    cpus = c.number(d, "cpus_per_trial", path, 1.0)
    c.positive(cpus, f"{path}.cpus_per_trial")
    gpus = c.number(d, "gpus_per_trial", path, 0.0)
    c.positive(gpus, f"{path}.gpus_per_trial", allow_zero=True)
    if gpus > 1 and gpus != int(gpus):
        raise SearchSpaceError(
            f"{path}.gpus_per_trial", f"above 1 must be a whole number of GPUs, got {gpus}"
        )
    workers = c.integer(d, "workers_per_trial", path, 1)
    c.positive(workers, f"{path}.workers_per_trial")
    dist = c.one_of(
        c.string(d, "distribution", path, "ddp"), ("ddp", "horovod"), f"{path}.distribution"
    )
    return Resources(float(cpus), float(gpus), workers, dist)


def parse_compute(value: Any, path: str = "compute") -> str:
    """Where the sweep runs; Azure's own spelling ``azureml:NAME`` means ``azure:NAME``."""
    if isinstance(value, str) and value.startswith("azureml:"):
        value = "azure:" + value.removeprefix("azureml:")
    if not isinstance(value, str) or not _COMPUTE.match(value):
        raise SearchSpaceError(
            path,
            f"{value!r} must be local, ray://HOST:PORT, ray:HOST:PORT, azure:CLUSTER "
            "or azureml:CLUSTER",
        )
    return value


def _keep(value: Any) -> Keep:
    if value is None:
        return Keep()
    d = c.mapping(value, "keep")
    c.no_unknown_keys(d, "keep", {"models", "checkpoints", "max_checkpoint_bytes"})
    checkpoints = c.one_of(
        c.string(d, "checkpoints", "keep", Keep.checkpoints),
        ("latest", "all", "none"),
        "keep.checkpoints",
    )
    max_bytes = _bytes(
        d.get("max_checkpoint_bytes", Keep.max_checkpoint_bytes), "keep.max_checkpoint_bytes"
    )
    models = d.get("models", Keep.models)
    if models == "all":
        return Keep(None, checkpoints, max_bytes)
    if isinstance(models, bool) or not isinstance(models, int) or models < 1:
        raise SearchSpaceError(
            "keep.models",
            f"expected a number of trials (1 or more: the "
            f"best is copied to best/ at the end) or 'all', got "
            f"{abbreviate(models)}",
        )
    return Keep(models, checkpoints, max_bytes)


def _checkpoint(value: Any) -> CheckpointPolicy:
    if value is None:
        return CheckpointPolicy()
    d = c.mapping(value, "checkpoint")
    c.no_unknown_keys(d, "checkpoint", {"every", "interval"})
    every = d.get("every", CheckpointPolicy.every)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise SearchSpaceError(
            "checkpoint.every",
            f"expected a whole number of epochs, 1 or more, got {abbreviate(every)}",
        )
    interval = d.get("interval")
    return CheckpointPolicy(
        every, None if interval is None else _seconds(interval, "checkpoint.interval")
    )


WARM_SAMPLERS = ("bayesian", "tpe", "gp")
"""The samplers that take earlier trials as their history (CMA-ES and NSGA-II keep their own
generations in the study, which imported trials do not have)."""


def _warm_start(value: Any) -> WarmStart | None:
    if value is None:
        return None
    d = c.mapping(value, "warm_start")
    c.no_unknown_keys(d, "warm_start", {"from", "trials"})
    names = d.get("from")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names:
        raise SearchSpaceError(
            "warm_start.from", f"expected the names of earlier sweeps, got {abbreviate(names)}"
        )
    if "auto" in names and len(names) > 1:
        raise SearchSpaceError(
            "warm_start.from", "auto finds the earlier sweeps itself: give auto alone, or names"
        )
    for i, name in enumerate(names):
        if not isinstance(name, str) or not SAFE_NAME.match(name):
            raise SearchSpaceError(
                f"warm_start.from[{i}]", f"{abbreviate(name)} is not a sweep name"
            )
    trials = d.get("trials", "all")
    best = None
    if trials != "all":
        match = re.fullmatch(r"best:(\d+)", trials) if isinstance(trials, str) else None
        if match is None or int(match.group(1)) < 1:
            raise SearchSpaceError(
                "warm_start.trials",
                f"expected all or best:K (K of each sweep's best trials), got {abbreviate(trials)}",
            )
        best = int(match.group(1))
    return WarmStart(tuple(dict.fromkeys(names)), best)


def _check_warm_start(sampling: SamplingAlgorithm, problems: c.Problems) -> None:
    if sampling.type not in WARM_SAMPLERS:
        learns = sampling.type in ("cmaes", "nsga2")
        problems.errors.append(
            SearchSpaceError(
                "warm_start",
                f"{sampling.type} sampling "
                + (
                    "keeps its own generations and cannot take earlier trials yet"
                    if learns
                    else "learns nothing from earlier trials"
                )
                + "; use sampling_algorithm: "
                + ", ".join(WARM_SAMPLERS[:-1])
                + f" or {WARM_SAMPLERS[-1]}",
            )
        )


_SECONDS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}


def _seconds(value: Any, path: str) -> float:
    """A duration: seconds, or a number with a unit (``90s``, ``10m``, ``2h``)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf:
        return float(value)
    match = (
        re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        if isinstance(value, str)
        else None
    )
    if match and match.group(2).lower() in _SECONDS and float(match.group(1)) > 0:
        return float(match.group(1)) * _SECONDS[match.group(2).lower()]
    raise SearchSpaceError(
        path,
        f"expected a duration (seconds, or with a unit: 90s, 10m, 2h), got {abbreviate(value)}",
    )


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def _bytes(value: Any, path: str) -> int:
    """A size: a whole number of bytes, or a number with a unit (``512MB``, ``2GiB``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = (
        re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        if isinstance(value, str)
        else None
    )
    if match and match.group(2).lower() in _UNITS and float(match.group(1)) > 0:
        return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    raise SearchSpaceError(
        path,
        f"expected a size in bytes (a whole number, or with a unit "
        f"such as 512MB or 2GiB), got {abbreviate(value)}",
    )


def _tracking(value: Any) -> str | None:
    if value is None:
        return None
    d = c.mapping(value, "tracking")
    c.no_unknown_keys(d, "tracking", {"mlflow"})
    uri = c.string(d, "mlflow", "tracking")
    if "://" not in uri and not uri.startswith(("databricks", "azureml")):
        raise SearchSpaceError(
            "tracking.mlflow",
            f"{uri!r} is not a tracking URI; expected "
            "http://HOST:PORT, file:///PATH or an Azure ML workspace's "
            "azureml://… URI",
        )
    if "@" in uri.partition("://")[2].split("/")[0]:
        raise SearchSpaceError(
            "tracking.mlflow",
            "holds credentials; MLflow reads them from "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or "
            "MLFLOW_TRACKING_TOKEN) in the environment",
        )
    return uri


def _register(value: Any) -> Register | None:
    if value is None:
        return None
    d = c.mapping(value, "register")
    c.no_unknown_keys(d, "register", {"model_name", "root"})
    name = c.string(d, "model_name", "register")
    if not SAFE_NAME.match(name):
        raise SearchSpaceError(
            "register.model_name", f"{name!r} must be letters, digits, '.', '_' or '-'"
        )
    root = d.get("root")
    if root is not None:
        root = c.string(d, "root", "register")
    return Register(name, root)


__all__ = ["SAFE_NAME", "parse_compute", "parse_resources", "sweep_name", "sweep_sections"]
