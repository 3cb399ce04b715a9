"""An Azure ML job file going back to Azure ML: the document as the user wrote it (with --set
applied), our own keys taken out, paths made relative to where the YAML is written, and the
result loaded by the SDK's ``load_job`` (Azure's own schema), which is what gets submitted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from search_spaces import SweepConfig, to_dict
from search_spaces.azure_job_file import OUR_KEYS
from sweep.azure.job import relative_path
from sweep.errors import SweepInputError


def job_document(config: SweepConfig, folder: Path) -> dict[str, Any]:
    """The sweep-job mapping for a YAML file written in ``folder``."""
    assert config.command is not None
    doc = {k: v for k, v in to_dict(config).items() if k not in OUR_KEYS}
    trial = dict(doc["trial"])
    if config.command.code is not None:
        trial["code"] = relative_path(config.command.code, folder)
    env = trial.get("environment")
    if isinstance(env, dict):  # an inline environment names local files relative to the job
        env = dict(env)
        if _local(env.get("conda_file")):
            env["conda_file"] = relative_path(config.base_dir / env["conda_file"], folder)
        if isinstance(env.get("build"), dict) and _local(env["build"].get("path")):
            env["build"] = {
                **env["build"],
                "path": relative_path(config.base_dir / env["build"]["path"], folder),
            }
        trial["environment"] = env
    doc["trial"] = trial
    inputs = dict(doc.get("inputs") or {})
    for name, spec in config.command.inputs.items():
        if spec.type != "literal" and not spec.is_remote and isinstance(inputs.get(name), dict):
            inputs[name] = {**inputs[name], "path": relative_path(Path(str(spec.value)), folder)}
    if inputs:
        doc["inputs"] = inputs
    return doc


def write_and_load(config: SweepConfig, path: Path) -> Any:
    """Writes the job YAML to ``path`` and returns the SDK's SweepJob loaded from it."""
    from azure.ai.ml import load_job

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(job_document(config, path.parent), sort_keys=False))
    try:
        return load_job(str(path))
    except Exception as exc:  # the SDK's ValidationException and marshmallow's errors
        message = " ".join(str(exc).split())
        raise SweepInputError(f"Azure ML's own schema refuses the job: {message[:400]}") from None


def _local(value: Any) -> bool:
    return (
        isinstance(value, str) and ":" not in value.split("/")[0] and not Path(value).is_absolute()
    )
