"""Reads an Azure ML v2 sweep-job file, as written for ``az ml job create -f``, as a sweep.

The keys and their meanings are Azure's own (``azure/ai/ml/_schema/_sweep/sweep_job.py`` and
``job/parameterized_command.py`` in azure-ai-ml); ours are added beside them under names
Azure does not use: ``local_resources`` (what one trial takes on Ray), ``storage`` and
``register``. Azure's ``resources`` is the sweep's instance configuration and keeps that
meaning here. Nothing here imports Azure's SDK.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from search_spaces import _checks as c
from search_spaces._errors import SearchSpaceError
from search_spaces.config import (
    CommandTrial,
    Distribution,
    JobInput,
    Resources,
    SweepConfig,
)
from search_spaces.expressions import Choice, Expression
from search_spaces.sections import (
    SHARED_KEYS,
    parse_compute,
    parse_resources,
    sweep_name,
    sweep_sections,
)

# Azure's sweepJob keys (BaseJobSchema + ParameterizedSweepSchema + SweepJobSchema).
AZURE_KEYS = {
    "$schema",
    "type",
    "name",
    "display_name",
    "experiment_name",
    "description",
    "tags",
    "properties",
    "services",
    "identity",
    "compute",
    "trial",
    "inputs",
    "outputs",
    "search_space",
    "objective",
    "sampling_algorithm",
    "early_termination",
    "limits",
    "resources",
    "queue_settings",
    "notification_setting",
}
OUR_KEYS = {"local_resources", *SHARED_KEYS}
TRIAL_KEYS = {
    "command",
    "code",
    "environment",
    "environment_variables",
    "resources",
    "distribution",
    "queue_settings",
}
DISTRIBUTIONS = {
    "pytorch": {"process_count_per_instance"},
    "mpi": {"process_count_per_instance"},
    "tensorflow": {"worker_count", "parameter_server_count"},
    "ray": {
        "port",
        "address",
        "include_dashboard",
        "dashboard_port",
        "head_node_additional_args",
        "worker_node_additional_args",
    },
}
LITERAL_TYPES = ("string", "integer", "number", "boolean")
ASSET_TYPES = ("uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model")
# Azure's expressions in a command: ${{search_space.X}}, ${{inputs.X}}, ${{outputs.X}}.
EXPRESSION = re.compile(r"\$\{\{\s*([A-Za-z_]+)\.([A-Za-z0-9_.\-]+)\s*\}\}")
_OUR_RESOURCES = {"cpus_per_trial", "gpus_per_trial", "workers_per_trial", "distribution"}


def parse_azure_job(data: Mapping[str, Any], *, default_name: str, base_dir: Path) -> SweepConfig:
    """A SweepConfig whose trials run ``trial.command``; every problem is reported at once."""
    written, data = data, as_azure_reads_it(data)
    problems = c.Problems()
    with problems.check():
        c.no_unknown_keys(
            data,
            "",
            AZURE_KEYS | OUR_KEYS | {"trainer"},
            hint="not a key of Azure ML's sweep job (nor local_resources, "
            "storage, register, keep, tracking)",
        )
    if "trainer" in data:
        problems.errors.append(
            SearchSpaceError(
                "trainer", "an Azure ML job file runs its trial.command; drop trainer (or trial)"
            )
        )
    name = default_name
    with problems.check():
        name = sweep_name(data, default_name)
    sections = sweep_sections(data, problems, azure=True)
    space: Mapping[str, Expression] = sections.get("search_space") or {}
    with problems.check():
        _azure_resources(data.get("resources"))
    resources = Resources()
    with problems.check():
        resources = parse_resources(data.get("local_resources", {}), "local_resources")
    compute = "local"
    with problems.check():
        compute = parse_compute(data.get("compute", "local"))
    inputs: dict[str, JobInput] = {}
    with problems.check():
        inputs = parse_inputs(data.get("inputs"), base_dir, problems)
    outputs: tuple[str, ...] = ()
    with problems.check():
        outputs = _outputs(data.get("outputs"))
    trial = None
    with problems.check():
        # Azure resolves a registered code asset itself; only a run here needs a local copy.
        trial = parse_trial(
            data["trial"], base_dir, problems, remote_code=compute.startswith("azure:")
        )
    if trial is not None:
        with problems.check():
            check_references(trial.command, space, inputs, outputs, problems)
        trial = CommandTrial(
            command=trial.command,
            code=trial.code,
            environment=trial.environment,
            environment_variables=trial.environment_variables,
            distribution=trial.distribution,
            inputs=inputs,
            outputs=outputs,
        )
    problems.raise_any()
    assert trial is not None
    dist = trial.distribution
    asked = data.get("local_resources") or {}
    if dist is not None and dist.processes > 1 and "cpus_per_trial" not in asked:
        # A trial's processes all run where its worker runs: it takes a CPU for each.
        resources = dataclasses.replace(
            resources, cpus_per_trial=resources.cpus_per_trial * dist.processes
        )
    config = SweepConfig(
        name=name,
        search_space=space,
        resources=resources,
        compute=compute,
        command=trial,
        azure_job=dict(written),
        base_dir=base_dir,
        **{k: v for k, v in sections.items() if k != "search_space"},
    )
    if compute.startswith("azure:"):
        from search_spaces.azure_form import check_azure_compatible

        check_azure_compatible(config)
    return config


def as_azure_reads_it(data: Mapping[str, Any]) -> dict[str, Any]:
    """The job's names of kinds as azure-ai-ml reads them, whatever their case: each search
    expression's ``type`` in lower case (``Choice``, ``Uniform``), the goal, the sampling
    algorithm and the early termination in snake case (``Maximize``, ``Bayesian``,
    ``MedianStopping``, ``rule: Sobol``), as its schema's ``StringTransformedEnum`` fields
    do; a file Azure takes is not refused here for its capitals. (The job's own ``type``
    stays as written: ``load_job`` refuses ``type: Sweep``.)"""
    out = dict(data)
    for key, fields in (
        ("objective", ("goal",)),
        ("sampling_algorithm", ("type", "rule")),
        ("early_termination", ("type",)),
    ):
        section = out.get(key)
        if isinstance(section, Mapping):
            out[key] = {
                k: _snake(v) if k in fields and isinstance(v, str) else v
                for k, v in section.items()
            }
    if isinstance(out.get("sampling_algorithm"), str):
        out["sampling_algorithm"] = out["sampling_algorithm"].lower()
    if isinstance(out.get("search_space"), Mapping):
        out["search_space"] = _lower_types(out["search_space"])
    return out


def _snake(text: str) -> str:
    """azure-ai-ml's ``camel_to_snake``: ``MedianStopping`` -> ``median_stopping``."""
    text = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", text)
    return re.sub("([a-z0-9])([A-Z])", r"\1_\2", text).lower()


