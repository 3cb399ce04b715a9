"""Reads a sweep file into a :class:`SweepConfig`, checking every key before anything runs."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from search_spaces import _checks as c
from search_spaces._errors import SearchSpaceError
from search_spaces.config import (
    BUILTIN_DATASETS,
    POLICIES,
    SAMPLERS,
    EarlyTermination,
    Limits,
    Objective,
    Register,
    Resources,
    SamplingAlgorithm,
    SweepConfig,
    TrainerSpec,
)
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
)

# Names that become folder names (the sweep, a registered model): no separators, no "..".
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ENTRY = re.compile(r"^(trainer|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")
_COMPUTE = re.compile(r"^(local|ray://[^\s/]+|ray:[^\s/]+|azure:[A-Za-z][A-Za-z0-9-]{1,31})$")

TOP_KEYS = {
    "$schema", "type", "name", "trainer", "search_space", "objective", "sampling_algorithm",
    "early_termination", "limits", "resources", "local_resources", "compute", "storage",
    "register",
}

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

# Each policy's settings: (kind, default). Azure ML's defaults for its own three.
_POLICY_FIELDS: dict[str, dict[str, tuple[str, Any]]] = {
    "bandit": {
        "slack_factor": ("number", None), "slack_amount": ("number", None),
        "evaluation_interval": ("int", 1), "delay_evaluation": ("int", 0),
    },
    "median_stopping": {"evaluation_interval": ("int", 1), "delay_evaluation": ("int", 0)},
    "truncation_selection": {
        "truncation_percentage": ("int", None), "exclude_finished_jobs": ("bool", False),
        "evaluation_interval": ("int", 1), "delay_evaluation": ("int", 0),
    },
    "median": {
        "n_startup_trials": ("int", 5), "n_warmup_steps": ("int", 0), "interval_steps": ("int", 1),
    },
    "percentile": {
        "percentile": ("number", 25.0), "n_startup_trials": ("int", 5),
        "n_warmup_steps": ("int", 0), "interval_steps": ("int", 1),
    },
    "asha": {
        "min_resource": ("int", 1), "reduction_factor": ("int", 3),
        "min_early_stopping_rate": ("int", 0),
    },
    "hyperband": {
        "min_resource": ("int", 1), "max_resource": ("int", None), "reduction_factor": ("int", 3),
    },
    "none": {},
}


class SearchSpaceWarning(UserWarning):
    """A sweep file that is valid but probably not what its author meant."""


def read_sweep_file(path: str | Path, overrides: Sequence[str] = (),
                    trainer: str | None = None) -> SweepConfig:
    """Reads and validates a sweep file.

    Args:
        overrides: ``KEY=VALUE`` items set on the file before it is checked (``--set``).
        trainer: the trainer entry for a W&B sweep config (``--trainer``).

    Example:
        >>> config = read_sweep_file("space.yaml")  # doctest: +SKIP
        >>> sorted(config.search_space)             # doctest: +SKIP
        ['learning_rate', 'momentum', 'num_epochs']
    """
    from search_spaces.overrides import apply_overrides

    path = Path(path)
    data = apply_overrides(load_yaml(path), overrides)
    if trainer is not None and "trial" not in data:
        section = data.get("trainer")
        data["trainer"] = {**(section if isinstance(section, Mapping) else {}), "entry": trainer}
    return parse_sweep(data, default_name=path.stem, base_dir=path.parent)


def load_yaml(path: Path) -> Mapping[str, Any]:
    """Loads a YAML mapping with ``safe_load``; every failure is a one-line SearchSpaceError."""
    if not path.is_file():
        raise SearchSpaceError(str(path), "no such file")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise SearchSpaceError(str(path), "is a binary file, not YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SearchSpaceError(str(path), f"is not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SearchSpaceError(where, f"YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SearchSpaceError(str(path), f"YAML error: {exc}") from None
    if data is None:
        raise SearchSpaceError(str(path), "is empty; expected a sweep mapping with search_space")
    if not isinstance(data, Mapping):
        kind = type(data).__name__
        raise SearchSpaceError(str(path), f"expected a mapping at the top, got {kind}")
    return data


def parse_sweep(
    data: Mapping[str, Any], *, default_name: str = "sweep", base_dir: Path | None = None
) -> SweepConfig:
    """Builds a SweepConfig from a sweep file's mapping (see SPEC section 1).

    Three kinds of file are sweep files: ours, an Azure ML v2 sweep job as written (it has a
    ``trial``), and a W&B sweep config (``method`` and ``parameters``; it needs ``trainer``).
    Every problem of the file is reported at once, one line each.
    """
    data = c.mapping(data, "")
    base_dir = Path(base_dir) if base_dir is not None else Path(".")
    _refuse_other_job_types(data)
    if "trial" in data:
        from search_spaces.azure_job_file import parse_azure_job

        return parse_azure_job(data, default_name=default_name, base_dir=base_dir)
    if is_wandb(data):
        return _parse_wandb(data, default_name, base_dir)
    problems = c.Problems()
    with problems.check():
        c.no_unknown_keys(data, "", TOP_KEYS)
    if "resources" in data and "local_resources" in data:
        problems.errors.append(SearchSpaceError(
            "local_resources", "is the new spelling of resources; keep only one of them"))
    name = default_name
    with problems.check():
        name = sweep_name(data, default_name)
    trainer = TrainerSpec()
    with problems.check():
        trainer = _trainer(data.get("trainer", {}), base_dir)
    sections = sweep_sections(data, problems, azure=False)
    space = sections.get("search_space") or {}
    with problems.check():
        clash = sorted(set(space) & set(trainer.args))
        if clash:
            raise SearchSpaceError(
                f"search_space.{clash[0]}", "is also fixed in trainer.args; keep it in one place"
            )
    resources = Resources()
    with problems.check():
        resources = parse_resources(data.get("local_resources", data.get("resources", {})),
                                    "local_resources" if "local_resources" in data
                                    else "resources")
    compute = "local"
    with problems.check():
        compute = parse_compute(data.get("compute", "local"))
    problems.raise_any()
    config = SweepConfig(
        name=name, search_space=space, trainer=trainer, resources=resources, compute=compute,
        base_dir=base_dir, **{k: v for k, v in sections.items() if k != "search_space"},
    )
    if config.compute.startswith("azure:"):
        # Azure ML refuses some combinations that run fine locally: check them now, not on submit.
        from search_spaces.azure_form import check_azure_compatible

        check_azure_compatible(config)
    return config


def _parse_wandb(data: Mapping[str, Any], default_name: str, base_dir: Path) -> SweepConfig:
    from search_spaces._errors import SearchSpaceErrors
    from search_spaces.wandb_form import from_wandb, wandb_path

    wandb = {k: v for k, v in data.items() if k != "trainer"}
    trainer = data.get("trainer")
    converted = from_wandb(wandb, trainer=c.mapping(trainer, "trainer") if trainer else None)
    if "trainer" not in converted:
        raise SearchSpaceError(
            "trainer", "a W&B sweep config needs our trainer: section (or --trainer "
            "package.module:function) in place of W&B's program"
        )
    try:
        return parse_sweep(converted, default_name=default_name, base_dir=base_dir)
    except SearchSpaceError as exc:
        errors = exc.errors if isinstance(exc, SearchSpaceErrors) else [exc]
        renamed = [SearchSpaceError(wandb_path(e.path), e.reason.replace("min_value", "min")
                                    .replace("max_value", "max")) for e in errors]
        raise (renamed[0] if len(renamed) == 1 else SearchSpaceErrors(renamed)) from None


def is_wandb(data: Mapping[str, Any]) -> bool:
    """A W&B sweep config: ``parameters`` and ``method``, none of our or Azure's sections."""
    return "parameters" in data and "method" in data and "search_space" not in data


