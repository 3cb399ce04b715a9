"""What the coordinator does when a sweep is interrupted or taken over: Ctrl-C stops every
trial for ``resume``; at start, trials a dead coordinator left RUNNING continue from their
checkpoints (or run again from their start); in a shared study, trials of coordinators whose
heartbeat stopped run again here. A mixin of ``Coordinator``: these share its state."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from sweep.backends.base import Backend
from sweep.budget import ATTEMPT, CONTINUES, EPOCHS, REASON, REPLACES, carried, enqueue
from sweep.listener import Listener
from sweep.pausing import PAUSED
from sweep.shared_study import COORDINATOR, SharedStudy
from sweep.trial_records import TrialRecords

logger = logging.getLogger(__name__)


class Interruptions:
    study: optuna.Study
    backend: Backend
    active: dict[int, Any]
    sweep_dir: Path
    shared: SharedStudy | None
    to_continue: list[tuple[int, str]]
    outside: list[int]
    listener: Listener

    def _ended(self, records: TrialRecords, number: int, value: float | None,
               state: str = "FAIL", reason: str = "", *,
               values: list[float] | None = None) -> None:
        """The coordinator's: what a trial's end does to its files and its tracked run."""
        raise NotImplementedError

    def _stop_all_for_resume(self) -> int:
        """Ctrl-C: trials with a checkpoint stay RUNNING in the study (``resume`` continues
        them); the others fail and are queued to run again from their start."""
        stopped = 0
        for number, active in list(self.active.items()):
            self.backend.cancel(number)
            active.trial.set_user_attr(EPOCHS, active.epochs)
            if not active.records.can_continue():
                reason = "interrupted; queued to run again"
                active.trial.set_user_attr(REASON, reason)
                self.study.tell(active.trial, state=TrialState.FAIL)
                # Its files go as keep says, its tracked run ends: as every failed trial.
                self._ended(active.records, number, None, "FAIL", reason)
                self.listener.trial_ended(number, "FAIL", None, reason)
                attrs = self.study.get_trials(deepcopy=False)[number].user_attrs
                enqueue(self.study, active.trial.params, {
                    REPLACES: number, ATTEMPT: int(attrs.get(ATTEMPT, 0)), **carried(attrs)})
            stopped += 1
        self.active.clear()
        return stopped

    def _claim_stale(self) -> None:
        """Trials of coordinators that died (shared studies): run again here, once."""
        assert self.shared is not None
        for t in self.shared.tick([a.trial._trial_id for a in self.active.values()],
                                  time.monotonic()):
            if t.number in self.active:  # our own: this loop stalled past the grace period
                self.backend.cancel(t.number)
                self.active.pop(t.number)
            records = TrialRecords(self.sweep_dir, t.number)
            attrs = {REPLACES: t.number, ATTEMPT: int(t.user_attrs.get(ATTEMPT, 0))}
            if records.can_continue():  # its checkpoint is on this coordinator's disk
                attrs[CONTINUES] = t.number
            self.study.enqueue_trial(t.params, user_attrs=attrs)
            logger.info("trial %d: its coordinator (%s) stopped; it runs again here", t.number,
                        t.user_attrs.get(COORDINATOR, "?"))

    def _take_over_interrupted(self) -> None:
        """Trials left RUNNING by a coordinator that died or was stopped: those with a
        checkpoint continue from it; the others fail and are queued to run again. (In a
        shared study, RUNNING trials may be another live coordinator's: only those whose
        heartbeat stopped are taken, by ``_claim_stale``.)"""
        if self.shared is not None:
            return
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get(PAUSED):
                continue  # waiting at a rung (pausing.py), not interrupted
            records = TrialRecords(self.sweep_dir, t.number)
            if records.can_continue():
                self.to_continue.append((t.number, "the sweep was interrupted"))
                continue
            self.study.tell(t.number, state=TrialState.FAIL)
            self._ended(records, t.number, None, "FAIL", "interrupted; runs again")
            again = enqueue(self.study, t.params, {
                REPLACES: t.number, ATTEMPT: int(t.user_attrs.get(ATTEMPT, 0)),
                **carried(t.user_attrs)})
            if CONTINUES in t.user_attrs:
                self.outside.append(again)
            logger.info("trial %d was interrupted; it will run again", t.number)