def _lower_types(space: Mapping[str, Any]) -> dict[str, Any]:
    """Each expression's ``type`` lower-cased, inside a choice's nested spaces too."""
    out: dict[str, Any] = {}
    for name, expr in space.items():
        if not isinstance(expr, Mapping):
            out[name] = expr
            continue
        expr = dict(expr)
        if isinstance(expr.get("type"), str):
            expr["type"] = expr["type"].lower()
        if isinstance(expr.get("values"), list):
            expr["values"] = [
                _lower_types(v) if isinstance(v, Mapping) else v for v in expr["values"]
            ]
        out[name] = expr
    return out


def _azure_resources(value: Any) -> None:
    if value is None:
        return
    d = c.mapping(value, "resources")
    ours = sorted(_OUR_RESOURCES & set(d))
    if ours:
        raise SearchSpaceError(
            f"resources.{ours[0]}",
            "in an Azure ML job file, resources is Azure's (instance_count,"
            f" instance_type, …); put what one trial takes here under local_resources: "
            f"{{{ours[0]}: {d[ours[0]]!r}}}",
        )


def parse_trial(
    value: Any, base_dir: Path, problems: c.Problems, *, remote_code: bool = False
) -> CommandTrial:
    d = c.mapping(value, "trial")
    with problems.check():
        c.no_unknown_keys(
            d,
            "trial",
            TRIAL_KEYS,
            hint=f"Azure's command trial takes {', '.join(sorted(TRIAL_KEYS))}",
        )
    command = c.string(d, "command", "trial")
    code: Path | None = None
    with problems.check():
        code = _code(d.get("code"), base_dir, remote_ok=remote_code)
    env_vars: dict[str, str] = {}
    with problems.check():
        raw = c.mapping(d.get("environment_variables") or {}, "trial.environment_variables")
        env_vars = {k: "" if v is None else str(v) for k, v in raw.items()}
    distribution = None
    with problems.check():
        distribution = _distribution(d.get("distribution"), d.get("resources"))
    return CommandTrial(
        command=command,
        code=code,
        environment=d.get("environment"),
        environment_variables=env_vars,
        distribution=distribution,
    )


def _code(value: Any, base_dir: Path, *, remote_ok: bool = False) -> Path | None:
    """The local folder of trial.code; None when there is none here (no code, or a registered
    code asset that goes to Azure ML as written)."""
    if value is None:
        return None
    if isinstance(value, Mapping) and isinstance(value.get("local_path"), str):
        # The CLI v2 preview's form, still in older examples; Azure ML's schema refuses it.
        raise SearchSpaceError(
            "trial.code",
            f"{{local_path: {value['local_path']}}} is the Azure ML CLI preview's form, which "
            f"Azure ML no longer takes: write code: {value['local_path']}",
        )
    if not isinstance(value, str) or not value:
        raise SearchSpaceError("trial.code", f"expected a folder, got {value!r}")
    if value.startswith(("azureml:", "http://", "https://", "git+")):
        if remote_ok:
            return None
        raise SearchSpaceError(
            "trial.code",
            f"{value!r} is a remote code asset; point trial.code at a local copy "
            "(--set trial.code=./src)",
        )
    path = Path(value) if Path(value).is_absolute() else base_dir / value
    if not path.exists():
        raise SearchSpaceError("trial.code", f"{value!r} does not exist ({path.resolve()})")
    return path.resolve()