def _refuse_other_job_types(data: Mapping[str, Any]) -> None:
    kind = data.get("type")
    if kind is None or kind == "sweep":
        return
    if kind == "pipeline":
        raise SearchSpaceError(
            "type", "this is an Azure ML pipeline job, not a sweep job; sweep runs files of "
            "type: sweep (a sweep step inside a pipeline runs on Azure ML only)"
        )
    if kind == "sweep_job":
        raise SearchSpaceError(
            "type", "'sweep_job' is the pre-GA (preview) spelling that Azure ML no longer "
            "accepts; write type: sweep, as the v2 sweepJob schema does"
        )
    raise SearchSpaceError("type", f"expected 'sweep', got {kind!r}")


def sweep_name(data: Mapping[str, Any], default_name: str) -> str:
    name = c.string(data, "name", "", default_name)
    if not SAFE_NAME.match(name):
        raise SearchSpaceError(
            "name", f"{name!r} must be letters, digits, '.', '_' or '-' (it becomes a folder name)"
        )
    return name


def sweep_sections(data: Mapping[str, Any], problems: c.Problems, *, azure: bool
                   ) -> dict[str, Any]:
    """The sections ours and Azure's files share, each checked on its own so that every
    problem is reported: search_space, objective, sampling, early termination, limits,
    storage, register."""
    out: dict[str, Any] = {}
    sampling = SamplingAlgorithm()
    with problems.check():
        sampling = _sampling(data.get("sampling_algorithm", "random"))
        out["sampling_algorithm"] = dataclasses.replace(sampling, options={
            k: v for k, v in sampling.options.items() if k != "logbase"})
    if "search_space" not in data:
        problems.errors.append(SearchSpaceError("search_space", "is required"))
    else:
        logbase = sampling.options.get("logbase", "e")
        space = parse_search_space(data["search_space"], problems, logbase=logbase)
        out["search_space"] = space
        if sampling.type == "grid":
            for key, expr in space.items():
                if not isinstance(expr, Choice):
                    problems.errors.append(SearchSpaceError(
                        f"search_space.{key}",
                        f"grid sampling needs choice expressions only, got {expr.type}"))
    if azure and "objective" not in data:
        problems.errors.append(SearchSpaceError("objective", "is required in an Azure ML "
                                                "sweep job (primary_metric and goal)"))
    readers = {
        "objective": lambda: _objective(data.get("objective", {})),
        "early_termination": lambda: _early_termination(data.get("early_termination")),
        "limits": lambda: _limits(data.get("limits", {})),
        "storage": lambda: _storage(data.get("storage", "default")),
        "register": lambda: _register(data.get("register")),
    }
    for key, read in readers.items():
        with problems.check():
            out[key] = read()
    return out


