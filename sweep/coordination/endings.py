"""The one owner of a trial's ending: complete, prune, fail, give up, run again, continue.

Each ending does its effects in one order: the trial's attributes, the study, the trial's
records (its folder), ``keep`` (which model and checkpoint files stay), the tracker (its
MLflow run's end state) and the listener (the live view). Every path that ends a trial goes
through here: a report's verdict, a trainer's exception, a lost worker or node, a timeout,
Ctrl-C, a dead coordinator's trials taken over at start or claimed in a shared study, a
paused trial left at its rung when the sweep ends. So no path can forget an effect.

"Continue" is the ending that is not one: the trial keeps its number and its history, and
starts again from its checkpoint (after a crash, a loss, a retry, a pause).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from search_spaces import clip_message
from sweep.coordination.listener import Listener
from sweep.records.budget import enqueue
from sweep.records.disk import ModelFiles
from sweep.records.tracking import NoTracking
from sweep.records.trial_attrs import (
    ATTEMPT,
    CONTINUES,
    EPOCHS,
    LOSSES,
    PREEMPTIONS,
    REASON,
    REPLACES,
    carried,
    reopen,
)
from sweep.records.trial_records import TrialRecords

logger = logging.getLogger("sweep.coordination.coordinator")

MAX_LOSSES = 3
"""A trial whose worker, node or coordinator is lost this often is failed: a trainer that
takes its process down (out of memory) must not loop for ever."""


class Endings:
    """How the trials of one coordinator's session end. ``to_continue`` and ``outside``
    are the coordinator's queues: trials that continue from their checkpoints under their own
    numbers (and why), and queued ``sweep continue`` trials that run outside the budget."""

    def __init__(
        self,
        study: optuna.Study,
        sweep_dir: Path,
        model_files: ModelFiles,
        tracker: NoTracking,
        listener: Listener,
        *,
        retries: int,
    ) -> None:
        self.study, self.sweep_dir, self.model_files = study, sweep_dir, model_files
        self.tracker, self.listener, self.retries = tracker, listener, retries
        self.to_continue: list[tuple[int, str]] = []
        self.outside: list[int] = []
        self.live: dict[int, optuna.Trial] = {}
        """Handles on the trials this session started (reopening one reads the storage)."""

    def handle(self, number: int) -> optuna.Trial:
        """A live handle on trial ``number``: the coordinator's, else reopened."""
        trial = self.live.get(number)
        return trial if trial is not None else reopen(self.study, number)

    def records(self, number: int) -> TrialRecords:
        return TrialRecords(self.sweep_dir, number)

    # -- endings for good ------------------------------------------------------------------

    def complete(
        self,
        number: int,
        values: list[float],
        *,
        epochs: int,
        constraints: Mapping[str, float] | None = None,
    ) -> None:
        """Completed with ``values`` (one per objective); ``constraints``: each constraint's
        violation (> 0: broken), an infeasible trial keeps no model files."""
        trial = self.live.pop(number, None) or reopen(self.study, number)
        trial.set_user_attr(EPOCHS, epochs)
        for name, violation in (constraints or {}).items():
            trial.set_constraint(name, violation)
        self.study.tell(trial, values)
        broken = [name for name, v in (constraints or {}).items() if v > 0]
        self.records(number).ended(keep_checkpoint=True)
        self.model_files.ended(number, None if broken else values)
        self.tracker.trial_ended(number, "COMPLETE", values[0], "")
        self.listener.trial_ended(
            number, "COMPLETE", values[0], "breaks " + ", ".join(broken) if broken else ""
        )

    def prune(self, number: int, reason: str, *, epochs: int, value: float | None = None) -> None:
        """Stopped by the policy (or left at its rung when the sweep ended)."""
        self._end(number, TrialState.PRUNED, reason, {REASON: reason, EPOCHS: epochs}, value=value)

    def fail(
        self,
        number: int,
        reason: str,
        *,
        epochs: int | None = None,
        told: bool = False,
        said: str = "",
    ) -> None:
        """Failed for good. ``told``: the study knows already (a shared study's claim);
        ``said``: what the live view adds to the reason."""
        records = self.records(number)
        line = records.failed(reason)
        attrs: dict[str, Any] = {REASON: line}
        if epochs is not None:
            attrs[EPOCHS] = epochs
        self._end(number, None if told else TrialState.FAIL, line, attrs, said=said)

    def give_up(self, number: int, reason: str, *, epochs: int | None = None) -> None:
        """A trial that was running or waiting to continue when the sweep's time ran out."""
        self.fail(number, reason, epochs=epochs)

    def run_again(
        self,
        number: int,
        reason: str,
        *,
        epochs: int | None = None,
        told: bool = False,
        attempt: int | None = None,
        lost: bool = False,
        from_checkpoint: bool = False,
        said: str = "",
    ) -> int:
        """Fails trial ``number`` and queues it to run again from its start under a new
        number (``from_checkpoint``: a shared study's trial whose checkpoint is here starts
        from it). ``attempt``: the retries spent (default: as before). Returns 1 when the
        budget counts the new trial (a ``sweep continue`` trial stays outside it)."""
        frozen = self.study.get_trials(deepcopy=False)[number]
        attrs = frozen.user_attrs
        new_attrs: dict[str, Any] = {
            REPLACES: number,
            ATTEMPT: int(attrs.get(ATTEMPT, 0)) if attempt is None else attempt,
            **carried(attrs),
        }
        if lost:
            new_attrs[LOSSES] = int(attrs.get(LOSSES, 0)) + 1
        if from_checkpoint:
            new_attrs[CONTINUES] = number
        self.fail(number, reason, epochs=epochs, told=told, said=said)
        again = enqueue(self.study, frozen.params, new_attrs)
        if CONTINUES in attrs:
            self.outside.append(again)
            return 0
        return 0 if from_checkpoint else 1

    def continue_(self, number: int, reason: str, *, count: str | None = None) -> None:
        """The trial continues from its checkpoint under its own number; ``count``: the
        attribute that counts why (``LOSSES``, ``ATTEMPT``), when it counts."""
        if count is not None:
            attrs = self.study.get_trials(deepcopy=False)[number].user_attrs
            self.handle(number).set_user_attr(count, int(attrs.get(count, 0)) + 1)
        reason = clip_message(" ".join(reason.split()))
        self.to_continue.append((number, reason))
        logger.info("trial %d: %s; it continues from its checkpoint", number, reason)

    # -- the choice after a failure --------------------------------------------------------

    def after_failure(
        self,
        number: int,
        reason: str,
        *,
        epochs: int,
        lost: bool = False,
        preempted: bool = False,
    ) -> int:
        """A trial's trainer failed (``lost``: its worker, node or coordinator died under
        it): it continues from its checkpoint when it has one and may (a loss below
        MAX_LOSSES, or a retry left); else it fails, and runs again under a new number when
        it was lost or has a retry left. Returns 1 when the budget counts a new trial.
        ``preempted``: lost on a notice, its state saved; it continues and counts nothing
        (spot capacity may take a trial many times)."""
        attrs = self.study.get_trials(deepcopy=False)[number].user_attrs
        attempt, losses = int(attrs.get(ATTEMPT, 0)), int(attrs.get(LOSSES, 0))
        if preempted and self.records(number).can_continue():
            self.handle(number).set_user_attr(EPOCHS, epochs)
            self.continue_(number, reason, count=PREEMPTIONS)
            return 0
        if self.records(number).can_continue():
            count = LOSSES if lost and losses < MAX_LOSSES else None
            if count is None and not lost and attempt < self.retries:
                count = ATTEMPT
            if count is not None:
                self.handle(number).set_user_attr(EPOCHS, epochs)  # ending paths set it too
                self.continue_(number, reason, count=count)
                return 0
        elif lost and losses < MAX_LOSSES:
            # Lost before its first checkpoint: placed again from its start, as an
            # interrupted trial is, without spending a retry.
            return self.run_again(number, f"{reason}; runs again", epochs=epochs, lost=True)
        if attempt < self.retries:
            return self.run_again(
                number, reason, epochs=epochs, attempt=attempt + 1, said=" (will retry)"
            )
        self.fail(number, reason, epochs=epochs)
        return 0

    # -- the one sequence ------------------------------------------------------------------

    def _end(
        self,
        number: int,
        state: TrialState | None,
        reason: str,
        attrs: Mapping[str, Any],
        *,
        value: float | None = None,
        said: str = "",
    ) -> None:
        trial = self.live.pop(number, None)
        if state is not None:  # else finished already: Optuna takes no more attributes
            trial = trial or reopen(self.study, number)
            for key, item in attrs.items():
                trial.set_user_attr(key, item)
            self.study.tell(trial, state=state)
        self.records(number).ended(keep_checkpoint=True)
        self.model_files.ended(number, None)
        name = "PRUNED" if state == TrialState.PRUNED else "FAIL"
        self.tracker.trial_ended(number, name, value, reason)
        self.listener.trial_ended(number, name, value, reason + said)
