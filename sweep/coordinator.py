"""The coordinator: Optuna decides (ask, report, prune, tell), a backend executes.

It is the only writer of the study and of the trial folders' records (params.json,
metrics.jsonl, result.json), so the default journal file never sees two writers and a
trial on a remote Ray node still leaves its curve here.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState

from search_spaces import SweepConfig
from search_spaces.optuna_form import OptunaSpace
from sweep import layout
from sweep.backends.base import Backend
from sweep.disk import ModelFiles
from sweep.errors import SweepInterrupted
from sweep.layout import trial_dir
from sweep.pruners import prune_reason
from sweep.study import batched_writes
from sweep.trials import Finished, Reported, TrainFn, TrialSpec

logger = logging.getLogger(__name__)

# The journal's records of ended trials wait at most this long in memory (see journal.py).
COMMIT_EVERY_S = 0.25
# User attributes the coordinator keeps on each Optuna trial.
REASON, REPLACES, ATTEMPT, EPOCHS = "reason", "replaces", "attempt", "epochs"


class Listener(Protocol):
    """Whoever shows progress (the CLI's live view); every method is optional to act on."""

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None: ...
    def trial_reported(self, number: int, epoch: int, value: float | None) -> None: ...
    def trial_ended(self, number: int, state: str, value: float | None, reason: str) -> None: ...


class LogProgress:
    """The library's default listener: progress as log records (INFO, epochs at DEBUG), shown
    wherever the caller's logging configuration sends them; nothing is printed."""

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None:
        logger.info("trial %d started: %s", number,
                    ", ".join(f"{k}={v}" for k, v in params.items()))

    def trial_reported(self, number: int, epoch: int, value: float | None) -> None:
        logger.debug("trial %d epoch %d: %s", number, epoch + 1, value)

    def trial_ended(self, number: int, state: str, value: float | None, reason: str) -> None:
        logger.info("trial %d %s%s%s", number, state.lower(),
                    f" with {value:.4g}" if value is not None else "",
                    f": {reason}" if reason else "")


@dataclass
class _Active:
    trial: optuna.Trial
    started: float
    epochs: int = 0
    last_value: float | None = None
    pruned: str | None = None
    failure: str | None = None


def replaced_numbers(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Trials that were re-run under another number (retried or interrupted): not counted."""
    return {t.user_attrs[REPLACES] for t in trials if REPLACES in t.user_attrs}


def planned_total(config: SweepConfig, space: OptunaSpace, max_trials: int | None) -> int:
    """How many trials the sweep runs in all: the budget, or the whole grid if smaller."""
    total = max_trials or config.limits.max_total_trials
    if config.sampling_algorithm.type == "grid":
        total = min(total, math.prod(len(v) for v in space.grid().values()))
    return total


def trials_left(study: optuna.Study, total: int) -> int:
    """Trials a resume would still run: the budget minus those that count, where a trial
    left RUNNING by a dead coordinator runs again under a new number."""
    trials = study.get_trials(deepcopy=False)
    replaced = replaced_numbers(trials)
    counted = sum(1 for t in trials if t.state not in (TrialState.WAITING, TrialState.RUNNING)
                  and t.number not in replaced)
    return max(total - counted, 0)


class Coordinator:
    """Runs a sweep's trials on an opened ``backend`` with ``slots`` trials at a time."""

    def __init__(self, config: SweepConfig, study: optuna.Study, space: OptunaSpace,
                 backend: Backend, slots: int, sweep_dir: Path, *, entry: str | TrainFn,
                 max_trials: int | None = None, listener: Listener | None = None) -> None:
        self.config, self.study, self.space, self.backend = config, study, space, backend
        self.sweep_dir = sweep_dir
        self.entry = entry
        self.listener: Listener = listener or LogProgress()
        self.metric = config.objective.primary_metric
        self.total = planned_total(config, space, max_trials)
        self.slots = slots
        self.active: dict[int, _Active] = {}
        self._commit: Callable[[], None] = lambda: None
        self._committed = 0.0
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        self.model_files = ModelFiles(sweep_dir, config.keep, maximize=config.direction ==
                                      "maximize", completed=[(t.number, float(t.value or 0))
                                                             for t in done])

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Runs trials until the budget, the timeout or Ctrl-C; the study then holds them all."""
        try:
            with batched_writes(self.study) as self._commit:
                self._loop()
        finally:
            self.backend.close()

    def _loop(self) -> None:
        self._requeue_interrupted()
        slots = self.slots
        deadline = (time.monotonic() + self.config.limits.timeout
                    if self.config.limits.timeout else math.inf)
        counted = self._counted()
        try:
            while True:
                while (len(self.active) < slots and counted < self.total
                       and time.monotonic() < deadline):
                    self._launch()
                    counted += 1
                if not self.active:
                    break
                for event in self.backend.poll(timeout=0.5):
                    if isinstance(event, Reported):
                        self._on_report(event)
                    elif isinstance(event, Finished):
                        counted -= self._on_finished(event)
                    else:
                        counted -= self._on_failed(event.number, event.reason)
                counted -= self._enforce_timeouts(deadline)
                # The batch's records, after its answers went out; trivial trials end every
                # few ms, so at most every COMMIT_EVERY_S (a launch commits too).
                if time.monotonic() - self._committed >= COMMIT_EVERY_S:
                    self._commit_now()
        except KeyboardInterrupt:
            stopped = self._stop_all_for_resume()
            raise SweepInterrupted(
                f"interrupted: {stopped} running trials stopped and queued to run again; "
                f"continue with: sweep resume {self.config.name}"
            ) from None

    def _commit_now(self) -> None:
        self._commit()
        self._committed = time.monotonic()

    def _counted(self) -> int:
        trials = self.study.get_trials(deepcopy=False)
        replaced = replaced_numbers(trials)
        return sum(
            1 for t in trials if t.state != TrialState.WAITING and t.number not in replaced
        )

    # -- starting ---------------------------------------------------------------------------

    def _launch(self) -> None:
        trial = self.study.ask(self.space.distributions())
        params = self.space.decode(trial.params)
        folder = trial_dir(self.sweep_dir, trial.number)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / layout.PARAMS).write_text(json.dumps(params, indent=2) + "\n")
        (folder / layout.METRICS).write_text("")
        # Absolute: a worker may start elsewhere (a cluster node in its runtime_env's folder).
        where = folder.resolve()
        call_params = {**self.config.trainer.args, "output_dir": str(where / layout.OUTPUTS),
                       **params}
        self._commit_now()  # a trial is on disk before it runs
        self.backend.start(TrialSpec(trial.number, call_params, self.entry, str(where)))
        self.active[trial.number] = _Active(trial, time.monotonic())
        self.listener.trial_started(trial.number, params)

    # -- events -----------------------------------------------------------------------------

    def _on_report(self, event: Reported) -> None:
        active = self.active.get(event.number)
        if active is None:
            return  # a trial we already ended (timed out) still talking
        folder = trial_dir(self.sweep_dir, event.number)
        with (folder / layout.METRICS).open("a") as f:
            f.write(json.dumps({"epoch": event.epoch, **event.metrics}) + "\n")
        active.epochs = event.epoch + 1
        value = event.metrics.get(self.metric)
        stop = False
        if value is not None:
            if not isinstance(value, int | float) or not math.isfinite(value):
                active.failure = f"{self.metric} is {value} at epoch {event.epoch + 1}"
                stop = True
            else:
                active.last_value = float(value)
                active.trial.report(float(value), event.epoch)
                if active.trial.should_prune():
                    active.pruned = prune_reason(self.study.pruner, event.number, event.epoch)
                    stop = True
        self.backend.answer(event.number, stop)
        self.listener.trial_reported(event.number, event.epoch,
                                     float(value) if isinstance(value, int | float) else None)

    def _on_finished(self, event: Finished) -> int:
        """Tells the study; returns 1 when the trial will run again (no longer counted)."""
        active = self.active.pop(event.number, None)
        if active is None:
            return 0
        folder = trial_dir(self.sweep_dir, event.number)
        (folder / layout.RESULT).write_text(json.dumps(event.result, indent=2, default=str))
        trial = active.trial
        trial.set_user_attr(EPOCHS, active.epochs)
        if active.failure:
            return self._fail(active, active.failure)
        if active.pruned:
            trial.set_user_attr(REASON, active.pruned)
            self.study.tell(trial, state=TrialState.PRUNED)
            self.model_files.ended(trial.number, None)
            self.listener.trial_ended(trial.number, "PRUNED", active.last_value, active.pruned)
            return 0
        value = event.result.get(self.metric)
        if value is None:
            returned = ", ".join(sorted(event.result)) or "nothing"
            return self._fail(active, f"the trainer returned no '{self.metric}' "
                                      f"(the objective's primary_metric); it returned: {returned}")
        if not isinstance(value, int | float) or not math.isfinite(value):
            return self._fail(active, f"{self.metric} is {value!r}")
        self.study.tell(trial, float(value))
        self.model_files.ended(trial.number, float(value))
        self.listener.trial_ended(trial.number, "COMPLETE", float(value), "")
        return 0

    def _on_failed(self, number: int, reason: str) -> int:
        active = self.active.pop(number, None)
        if active is None:
            return 0
        active.trial.set_user_attr(EPOCHS, active.epochs)
        return self._fail(active, reason)

    def _fail(self, active: _Active, reason: str) -> int:
        trial = active.trial
        attempt = int(trial.user_attrs.get(ATTEMPT, 0))
        retry = attempt < self.config.trainer.retries
        trial.set_user_attr(REASON, reason)
        self.study.tell(trial, state=TrialState.FAIL)
        self.model_files.ended(trial.number, None)
        if retry:
            self.study.enqueue_trial(trial.params, user_attrs={REPLACES: trial.number,
                                                               ATTEMPT: attempt + 1})
        self.listener.trial_ended(trial.number, "FAIL", None,
                                  reason + (" (will retry)" if retry else ""))
        return 1 if retry else 0

    def _enforce_timeouts(self, deadline: float) -> int:
        now = time.monotonic()
        limit = self.config.limits.trial_timeout
        freed = 0
        for number, active in list(self.active.items()):
            if limit and now - active.started > limit:
                reason = f"ran past trial_timeout ({limit:g} s)"
            elif now >= deadline:
                reason = f"stopped: the sweep's timeout ({self.config.limits.timeout:g} s) passed"
            else:
                continue
            self.backend.cancel(number)
            freed += self._on_failed(number, reason)
        return freed

    # -- interruption and resume ------------------------------------------------------------

    def _stop_all_for_resume(self) -> int:
        stopped = 0
        for number, active in list(self.active.items()):
            self.backend.cancel(number)
            active.trial.set_user_attr(REASON, "interrupted; queued to run again")
            active.trial.set_user_attr(EPOCHS, active.epochs)
            self.study.tell(active.trial, state=TrialState.FAIL)
            self.study.enqueue_trial(active.trial.params, user_attrs={
                REPLACES: number, ATTEMPT: int(active.trial.user_attrs.get(ATTEMPT, 0))})
            stopped += 1
        self.active.clear()
        return stopped

    def _requeue_interrupted(self) -> None:
        """Trials left RUNNING by a coordinator that died: failed, and queued to run again."""
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(t.number, state=TrialState.FAIL)
            self.study.enqueue_trial(t.params, user_attrs={
                REPLACES: t.number, ATTEMPT: int(t.user_attrs.get(ATTEMPT, 0))})
            logger.info("trial %d was interrupted; it will run again", t.number)