def parse_search_space(value: Any, problems: c.Problems | None = None, *,
                       logbase: float | str = "e") -> dict[str, Expression]:
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
        return dataclasses.replace(expr, min_value=expr.min_value * scale,
                                   max_value=expr.max_value * scale)
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
        return Choice(tuple(_choice_value(v, f"{path}.values[{i}]")
                            for i, v in enumerate(values)))
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
                path, f"min_value {lo} is {'equal to' if lo == hi else 'greater than'} "
                f"max_value {hi}"
            )
        if kind in ("loguniform", "qloguniform"):
            _warn_if_log_bounds_look_like_values(path, lo, hi)
        expr: Expression = cls(lo, hi, **q)
        return expr
    assert issubclass(cls, Normal)
    mu, sigma = c.number(d, "mu", path), c.number(d, "sigma", path)
    c.positive(sigma, f"{path}.sigma")
    expr = cls(mu, sigma, **q)
    return expr


def _choice_value(v: Any, path: str) -> Any:
    """A choice's value: a scalar, or (Azure's nested search space) a mapping of scalars and
    expressions, sampled together when that value is chosen."""
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    if isinstance(v, Mapping):
        c.mapping(v, path)
        return {k: (parse_expression(x, f"{path}.{k}") if isinstance(x, Mapping)
                    else _choice_value(x, f"{path}.{k}")) for k, x in v.items()}
    raise SearchSpaceError(
        path, f"choices must be numbers, strings, booleans or mappings, got {v!r}"
    )


def _range(d: Mapping[str, Any], path: str, kind: str) -> FloatRange | IntRange:
    get = c.number if kind == "float" else c.integer
    lo, hi = get(d, "low", path), get(d, "high", path)
    log = c.boolean(d, "log", path, False)
    if lo > hi or (kind == "float" and lo == hi):
        raise SearchSpaceError(path, f"low {lo} is greater than high {hi}" if lo > hi
                               else f"low {lo} is equal to high {hi}")
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


def _trainer(value: Any, base_dir: Path) -> TrainerSpec:
    d = c.mapping(value, "trainer")
    c.no_unknown_keys(d, "trainer", {"entry", "args", "retries"})
    entry = c.string(d, "entry", "trainer", "trainer")
    if not _ENTRY.match(entry):
        raise SearchSpaceError(
            "trainer.entry", f"{entry!r} must be 'trainer' or 'package.module:function'"
        )
    args = dict(c.mapping(d.get("args", {}), "trainer.args"))
    retries = c.integer(d, "retries", "trainer", 0)
    c.positive(retries, "trainer.retries", allow_zero=True)
    for key in ("data", "data_dir"):
        if key in args:
            _check_data(args[key], f"trainer.args.{key}", base_dir)
    return TrainerSpec(entry=entry, args=args, retries=retries)


def _check_data(value: Any, path: str, base_dir: Path) -> None:
    if not isinstance(value, str) or not value:
        raise SearchSpaceError(path, f"expected a data set name or a folder, got {value!r}")
    if value in BUILTIN_DATASETS or value.startswith("azureml:"):
        return
    folder = Path(value) if Path(value).is_absolute() else base_dir / value
    if not folder.is_dir():
        raise SearchSpaceError(
            path, f"{value!r} is neither a built-in data set ({', '.join(BUILTIN_DATASETS)}) "
            f"nor a folder ({folder} does not exist); point it at yours with --set "
            f"{path}=PATH, or use --set {path}=digits"
        )
    for split in ("train", "val"):
        if not (folder / split).is_dir():
            raise SearchSpaceError(path, f"{folder} has no {split}/ folder of class sub-folders")


