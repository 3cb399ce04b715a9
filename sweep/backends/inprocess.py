"""Trials as threads of the coordinator's own process: no start-up cost, for tests and debugging.

A thread cannot be killed: a cancelled trial that is inside its report call stops at once;
one busy computing is abandoned (its events are dropped) and ends when it next reports.
"""

from __future__ import annotations

import os
import queue
import threading

from search_spaces import Resources
from sweep.backends.base import Backend
from sweep.errors import SweepInputError, TrialFailed, TrialLost, TrialPreempted
from sweep.trainers.runner import run_trial
from sweep.trials import CheckpointFiles, Event, Failed, Finished, Reported, TrialSpec


class _Cancelled(BaseException):
    """Raised inside a cancelled trial's thread; BaseException so trainers don't swallow it."""


class _Session:
    """One sweep's trials: what a backend reused for another sweep starts afresh (a trial
    thread abandoned by the last sweep still holds its own and can reach no other)."""

    def __init__(self) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.answers: dict[int, queue.Queue[bool | None]] = {}
        self.cancelled: set[int] = set()
        self.lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self.lock:
            if event.number not in self.cancelled:
                self.events.put(event)


class InProcessBackend(Backend):
    def __init__(self) -> None:
        self._session = _Session()

    def open(self, resources: Resources, parallel: int | None) -> int:
        if resources.workers_per_trial > 1:
            raise SweepInputError(
                "resources.workers_per_trial: data-parallel trials need processes; use a Ray "
                "compute (local or ray://…), not the in-process backend"
            )
        # The same object may run one sweep after another (a notebook): trial numbers start
        # at 0 again, and the last sweep's cancellations must not cancel them.
        self._session = _Session()
        return parallel or max(1, int((os.cpu_count() or 1) // resources.cpus_per_trial))

    def start(self, spec: TrialSpec) -> None:
        session = self._session
        session.answers[spec.number] = queue.Queue()
        thread = threading.Thread(
            target=self._run, args=(spec, session), daemon=True, name=f"trial-{spec.number}"
        )
        thread.start()

    @staticmethod
    def _run(spec: TrialSpec, session: _Session) -> None:
        number = spec.number

        def report(
            epoch: int,
            metrics: dict[str, float],
            checkpoint: CheckpointFiles | None,
            notice: str = "",
        ) -> bool:
            if number in session.cancelled:
                raise _Cancelled
            session.emit(Reported(number, epoch, dict(metrics), checkpoint, notice))
            stop = session.answers[number].get()
            if stop is None:
                raise _Cancelled
            return stop

        try:
            result = run_trial(spec, report, capture_output=False)
        except _Cancelled:
            return
        except TrialFailed as exc:
            preempted = isinstance(exc, TrialPreempted)
            session.emit(
                Failed(number, str(exc), lost=isinstance(exc, TrialLost), preempted=preempted)
            )
            return
        session.emit(Finished(number, result))

    def poll(self, timeout: float) -> list[Event]:
        events = self._session.events
        try:
            got = [events.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                got.append(events.get_nowait())
            except queue.Empty:
                return got

    def answer(self, number: int, stop: bool) -> None:
        self._session.answers[number].put(stop)

    def cancel(self, number: int) -> None:
        session = self._session
        with session.lock:
            session.cancelled.add(number)
        session.answers[number].put(None)

    def close(self) -> None:
        for number in list(self._session.answers):
            if number not in self._session.cancelled:
                self.cancel(number)
