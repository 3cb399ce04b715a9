"""Command trials: an Azure ML ``trial.command`` run as processes, its MLflow metrics reported.

A ``CommandTrainer`` is an ordinary trainer (``fn(params, report) -> metrics``), so every
backend runs it as it runs a function: in-process, on a local Ray or on a Ray cluster.
"""

from __future__ import annotations

from sweep.trainers.command_trial.substitute import expand_command
from sweep.trainers.command_trial.trainer import CommandTrainer

__all__ = ["CommandTrainer", "expand_command"]