def _objective(value: Any) -> Objective:
    d = c.mapping(value, "objective")
    c.no_unknown_keys(d, "objective", {"primary_metric", "goal"})
    metric = c.string(d, "primary_metric", "objective", "best_val_acc")
    goal = c.string(d, "goal", "objective", "maximize")
    c.one_of(goal, ("maximize", "minimize"), "objective.goal")
    return Objective(metric, goal)


def _sampling(value: Any) -> SamplingAlgorithm:
    path = "sampling_algorithm"
    if isinstance(value, str):
        return SamplingAlgorithm(c.one_of(value, SAMPLERS, path))
    d = c.mapping(value, path)
    kind = c.one_of(c.string(d, "type", path), SAMPLERS, f"{path}.type")
    allowed = {"type", "seed"} | ({"rule", "logbase"} if kind == "random" else set())
    c.no_unknown_keys(d, path, allowed)
    seed = c.optional_integer(d, "seed", path)
    options: dict[str, Any] = {}
    if "rule" in d:
        options["rule"] = c.one_of(c.string(d, "rule", path), ("random", "sobol"), f"{path}.rule")
    if d.get("logbase") is not None:
        base = d["logbase"]
        ok = base == "e" or (isinstance(base, int | float) and not isinstance(base, bool)
                             and base > 0 and base != 1)
        if not ok:
            raise SearchSpaceError(
                f"{path}.logbase", f"must be 'e' or a positive number other than 1, got {base!r}"
            )
        options["logbase"] = base
    return SamplingAlgorithm(kind, seed, options)


def _early_termination(value: Any) -> EarlyTermination:
    path = "early_termination"
    if value is None:
        return EarlyTermination()
    if isinstance(value, str):
        value = {"type": value}
    d = c.mapping(value, path)
    kind = c.one_of(c.string(d, "type", path), POLICIES, f"{path}.type")
    fields = _POLICY_FIELDS[kind]
    c.no_unknown_keys(d, path, set(fields) | {"type"})
    options: dict[str, Any] = {}
    for key, (ftype, default) in fields.items():
        if d.get(key) is None:
            if default is not None:
                options[key] = default
            continue
        if ftype == "int":
            options[key] = c.integer(d, key, path)
            c.positive(options[key], f"{path}.{key}", allow_zero=key != "reduction_factor")
        elif ftype == "bool":
            options[key] = c.boolean(d, key, path, default)
        else:
            options[key] = c.number(d, key, path)
            c.positive(options[key], f"{path}.{key}", allow_zero=True)
    if kind == "bandit":
        # Azure's SDK writes the unused slack as 0.0 beside the one that is set.
        if options.get("slack_factor") and options.get("slack_amount") == 0:
            del options["slack_amount"]
        elif options.get("slack_amount") and options.get("slack_factor") == 0:
            del options["slack_factor"]
        if ("slack_factor" in options) == ("slack_amount" in options):
            raise SearchSpaceError(path, "bandit needs exactly one of slack_factor or "
                                   "slack_amount")
    if kind == "truncation_selection":
        pct = options.get("truncation_percentage")
        if pct is None or not 1 <= pct <= 99:
            raise SearchSpaceError(
                f"{path}.truncation_percentage", f"must be an integer from 1 to 99, got {pct!r}"
            )
    if kind == "percentile" and not 0 < options["percentile"] < 100:
        raise SearchSpaceError(f"{path}.percentile", "must be between 0 and 100")
    if kind in ("asha", "hyperband") and options["reduction_factor"] < 2:
        raise SearchSpaceError(f"{path}.reduction_factor", "must be 2 or more")
    return EarlyTermination(kind, options)


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
            path, f"{value!r} must be local, ray://HOST:PORT, ray:HOST:PORT, azure:CLUSTER "
            "or azureml:CLUSTER"
        )
    return value


def _storage(value: Any) -> str:
    if not isinstance(value, str) or not (value == "default" or "://" in value):
        raise SearchSpaceError(
            "storage", f"{value!r} must be 'default' or a database URL such as postgresql://…"
        )
    return value


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


__all__ = ["SearchSpaceWarning", "is_wandb", "load_yaml", "parse_compute", "parse_expression",
           "parse_resources", "parse_search_space", "parse_sweep", "read_sweep_file",
           "sweep_name", "sweep_sections"]
