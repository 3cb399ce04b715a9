"""What the coordinator writes in one trial's folder, and how it reads it back to continue.

``params.json`` when the trial starts; per report, the checkpoint first (committed whole,
with the report's metrics in it) and then the line in ``metrics.jsonl``; ``result.json`` at
the end. A trial that continues reconciles the two: its history is cut back to the
checkpoint's epoch, and gets the checkpoint's report back if a crash came between them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweep.errors import SweepError
from sweep.records import layout
from sweep.records.checkpoint_folder import LIVE
from sweep.records.checkpoint_store import CheckpointStore, write_token
from sweep.trials import CheckpointFiles

logger = logging.getLogger(__name__)

FAILURE = "failure.txt"
MAX_REASON = 300
THROUGH_RAY_VAR = "SWEEP_CHECKPOINTS_THROUGH_RAY"
"""Set to 1: every checkpoint's bytes go through Ray, even from a worker on this disk."""


def store_token(sweep_dir: Path) -> str:
    """This coordinator run's token in the sweep's folder (``.token``; not in ``trials/``,
    whose entries stay the trials alone): a worker that reads the same there shares this
    disk and stages its checkpoints in the trial's store; '' (bytes through Ray) with
    ``SWEEP_CHECKPOINTS_THROUGH_RAY``."""
    if os.environ.get(THROUGH_RAY_VAR, "") not in ("", "0"):
        return ""
    return write_token(Path(sweep_dir))


class TrialRecords:
    """The records of trial ``number`` under ``sweep_dir``."""

    def __init__(self, sweep_dir: Path, number: int) -> None:
        self.folder = layout.trial_dir(sweep_dir, number)
        self.checkpoint = CheckpointStore(self.folder)

    def start(self, params: Mapping[str, Any]) -> None:
        # metrics.jsonl comes with the first report: a file made empty here was one more
        # metadata write per trial start (readers take a missing one as no reports).
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / layout.PARAMS).write_text(json.dumps(params, indent=2) + "\n")

    def new_run(self) -> None:
        """The trial starts a run: what an earlier run staged in its store and never sent goes."""
        self.checkpoint.discard_staged()

    def set_params(self, params: Mapping[str, Any]) -> None:
        """The params it trains with from now on (PBT changes them between generations)."""
        (self.folder / layout.PARAMS).write_text(json.dumps(params, indent=2) + "\n")

    def report(
        self, epoch: int, metrics: Mapping[str, Any], checkpoint: CheckpointFiles | None
    ) -> None:
        if checkpoint is not None:
            for note in checkpoint.notes:
                logger.warning("trial %s: checkpoint: %s", self.folder.name, note)
            try:
                self.checkpoint.commit(epoch, metrics, checkpoint)
            except Exception as exc:  # the trial goes on; it would continue from the last one
                logger.warning(
                    "trial %s: checkpoint of epoch %d not kept: %s",
                    self.folder.name,
                    epoch + 1,
                    exc,
                )
        with (self.folder / layout.METRICS).open("a") as f:
            f.write(json.dumps({"epoch": epoch, **metrics}) + "\n")

    def noticed(self, epoch: int, checkpoint: CheckpointFiles, why: str) -> None:
        """A preemption notice's checkpoint: the trial's state after ``epoch`` (its last
        report) and part of the next, kept in place of that report's with its metrics."""
        latest = self.checkpoint.latest()
        metrics = latest.metrics if latest is not None and latest.epoch == epoch else {}
        try:
            self.checkpoint.commit(epoch, metrics, checkpoint)
        except Exception as exc:  # it continues from its last report's instead
            logger.warning("trial %s: the notice's checkpoint not kept: %s", self.folder.name, exc)
            return
        logger.info("trial %s: %s; state saved", self.folder.name, why)

    def finish(self, result: Mapping[str, Any]) -> None:
        (self.folder / layout.RESULT).write_text(json.dumps(result, indent=2, default=str))

    def failed(self, reason: str) -> str:
        """Keeps a failure's whole message in ``failure.txt``; returns it cut to one line of
        a readable length, as the study, ``status`` and the report show it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / FAILURE).write_text(reason + "\n", errors="replace")
        line = " ".join(reason.split())
        if len(line) <= MAX_REASON:
            return line
        return line[: MAX_REASON - 40] + f"… (whole message in {FAILURE})"

    def can_continue(self) -> bool:
        return self.checkpoint.latest() is not None

    def continue_from(self) -> tuple[CheckpointFiles | None, int, list[dict[str, Any]]]:
        """The checkpoint to start from, the epoch after it, and the history up to it."""
        latest = self.checkpoint.latest()
        if latest is None:
            return None, 0, []
        history = [
            r
            for r in layout.read_history(self.folder)
            if isinstance(r.get("epoch"), int) and r["epoch"] <= latest.epoch
        ]
        if latest.epoch >= 0 and (not history or history[-1]["epoch"] != latest.epoch):
            history.append({"epoch": latest.epoch, **latest.metrics})
        (self.folder / layout.METRICS).write_text("".join(json.dumps(r) + "\n" for r in history))
        return self.checkpoint.read(), latest.epoch + 1, history

    def adopt(self, source: TrialRecords) -> tuple[CheckpointFiles, int, list[dict[str, Any]]]:
        """Starts this trial from ``source``'s checkpoint and history (``sweep continue``)."""
        latest = source.checkpoint.latest()
        files = source.checkpoint.read()
        if latest is None or files is None:
            raise SweepError(f"trial {int(source.folder.name)} has no checkpoint any more")
        self.checkpoint.commit(latest.epoch, latest.metrics, files)
        history = [
            r
            for r in layout.read_history(source.folder)
            if isinstance(r.get("epoch"), int) and r["epoch"] <= latest.epoch
        ]
        (self.folder / layout.METRICS).write_text("".join(json.dumps(r) + "\n" for r in history))
        return files, latest.epoch + 1, history

    def copy_checkpoint(self, donor: TrialRecords) -> int:
        """PBT's exploit: ``donor``'s checkpoint becomes this trial's. At the same epoch (a
        synchronous generation) it is committed with this trial's own report of that epoch,
        so its history stays its own; a donor further on (asynchronous PBT) passes on its
        reports since too, and this trial continues from the donor's epoch. The epoch it
        continues after."""
        mine, theirs = self.checkpoint.latest(), donor.checkpoint.latest()
        files = donor.checkpoint.read()
        if mine is None or theirs is None or files is None:
            raise SweepError(
                f"trial {int(donor.folder.name)}'s or trial "
                f"{int(self.folder.name)}'s checkpoint is gone"
            )
        if theirs.epoch <= mine.epoch:
            self.checkpoint.commit(mine.epoch, mine.metrics, files)
            return mine.epoch
        own = [
            r
            for r in layout.read_history(self.folder)
            if isinstance(r.get("epoch"), int) and r["epoch"] <= mine.epoch
        ]
        passed_on = [
            r
            for r in layout.read_history(donor.folder)
            if isinstance(r.get("epoch"), int) and mine.epoch < r["epoch"] <= theirs.epoch
        ]
        self.checkpoint.commit(theirs.epoch, theirs.metrics, files)
        (self.folder / layout.METRICS).write_text(
            "".join(json.dumps(r) + "\n" for r in own + passed_on)
        )
        return theirs.epoch

    def ended(self, *, keep_checkpoint: bool) -> None:
        """The trial will not run again: its working copies go, and its checkpoint too
        unless it is kept."""
        shutil.rmtree(self.folder / LIVE, ignore_errors=True)
        if keep_checkpoint:
            self.checkpoint.discard_staged()
        else:
            self.checkpoint.remove()
