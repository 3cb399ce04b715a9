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
from sweep.errors import SweepInputError, TrialFailed, TrialLost
from sweep.trainers.runner import run_trial
from sweep.trials import CheckpointFiles, Event, Failed, Finished, Reported, TrialSpec


class _Cancelled(BaseException):
    """Raised inside a cancelled trial's thread; BaseException so trainers don't swallow it."""


class InProcessBackend(Backend):
    def __init__(self) -> None:
        self._events: queue.Queue[Event] = queue.Queue()
        self._answers: dict[int, queue.Queue[bool | None]] = {}
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()

    def open(self, resources: Resources, parallel: int | None) -> int:
        if resources.workers_per_trial > 1:
            raise SweepInputError(
                "resources.workers_per_trial: data-parallel trials need processes; use a Ray "
                "compute (local or ray://…), not the in-process backend"
            )
        return parallel or max(1, int((os.cpu_count() or 1) // resources.cpus_per_trial))

    def start(self, spec: TrialSpec) -> None:
        self._answers[spec.number] = queue.Queue()
        thread = threading.Thread(
            target=self._run, args=(spec,), daemon=True, name=f"trial-{spec.number}"
        )
        thread.start()

    def _run(self, spec: TrialSpec) -> None:
        number = spec.number

        def report(
            epoch: int, metrics: dict[str, float], checkpoint: CheckpointFiles | None
        ) -> bool:
            if number in self._cancelled:
                raise _Cancelled
            self._emit(Reported(number, epoch, dict(metrics), checkpoint))
            stop = self._answers[number].get()
            if stop is None:
                raise _Cancelled
            return stop

        try:
            result = run_trial(spec, report, capture_output=False)
        except _Cancelled:
            return
        except TrialFailed as exc:
            self._emit(Failed(number, str(exc), lost=isinstance(exc, TrialLost)))
            return
        self._emit(Finished(number, result))

    def _emit(self, event: Event) -> None:
        with self._lock:
            if event.number not in self._cancelled:
                self._events.put(event)

    def poll(self, timeout: float) -> list[Event]:
        try:
            events = [self._events.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def answer(self, number: int, stop: bool) -> None:
        self._answers[number].put(stop)

    def cancel(self, number: int) -> None:
        with self._lock:
            self._cancelled.add(number)
        self._answers[number].put(None)

    def close(self) -> None:
        for number in list(self._answers):
            if number not in self._cancelled:
                self.cancel(number)
