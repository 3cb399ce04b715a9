"""What kind of trial a sweep runs: a trainer function (ours or the user's) or a command.

The one place where the two kinds differ. Everything else (the coordinator, the backends,
checkpoints, reports) sees a trainer ``fn(params, report)`` and a trial folder: a command
trial's ``CommandTrainer`` is such a function, which starts the script with the trial's
checkpoint folder as ``$SWEEP_CHECKPOINT_DIR`` and turns its MLflow logs into reports.
"""

from __future__ import annotations

import re
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search_spaces import SweepConfig
from sweep.trials import TrainFn

if TYPE_CHECKING:  # the result pulls in pandas; validate and --help stay light
    from sweep.result import SweepResult


_INSTALLS = re.compile(r"\b(?:pip3?|conda|mamba|uv pip|apt(?:-get)?) +install\b")
"""A package install in a trial's command line."""


class TrialKind(ABC):
    @abstractmethod
    def check_entry(self, config: SweepConfig, entry: str | TrainFn) -> None:
        """Refuses what would make every trial of this kind fail on this machine."""

    @abstractmethod
    def entry(self, config: SweepConfig, sweep_dir: Path, given: str | TrainFn) -> str | TrainFn:
        """What each trial calls (a command sweep snapshots its code first)."""

    @abstractmethod
    def code(self, config: SweepConfig) -> Path | None:
        """The trial's own code folder, which travels to a Ray cluster's nodes."""

    @abstractmethod
    def as_started(
        self, config: SweepConfig, data: dict[str, Any], sweep_dir: Path
    ) -> dict[str, Any]:
        """``sweep.yaml``'s document: what a resumed sweep runs."""

    @abstractmethod
    def keep_best(
        self, config: SweepConfig, result: SweepResult, folder: Path | None = None
    ) -> Path | None:
        """Fills ``folder`` (``best/``) from ``result.best``; the folder, or None when there
        is nothing."""

    @abstractmethod
    def plan(self, config: SweepConfig) -> list[str]:
        """What runs, in the lines of ``validate`` and ``--dry-run``."""

    def notice(self, config: SweepConfig) -> str | None:
        """A line to say before anything runs, if any."""
        return None

    @abstractmethod
    def azure_output(self, config: SweepConfig) -> str | None:
        """The job output that holds a trial's model (None: it declares none)."""

    own_outputs = False
    """Whether a trial's outputs are the user's own, registered as they are when they hold
    no model of the built-in trainer."""
    logs_own_metrics = False
    """Whether a trial logs its metrics to MLflow itself (into its run on the user's tracking
    server, when there is one) rather than the sweep logging its reports."""


class FunctionTrials(TrialKind):
    def check_entry(self, config: SweepConfig, entry: str | TrainFn) -> None:
        from sweep.trainers.trainer_checks import check_trainer

        check_trainer(config, entry)

    def entry(self, config: SweepConfig, sweep_dir: Path, given: str | TrainFn) -> str | TrainFn:
        return given

    def code(self, config: SweepConfig) -> Path | None:
        return None

    def as_started(
        self, config: SweepConfig, data: dict[str, Any], sweep_dir: Path
    ) -> dict[str, Any]:
        return data

    def keep_best(
        self, config: SweepConfig, result: SweepResult, folder: Path | None = None
    ) -> Path | None:
        from sweep.model.best_model import keep_best

        return keep_best(config, result, folder)

    def plan(self, config: SweepConfig) -> list[str]:
        return [
            f"  trainer: {config.trainer.entry} "
            + " ".join(f"{k}={v}" for k, v in config.trainer.args.items())
        ]

    def azure_output(self, config: SweepConfig) -> str | None:
        return "model"


class CommandTrials(TrialKind):
    own_outputs = True
    logs_own_metrics = True

    def check_entry(self, config: SweepConfig, entry: str | TrainFn) -> None:
        from sweep.trainers.command_sweep import check_command

        check_command(config)

    def entry(self, config: SweepConfig, sweep_dir: Path, given: str | TrainFn) -> str | TrainFn:
        from sweep.trainers.command_sweep import command_trainer

        return command_trainer(config, sweep_dir)

    def code(self, config: SweepConfig) -> Path | None:
        assert config.command is not None
        return config.command.code

    def as_started(
        self, config: SweepConfig, data: dict[str, Any], sweep_dir: Path
    ) -> dict[str, Any]:
        from sweep.trainers.command_sweep import as_started

        return as_started(config, data, sweep_dir)

    def keep_best(
        self, config: SweepConfig, result: SweepResult, folder: Path | None = None
    ) -> Path | None:
        from sweep.model.best_model import keep_best_outputs

        return keep_best_outputs(config, result, folder)

    def plan(self, config: SweepConfig) -> list[str]:
        trial = config.command
        assert trial is not None
        lines = [f"  command: {trial.command}", f"  code: {trial.code or '(none)'}"]
        if trial.distribution is not None:
            lines.append(
                f"  distribution: {trial.distribution.type}, "
                f"{trial.distribution.processes} processes per trial"
            )
        return lines

    def notice(self, config: SweepConfig) -> str | None:
        assert config.command is not None
        env = config.command.environment
        # The file's environment is not what runs here: say so before anything runs. A
        # command that installs packages (a job file's `pip install … && python …`, meant
        # for Azure ML's fresh container) installs them into it, at every trial.
        installs = _INSTALLS.search(config.command.command)
        return (
            f"trials run their command in this Python environment ({sys.executable})"
            + (
                f"; trial.environment ({env if isinstance(env, str) else 'inline'}) is "
                "used on Azure ML only"
                if env
                else ""
            )
            + (
                f"; its '{installs.group(0)}' installs into this environment, at every trial"
                if installs
                else ""
            )
        )

    def azure_output(self, config: SweepConfig) -> str | None:
        assert config.command is not None
        return config.command.outputs[0] if config.command.outputs else None


def trial_kind(config: SweepConfig) -> TrialKind:
    """The kind of the sweep's trials: a command (an Azure ML job file's ``trial``) or a
    trainer function."""
    return CommandTrials() if config.command is not None else FunctionTrials()
