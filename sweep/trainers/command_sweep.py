"""What a sweep of command trials needs before its first trial: checks, the code snapshot,
and the ``CommandTrainer`` every trial runs."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from search_spaces import SweepConfig
from sweep.errors import SweepInputError
from sweep.records.layout import CODE
from sweep.trainers.command_trial import CommandTrainer

logger = logging.getLogger(__name__)

# What a code snapshot leaves out, here and when Ray uploads the code to a cluster.
SNAPSHOT_EXCLUDES = (
    "__pycache__",
    "*.pyc",
    ".git",
    ".venv",
    "mlruns",
    "outputs",
    ".ipynb_checkpoints",
)


def check_command(config: SweepConfig) -> None:
    """Refuses, before any trial starts, what a command trial cannot have on this machine."""
    trial = config.command
    assert trial is not None
    for name, spec in trial.inputs.items():
        if spec.is_remote:
            raise SweepInputError(
                f"inputs.{name}: {spec.value} is remote and is not fetched here; download it "
                f"and point the input at the copy: --set inputs.{name}.path=./local-copy"
            )
        if spec.type != "literal" and not Path(str(spec.value)).exists():
            raise SweepInputError(f"inputs.{name}.path: {spec.value} does not exist")
    dist = trial.distribution
    if dist is not None and dist.type not in ("pytorch", "mpi") and dist.processes > 1:
        raise SweepInputError(
            f"trial.distribution.type: {dist.type} trials run on Azure ML only; here, "
            "pytorch and mpi (Horovod) run data-parallel"
        )


def snapshot_code(config: SweepConfig, sweep_dir: Path) -> Path | None:
    """Copies trial.code to ``sweep_dir/code`` once, when the sweep starts (as Azure ML
    uploads it); a resumed sweep runs the same snapshot."""
    trial = config.command
    assert trial is not None
    target = sweep_dir / CODE
    if target.exists():
        return target
    if trial.code is None:
        return None
    sweep_dir.mkdir(parents=True, exist_ok=True)
    staging = sweep_dir / f".{CODE}-staging"
    shutil.rmtree(staging, ignore_errors=True)
    if trial.code.is_dir():
        shutil.copytree(
            trial.code, staging, symlinks=True, ignore=shutil.ignore_patterns(*SNAPSHOT_EXCLUDES)
        )
    else:
        staging.mkdir()
        shutil.copy2(trial.code, staging / trial.code.name)
    staging.rename(target)
    return target


def command_trainer(config: SweepConfig, sweep_dir: Path) -> CommandTrainer:
    trial = config.command
    assert trial is not None
    code = snapshot_code(config, sweep_dir)
    logger.info(
        "trials run %r in this Python environment (%s); trial.environment is used on Azure ML only",
        trial.command,
        sys.executable,
    )
    dist = trial.distribution
    return CommandTrainer(
        command=trial.command,
        metric=config.objective.primary_metric,
        code=str(code.resolve()) if code else None,
        inputs={k: v.value for k, v in trial.inputs.items()},
        outputs=trial.outputs,
        environment_variables=dict(trial.environment_variables),
        distribution=dist.type if dist else None,
        processes=dist.processes if dist else 1,
    )


def as_started(config: SweepConfig, data: dict[str, Any], sweep_dir: Path) -> dict[str, Any]:
    """The job document as ``sweep.yaml`` keeps it: trial.code is the snapshot (``code``,
    beside sweep.yaml) and local inputs are absolute, so a resumed sweep runs the code and
    data it started with."""
    assert config.command is not None
    if (sweep_dir / CODE).exists():
        data["trial"] = {**data["trial"], "code": CODE}
    inputs = dict(data.get("inputs") or {})
    for name, spec in config.command.inputs.items():
        if spec.type != "literal" and isinstance(inputs.get(name), dict) and not spec.is_remote:
            inputs[name] = {**inputs[name], "path": str(spec.value)}
    if inputs:
        data["inputs"] = inputs
    return data
