"""The coordinator: Optuna decides (ask, report, prune, tell), a backend executes.

It is the only writer of the study and of the trial folders' records (params.json,
metrics.jsonl, result.json, the committed checkpoint), so the default journal file never
sees two writers and a trial on a remote Ray node still leaves its curve and checkpoint here.

A trial with a checkpoint keeps its number and its history through every interruption: a
crash of the coordinator (then ``resume``), a lost worker or node, a retry after an
exception or a ``trial_timeout`` all continue it from its last report. A trial without one
runs again from its start under a new number, as ``replaces`` records.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from search_spaces import SweepConfig
from search_spaces.env_vars import expand_env
from search_spaces.optuna_form import OptunaSpace
from sweep.backends.base import Backend
from sweep.coordination.endings import Endings
from sweep.coordination.interruptions import Interruptions
from sweep.coordination.listener import Listener, LogProgress
from sweep.coordination.study import batched_writes
from sweep.coordination.warm_start import teach_scheduler
from sweep.errors import SweepInterrupted
from sweep.records import layout
from sweep.records.budget import pending_continues, planned_total, started_so_far
from sweep.records.disk import ModelFiles
from sweep.records.outcomes import feasible, final_values
from sweep.records.shared_study import SharedStudy, beat, quiet_ask, shared
from sweep.records.tracking import NoTracking
from sweep.records.trial_attrs import (
    CONTINUES,
    COORDINATOR,
    LINEAGE,
    NODES,
    PAUSED,
    REASON,
    REPLACES,
    RESTARTS,
    claim,
    current_params,
    nodes_after,
    promoted_from,
    reopen,
)
from sweep.records.trial_records import TrialRecords, store_token
from sweep.scheduling.pausing import paused
from sweep.scheduling.verdicts import (
    CONTINUE,
    Referee,
    Verdict,
    checkpoint_params,
    fixed_epochs,
    pareto_rungs,
    pausing_scheduler,
    planned_epochs,
    what_pauses,
)
from sweep.trials import CheckpointFiles, Failed, Finished, Reported, TrainFn, TrialSpec

logger = logging.getLogger(__name__)

# The journal's records of ended trials wait at most this long in memory (see journal.py).
COMMIT_EVERY_S = 0.25
NO_CHECKPOINT = (
    "{what} pauses a trial and continues it from its checkpoint, and this "
    "trainer wrote none: save its state to params['checkpoint_dir'] each epoch "
    "(README, Checkpoints)"
)


@dataclass
class _Active:
    trial: optuna.Trial
    started: float
    records: TrialRecords
    last_epoch: int = -1
    planned: int | None = None
    """The epochs the trial asked for (``num_epochs``), when its params say."""
    last_value: float | None = None
    verdict: Verdict = CONTINUE
    """The verdict that stopped it, if one did (it ends when its worker says so)."""
    promoted: tuple[int, ...] = ()
    carried: dict[str, object] = field(default_factory=dict)
    """A continued trial's last recorded report: its result where the run that continues it
    reports nothing new (every epoch was done before it stopped)."""

    @property
    def epochs(self) -> int:
        return self.last_epoch + 1


class Coordinator:
    """Runs a sweep's trials on an opened ``backend`` with ``slots`` trials at a time."""

    def __init__(
        self,
        config: SweepConfig,
        study: optuna.Study,
        space: OptunaSpace,
        backend: Backend,
        slots: int,
        sweep_dir: Path,
        *,
        entry: str | TrainFn,
        max_trials: int | None = None,
        only: list[int] | None = None,
        listener: Listener | None = None,
        tracker: NoTracking | None = None,
        calibration: Sequence[FrozenTrial] = (),
    ) -> None:
        """``only``: run just these queued ``sweep continue`` trials (outside the budget),
        nothing else; by default every queued one runs first, then the budget.
        ``tracker``: where trials are logged besides the sweep folder (MLflow).
        ``calibration``: the warm start's earlier trials, for a forecast that promotes."""
        self.config, self.study, self.space, self.backend = config, study, space, backend
        self.sweep_dir = sweep_dir
        self.entry = entry
        self.store_token = ""
        """This run's token in the sweep's ``.token``: a worker that reads it there shares this
        disk and stages its checkpoints in the store ('' : bytes through Ray)."""
        self.listener: Listener = listener or LogProgress()
        self.tracker = tracker or NoTracking()
        self.metric = config.objective.primary_metric
        self.only = only is not None
        self.total = 0 if self.only else planned_total(config, space, max_trials)
        self.slots = slots
        self.active: dict[int, _Active] = {}
        self.shared = SharedStudy(study) if shared(study._storage) else None
        self.fixed_epochs = fixed_epochs(config)
        self.referee = Referee(
            study,
            self.metric,
            several_objectives=config.multi_objective,
            pausing=pausing_scheduler(config, space),
            objectives=[goal.primary_metric for goal in config.goals],
            pareto=pareto_rungs(config),
            constraints=config.constraints,
        )
        self.scheduler = self.referee.pausing
        teach_scheduler(self.scheduler, calibration)
        self._commit: Callable[[], None] = lambda: None
        self._committed = 0.0
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        self.model_files = ModelFiles(
            sweep_dir,
            config.keep,
            maximize=config.maximizes,
            completed=[(t.number, list(t.values)) for t in done if feasible(t)],
        )
        self.endings = Endings(
            study,
            sweep_dir,
            self.model_files,
            self.tracker,
            self.listener,
            retries=config.trainer.retries,
        )
        self.endings.outside.extend(
            only if only is not None else pending_continues(study.get_trials(deepcopy=False))
        )
        self.to_continue = self.endings.to_continue
        """Trials that continue from their checkpoints under their own numbers, and why."""
        self.outside = self.endings.outside
        """Queued ``sweep continue`` trials to start before the budget's, by number."""
        self.interruptions = Interruptions(study, backend, sweep_dir, self.shared, self.endings)

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Runs trials until the budget, the timeout or Ctrl-C; the study then holds them all."""
        if self.config.keep.checkpoints != "none":
            self.store_token = store_token(self.sweep_dir)
        try:
            with batched_writes(self.study) as self._commit:
                self._loop()
        finally:
            self.backend.close()

    def _loop(self) -> None:
        if not self.only:
            self.interruptions.take_over_interrupted()
        deadline = (
            time.monotonic() + self.config.limits.timeout
            if self.config.limits.timeout
            else math.inf
        )
        counted = started_so_far(self.study)
        try:
            while True:
                if self.shared is not None and len(self.active) < self.slots:
                    counted = started_so_far(self.study)  # others spend the budget too
                while len(self.active) < self.slots and time.monotonic() < deadline:
                    if self.to_continue:
                        self._continue(*self.to_continue.pop(0))
                    elif self.outside:
                        self._launch(self.outside.pop(0))
                    elif self.only:
                        break
                    elif self._schedule(launched_all=counted >= self.total):
                        continue
                    elif counted < self.total:
                        self._launch()
                        counted += 1
                    else:
                        break
                if not self.active:
                    if (
                        self.shared is None
                        or not self.shared.others_running()
                        or time.monotonic() >= deadline
                    ):
                        break
                    time.sleep(0.5)  # another coordinator's trials: wait for their ends
                if self.shared is not None:
                    self.interruptions.claim_stale(self.active)
                for event in self.backend.poll(timeout=0.5):
                    if isinstance(event, Reported):
                        self._on_report(event)
                    elif isinstance(event, Finished):
                        counted -= self._on_finished(event)
                    else:
                        counted -= self._on_failed(event)
                counted -= self._enforce_timeouts(deadline)
                # The batch's records, after its answers went out; trivial trials end every
                # few ms, so at most every COMMIT_EVERY_S (a launch commits too).
                if time.monotonic() - self._committed >= COMMIT_EVERY_S:
                    self._commit_now()
        except KeyboardInterrupt:
            stopped = self.interruptions.stop_all_for_resume(self.active)
            raise SweepInterrupted(
                f"interrupted: {stopped} running trials stopped (those with a checkpoint "
                f"continue from it, the others run again); continue with: "
                f"sweep resume {self.config.name}"
            ) from None
        for number, _ in self.to_continue:  # the sweep's timeout came first
            self.endings.give_up(
                number, f"stopped: the sweep's timeout ({self.config.limits.timeout:g} s) passed"
            )
        if not self.only:
            self._end_the_paused()

    def _commit_now(self) -> None:
        self._commit()
        self._committed = time.monotonic()

    # -- starting ---------------------------------------------------------------------------

    def _launch(self, number: int | None = None) -> None:
        """Starts the next trial: queued trial ``number``, or the sampler's next one."""
        if number is not None:
            claimed = claim(self.study, number, self.space.distributions())
            if claimed is None:
                return  # started or ended by someone else meanwhile
            trial = claimed
            if self.shared is not None:
                trial.set_user_attr(COORDINATOR, self.shared.me)
                beat(self.study, [trial._trial_id])
        elif self.shared is None:
            trial = self.study.ask(self.space.distributions())
        else:
            trial = quiet_ask(self.study, self.space.distributions())
            trial.set_user_attr(COORDINATOR, self.shared.me)
            beat(self.study, [trial._trial_id])
            if self.shared.over_budget(trial.number, self.total):
                trial.set_user_attr(REASON, "not run: other coordinators reached the budget")
                trial.set_user_attr(REPLACES, trial.number)  # counts for nothing
                self.study.tell(trial, state=TrialState.FAIL)
                return
        params = current_params(trial, self.space.decode)
        records = TrialRecords(self.sweep_dir, trial.number)
        records.start(params)
        checkpoint, first_epoch = None, 0
        source = trial.user_attrs.get(CONTINUES)
        if source is not None:  # sweep continue: from another trial's last checkpoint
            checkpoint, first_epoch, history = records.adopt(
                TrialRecords(self.sweep_dir, int(source))
            )
            self._report_history(trial, history, {})
        self._commit_now()  # a trial is on disk before it runs
        self._start(trial, records, params, checkpoint, first_epoch)
        self.listener.trial_started(trial.number, params)

    def _report_history(
        self, trial: optuna.Trial, history: list[dict[str, object]], known: dict[int, float]
    ) -> None:
        """Tells the study the reports in ``history`` it does not know yet."""
        if self.config.multi_objective:
            return  # Optuna keeps no per-epoch values for several objectives
        for record in history:
            value, epoch = record.get(self.metric), record["epoch"]
            if (
                isinstance(epoch, int)
                and epoch not in known
                and isinstance(value, int | float)
                and math.isfinite(value)
            ):
                trial.report(float(value), epoch)

    def _continue(self, number: int, why: str) -> None:
        """Starts trial ``number`` again from its checkpoint, under its own number."""
        frozen = self.study.get_trials(deepcopy=False)[number]
        trial = reopen(self.study, number)
        records = TrialRecords(self.sweep_dir, number)
        checkpoint, first_epoch, history = records.continue_from()
        # Reports that reached the checkpoint but not the journal (its last batch, lost
        # with a killed coordinator): the pruner sees every epoch once.
        self._report_history(trial, history, dict(frozen.intermediate_values))
        trial.set_user_attr(RESTARTS, int(frozen.user_attrs.get(RESTARTS, 0)) + 1)
        params = current_params(frozen, self.space.decode)
        records.set_params(params)
        active = self._start(trial, records, params, checkpoint, first_epoch)
        active.promoted = tuple(promoted_from(frozen))
        value = history[-1].get(self.metric) if history else None
        active.last_value = float(value) if isinstance(value, int | float) else None
        active.carried = {k: v for k, v in history[-1].items() if k != "epoch"} if history else {}
        notify = getattr(self.listener, "trial_continued", None)
        if callable(notify):
            notify(number, first_epoch, why)

    def _start(
        self,
        trial: optuna.Trial,
        records: TrialRecords,
        params: dict[str, object],
        checkpoint: CheckpointFiles | None,
        first_epoch: int,
    ) -> _Active:
        # Absolute: a worker may start elsewhere (a cluster node in its runtime_env's folder).
        where = records.folder.resolve()
        call_params = {
            **self.config.trainer.args,
            "output_dir": str(where / layout.OUTPUTS),
            **params,
        }
        # A command trial's script logs into its run on the tracking server itself.
        call_params.update(self.tracker.trial_started(trial.number, params))
        planned = planned_epochs(call_params, self.fixed_epochs)
        if self.config.keep.checkpoints != "none":
            call_params.update(
                checkpoint_params(self.config, self.scheduler, trial.number, planned)
            )
            records.new_run()
        self.backend.start(
            TrialSpec(
                trial.number,
                call_params,
                self.entry,
                str(where),
                checkpoint,
                first_epoch,
                checkpoints=self.config.keep.checkpoints != "none",
                max_checkpoint_bytes=self.config.keep.max_checkpoint_bytes,
                env=expand_env(self.config.trainer.env),
                store_token=self.store_token,
            )
        )
        active = _Active(
            trial,
            time.monotonic(),
            records,
            last_epoch=first_epoch - 1,
            planned=planned,
        )
        self.active[trial.number] = active
        self.endings.live[trial.number] = trial
        return active

    # -- events -----------------------------------------------------------------------------

    def _on_report(self, event: Reported) -> None:
        active = self.active.get(event.number)
        if active is None:  # a trial we already ended (timed out) still talking
            TrialRecords(self.sweep_dir, event.number).checkpoint.discard(event.checkpoint)
            return
        if event.node:  # a run's first report: where it runs
            nodes = nodes_after(active.trial.user_attrs, event.node)
            if nodes is not None:
                active.trial.set_user_attr(NODES, nodes)
        if event.notice:
            # Not an epoch: the state a preemption notice found, newer than the last report;
            # the trial ends lost next and continues from it.
            if event.checkpoint is not None:
                active.records.noticed(active.last_epoch, event.checkpoint, event.notice)
            self.backend.answer(event.number, False)
            return
        if event.epoch <= active.last_epoch:
            # An epoch it reported before: a trainer that ignored its checkpoint and started
            # over. Its history and the pruner keep the first report of each epoch.
            self.backend.answer(event.number, False)
            active.records.checkpoint.discard(event.checkpoint)
            return
        active.last_epoch = event.epoch
        active.carried = {}
        value = event.metrics.get(self.metric)
        verdict = self.referee.judge(
            active.trial, event.epoch, value, active.planned, active.promoted, event.metrics
        )
        if verdict.action != "fail" and isinstance(value, int | float):
            active.last_value = float(value)
        if verdict.stops:
            active.verdict = verdict
        self.backend.answer(event.number, verdict.stops)
        # After the answer: the trial trains its next epoch while its checkpoint is written
        # (the files are in memory already). A crash before the commit costs this epoch's
        # report, so the trial reruns this one epoch; the trial never waits for the disk.
        active.records.report(event.epoch, event.metrics, event.checkpoint)
        self.tracker.trial_reported(event.number, event.epoch, event.metrics)
        self.listener.trial_reported(
            event.number, event.epoch, float(value) if isinstance(value, int | float) else None
        )

    def _on_finished(self, event: Finished) -> int:
        """Ends the trial as its verdict and its result say; returns 1 when it will run again
        under a new number (no longer counted)."""
        active = self.active.pop(event.number, None)
        if active is None:
            return 0
        active.records.finish(event.result)
        number, verdict = event.number, active.verdict
        if verdict.action == "fail":
            return self.endings.after_failure(number, verdict.reason, epochs=active.epochs)
        if verdict.action == "pause":
            return self._pause(active, verdict.rung)
        if verdict.action == "stop":
            self.endings.prune(
                number, verdict.reason, epochs=active.epochs, value=active.last_value
            )
            return 0
        values, problem = final_values(self.config, {**active.carried, **event.result})
        if problem:
            return self.endings.after_failure(number, problem, epochs=active.epochs)
        self.endings.complete(
            number,
            [values[o.primary_metric] for o in self.config.goals],
            epochs=active.epochs,
            constraints={str(c): c.violation(values[c.metric]) for c in self.config.constraints},
        )
        return 0

    def _pause(self, active: _Active, rung: int) -> int:
        """The trial waits at its rung, RUNNING in the study, its checkpoint kept, until its
        scheduler continues it or the sweep ends."""
        if not active.records.can_continue():
            return self.endings.after_failure(
                active.trial.number,
                NO_CHECKPOINT.format(what=what_pauses(self.config)),
                epochs=active.epochs,
            )
        active.trial.set_user_attr(PAUSED, rung)
        logger.info("trial %d paused at %s epochs", active.trial.number, rung)
        return 0

    def _schedule(self, *, launched_all: bool) -> bool:
        """Continues the paused trials the scheduler picks now, if any (before new ones)."""
        if self.scheduler is None:
            return False
        trials = self.study.get_trials(deepcopy=False)
        moves = self.scheduler.moves(trials, self.active.keys(), launched_all)
        for move in moves:
            trial = reopen(self.study, move.number)
            attrs = dict(move.attrs)
            if move.donor is not None:  # PBT's exploit: continue from the donor's state
                after = TrialRecords(self.sweep_dir, move.number).copy_checkpoint(
                    TrialRecords(self.sweep_dir, move.donor)
                )
                lineage = attrs.get(LINEAGE)
                if lineage and after + 1 > lineage[-1]["epoch"]:  # a donor further on
                    lineage[-1] = {**lineage[-1], "continued_at": after + 1}
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
        # Only when every decision is written: a crash before this repeats the generation.
        for move in moves:
            reopen(self.study, move.number).set_user_attr(PAUSED, 0)
            self.to_continue.append((move.number, move.why))
        return bool(moves)

    def _end_the_paused(self) -> None:
        """Nothing can run any more: trials still paused stop where they are."""
        if self.scheduler is None or self.active:
            return
        for number, rung in paused(self.study.get_trials(deepcopy=False)).items():
            self.endings.prune(number, self.scheduler.why_left(rung), epochs=rung)

    def _on_failed(self, event: Failed) -> int:
        active = self.active.pop(event.number, None)
        if active is None:
            return 0
        return self.endings.after_failure(
            event.number,
            event.reason,
            epochs=active.epochs,
            lost=event.lost,
            preempted=event.preempted,
        )

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
            if now >= deadline:
                self.active.pop(number)
                self.endings.give_up(number, reason, epochs=active.epochs)
                continue
            freed += self._on_failed(Failed(number, reason))
        return freed
