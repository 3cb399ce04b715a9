"""What the coordinator does when a sweep is interrupted or taken over: Ctrl-C stops every
trial for ``resume``; at start, trials a dead coordinator left RUNNING continue from their
checkpoints (or run again from their start); in a shared study, trials of coordinators whose
heartbeat stopped run again here. Every trial that ends on these paths ends through
``Endings``, as on every other path."""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from sweep.backends.base import Backend
from sweep.coordination.endings import Endings
from sweep.records.shared_study import SharedStudy
from sweep.records.trial_attrs import COORDINATOR, EPOCHS, paused_at, reopen
from sweep.records.trial_records import TrialRecords

logger = logging.getLogger("sweep.coordination.coordinator")


class Interruptions:
    def __init__(
        self,
        study: optuna.Study,
        backend: Backend,
        sweep_dir: Path,
        shared: SharedStudy | None,
        endings: Endings,
    ) -> None:
        self.study, self.backend, self.sweep_dir = study, backend, sweep_dir
        self.shared, self.endings = shared, endings

    def stop_all_for_resume(self, active: MutableMapping[int, Any]) -> int:
        """Ctrl-C: trials with a checkpoint stay RUNNING in the study (``resume`` continues
        them); the others fail and are queued to run again from their start."""
        stopped = 0
        for number, trial in list(active.items()):
            self.backend.cancel(number)
            if trial.records.can_continue():
                reopen(self.study, number).set_user_attr(EPOCHS, trial.epochs)
            else:
                self.endings.run_again(
                    number, "interrupted; queued to run again", epochs=trial.epochs
                )
            stopped += 1
        active.clear()
        return stopped

    def claim_stale(self, active: MutableMapping[int, Any]) -> None:
        """Trials of coordinators that died (shared studies): run again here, once (from
        their checkpoint when it is on this coordinator's disk)."""
        assert self.shared is not None
        for t in self.shared.tick([a.trial._trial_id for a in active.values()], time.monotonic()):
            if t.number in active:  # our own: this loop stalled past the grace period
                self.backend.cancel(t.number)
                active.pop(t.number)
            owner = t.user_attrs.get(COORDINATOR, "?")
            self.endings.run_again(
                t.number,
                f"its coordinator ({owner}) stopped; it runs again",
                told=True,
                from_checkpoint=TrialRecords(self.sweep_dir, t.number).can_continue(),
            )

    def take_over_interrupted(self) -> None:
        """Trials left RUNNING by a coordinator that died or was stopped: those with a
        checkpoint continue from it; the others fail and are queued to run again. (In a
        shared study, RUNNING trials may be another live coordinator's: only those whose
        heartbeat stopped are taken, by ``claim_stale``.)"""
        if self.shared is not None:
            return
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if paused_at(t):
                continue  # waiting at a rung (pausing.py), not interrupted
            if TrialRecords(self.sweep_dir, t.number).can_continue():
                self.endings.continue_(t.number, "the sweep was interrupted")
            else:
                self.endings.run_again(t.number, "interrupted; runs again")