def _distribution(value: Any, resources: Any) -> Distribution | None:
    if value is None:
        return None
    d = c.mapping(value, "trial.distribution")
    kind = c.one_of(
        c.string(d, "type", "trial.distribution"), tuple(DISTRIBUTIONS), "trial.distribution.type"
    )
    c.no_unknown_keys(d, "trial.distribution", DISTRIBUTIONS[kind] | {"type"})
    per_node = 1
    if kind in ("pytorch", "mpi"):
        per_node = c.integer(d, "process_count_per_instance", "trial.distribution", 1)
        c.positive(per_node, "trial.distribution.process_count_per_instance")
    elif kind == "tensorflow":
        per_node = c.integer(d, "worker_count", "trial.distribution", 1)
    instances = 1
    if resources is not None:
        r = c.mapping(resources, "trial.resources")
        instances = c.integer(r, "instance_count", "trial.resources", 1)
        c.positive(instances, "trial.resources.instance_count")
    return Distribution(kind, per_node, instances)


def parse_inputs(value: Any, base_dir: Path, problems: c.Problems) -> dict[str, JobInput]:
    """Azure's job inputs: literals (``lr: 0.1``, ``{type: number, default: 0.1}``) or assets
    by path (``{type: uri_file, path: ./iris.csv}``); local paths become absolute."""
    if value is None:
        return {}
    out: dict[str, JobInput] = {}
    for key, spec in c.mapping(value, "inputs").items():
        with problems.check():
            out[key] = _input(spec, f"inputs.{key}", base_dir)
    return out


def _input(spec: Any, path: str, base_dir: Path) -> JobInput:
    if not isinstance(spec, Mapping):
        if isinstance(spec, list):
            raise SearchSpaceError(path, "expected a value or a mapping with type and path")
        return JobInput("literal", spec)
    d = c.mapping(spec, path)
    if set(d) == {"value"}:  # Azure's InputLiteralValueSchema
        return JobInput("literal", d["value"])
    kind = c.string(d, "type", path, "uri_folder")
    if kind in LITERAL_TYPES:
        raise SearchSpaceError(
            f"{path}.type",
            f"a job's literal input is a plain value ({path.split('.')[-1]}: 3) "
            f"or {{value: 3}}; type: {kind} with a default belongs to components, and Azure ML "
            "refuses it in a job",
        )
    c.one_of(kind, ASSET_TYPES, f"{path}.type")
    c.no_unknown_keys(
        d, path, {"type", "path", "mode", "description", "optional", "datastore", "path_on_compute"}
    )
    where = c.string(d, "path", path)
    mode = d.get("mode")
    local = JobInput(kind, where, mode)
    if local.is_remote:
        return local
    resolved = Path(where) if Path(where).is_absolute() else base_dir / where
    return JobInput(kind, str(resolved.resolve()), mode)


def _outputs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    d = c.mapping(value, "outputs")
    for key, spec in d.items():
        if spec is not None:
            c.mapping(spec, f"outputs.{key}")
    return tuple(d)


def check_references(
    command: str,
    space: Mapping[str, Expression],
    inputs: Mapping[str, JobInput],
    outputs: tuple[str, ...],
    problems: c.Problems,
) -> None:
    """Every ``${{…}}`` in the command names something the file defines."""
    known = {"search_space": set(space), "inputs": set(inputs), "outputs": set(outputs)}
    # Inside Azure's optional blocks $[[ … ]] an input may be missing: the block is dropped.
    required = re.sub(r"\$\[\[.*?\]\]", "", command, flags=re.DOTALL)
    for match in EXPRESSION.finditer(required):
        group, name = match.group(1), match.group(2)
        if group not in known:
            problems.errors.append(
                SearchSpaceError(
                    "trial.command",
                    f"{match.group(0)}: Azure ML expressions name search_space, inputs or outputs",
                )
            )
            continue
        head = name.split(".")[0]
        if head not in known[group]:
            have = ", ".join(sorted(known[group])) or "none"
            problems.errors.append(
                SearchSpaceError(
                    "trial.command", f"{match.group(0)} names no {group} entry ({group}: {have})"
                )
            )
        elif group == "search_space" and "." in name and not _nested(space[head], name):
            problems.errors.append(
                SearchSpaceError(
                    "trial.command",
                    f"{match.group(0)}: {head} has no nested key {name.split('.', 1)[1]!r}",
                )
            )


def _nested(expr: Expression, name: str) -> bool:
    rest = name.split(".")[1:]
    if not isinstance(expr, Choice):
        return False
    return any(isinstance(v, Mapping) and rest[0] in v for v in expr.values)
