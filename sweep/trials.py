"""What the coordinator and the backends say to each other about a trial."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from search_spaces.config import Keep

MAX_CHECKPOINT_BYTES = Keep.max_checkpoint_bytes

TrainFn = Callable[[dict[str, Any], Callable[[int, dict[str, float]], bool]], Mapping[str, Any]]
"""A trainer: ``fn(params, report) -> metrics``; ``report(epoch, metrics)`` True means stop."""


class SendReport(Protocol):
    """How a worker sends one report (with its checkpoint's changes) and hears the answer.
    With ``notice`` (a preemption notice, why), no epoch is reported: the checkpoint is the
    state the notice found, newer than the report of ``epoch``."""

    def __call__(
        self,
        epoch: int,
        metrics: dict[str, float],
        checkpoint: CheckpointFiles | None,
        notice: str = "",
    ) -> bool: ...


@dataclass(frozen=True)
class CheckpointFiles:
    """A trial's checkpoint folder in transit between a worker and the coordinator.

    From a worker at a report: the files new or changed since its last report (``changed``)
    and every file the folder holds now (``names``; a name in neither was deleted). From the
    coordinator at a start: the whole folder as of the trial's last report.

    A worker that shares the coordinator's file system copies the changed files into the
    trial's checkpoint store itself (``staged``, a folder there; ``staged_names``, what it
    holds) and sends only names: bytes through Ray cost the trial two more copies and a
    pickle of the whole checkpoint at every report.
    """

    changed: Mapping[str, bytes]
    names: tuple[str, ...]
    notes: tuple[str, ...] = ()
    """What the worker left out of the checkpoint and why (said once each by the coordinator)."""
    staged: str = ""
    """The folder in the trial's checkpoint store that holds ``staged_names`` (none: '')."""
    staged_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrialSpec:
    """One trial to run: who trains, with what, where its files go (what it runs on is the
    backend's, from the resources it was opened with)."""

    number: int
    params: Mapping[str, Any]
    """The sampled parameters merged over the trainer's fixed args and ``output_dir``."""
    entry: str | TrainFn
    trial_dir: str
    checkpoint: CheckpointFiles | None = None
    """The trial's checkpoint folder as of its last report; None: the trial starts afresh."""
    first_epoch: int = 0
    """The epoch the trial's next report is about (the one after its checkpoint's)."""
    checkpoints: bool = True
    """Whether the trainer gets a checkpoint folder (``keep.checkpoints: none``: not)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """``trainer.env``, filled in: set in the trainer's process while the trial runs."""
    max_checkpoint_bytes: int = MAX_CHECKPOINT_BYTES
    """``keep.max_checkpoint_bytes``: files past it are left out of the checkpoint."""
    store_token: str = ""
    """The running coordinator's token (``sweeps/NAME/.token``): a worker that reads the same
    there shares its file system and stages its checkpoints in the trial's store
    (``CheckpointFiles.staged``); '' (or another node's disk): the files go through Ray."""


@dataclass(frozen=True)
class Reported:
    """A trial reported an epoch; the backend waits for ``answer`` before it goes on."""

    number: int
    epoch: int
    metrics: Mapping[str, float]
    checkpoint: CheckpointFiles | None = None
    """What changed in the trial's checkpoint folder since its last report."""
    notice: str = ""
    """Not a report: a preemption notice saved the trial's state after ``epoch`` (where in
    the next epoch it stopped); its checkpoint replaces that epoch's."""
    node: str = ""
    """The node the trial's process runs on, said with the first report of each run (a
    backend that knows nodes: Ray's)."""


@dataclass(frozen=True)
class Finished:
    number: int
    result: Mapping[str, Any]


@dataclass(frozen=True)
class Failed:
    number: int
    reason: str
    lost: bool = False
    """The trial's process or node died, or it was preempted: not the trainer's fault, so a
    trial with a checkpoint continues from it without spending a retry."""
    preempted: bool = False
    """Lost on a preemption notice, its state saved: it continues without counting a loss."""


Event = Reported | Finished | Failed
