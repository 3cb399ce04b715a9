"""Trials on Ray: long-lived worker actors, one per running trial, reused across trials.

Each worker actor asks Ray for the trial's CPUs and GPUs (fractions of a GPU pack several
trials on one card). A trial's reports go to a small hub actor; the coordinator takes them
from there with one long-poll and answers each one, so a pruned trial stops at the end of
the epoch it reported. Ray is imported here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError, RayTaskError

from search_spaces import Resources
from sweep.backends.base import Backend
from sweep.errors import SweepError, TrialFailed
from sweep.runner import run_trial
from sweep.trials import Event, Failed, Finished, Reported, TrialSpec

logger = logging.getLogger(__name__)


@ray.remote(num_cpus=0)
class ReportHub:
    """Holds reports until the coordinator takes them, and each reporter until it is answered."""

    def __init__(self) -> None:
        self._events: list[tuple[int, int, dict[str, float]]] = []
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._new = asyncio.Event()

    async def report(self, number: int, epoch: int, metrics: dict[str, float]) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        self._events.append((number, epoch, metrics))
        self._new.set()
        return await future

    async def take(self, timeout: float) -> list[tuple[int, int, dict[str, float]]]:
        if not self._events:
            try:
                await asyncio.wait_for(self._new.wait(), timeout)
            except TimeoutError:
                pass
        events, self._events = self._events, []
        self._new.clear()
        return events

    async def answer(self, number: int, stop: bool) -> None:
        future = self._waiting.pop(number, None)
        if future is not None and not future.done():
            future.set_result(stop)


@ray.remote
class TrialWorker:
    """A process that runs one trial at a time; torch and the data stay imported between trials."""

    def run(self, spec: TrialSpec, hub: Any) -> tuple[str, Any]:
        # Ray sets OMP_NUM_THREADS to the actor's CPUs, which torch follows when imported.

        def report(epoch: int, metrics: dict[str, float]) -> bool:
            return bool(ray.get(hub.report.remote(spec.number, epoch, metrics)))

        try:
            return "finished", run_trial(spec, report)
        except TrialFailed as exc:
            return "failed", str(exc)


class LocalRayBackend(Backend):
    """A Ray started on this machine on demand (or joined, if this process already has one)."""

    def __init__(self) -> None:
        self._hub: Any = None
        self._idle: list[Any] = []
        self._running: dict[int, tuple[Any, Any]] = {}  # number -> (actor, result ref)
        self._take: Any = None
        self._resources = Resources()

    def connect(self) -> None:
        if not ray.is_initialized():
            # "local": a new Ray of our own, never a cluster some other process left running.
            # Workers import what this process can: a trainer in the user's own module works.
            path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
            ray.init(
                address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}},
                logging_level=logging.WARNING, configure_logging=False,
            )

    def open(self, resources: Resources, parallel: int | None) -> int:
        self.connect()
        self._resources = resources
        self._hub = ReportHub.remote()  # type: ignore[attr-defined]
        total = ray.cluster_resources()
        slots = math.floor(total.get("CPU", 0) / resources.cpus_per_trial + 1e-9)
        if resources.gpus_per_trial:
            slots = min(slots, math.floor(total.get("GPU", 0) / resources.gpus_per_trial + 1e-9))
        if slots < 1:
            raise SweepError(
                f"resources: a trial asks for {resources.cpus_per_trial} CPUs and "
                f"{resources.gpus_per_trial} GPUs, but Ray has {total.get('CPU', 0)} CPUs and "
                f"{total.get('GPU', 0)} GPUs"
            )
        return min(slots, parallel) if parallel else slots

    def _worker(self) -> Any:
        if self._idle:
            return self._idle.pop()
        return TrialWorker.options(  # type: ignore[attr-defined]
            num_cpus=self._resources.cpus_per_trial, num_gpus=self._resources.gpus_per_trial,
        ).remote()

    def start(self, spec: TrialSpec) -> None:
        actor = self._worker()
        self._running[spec.number] = (actor, actor.run.remote(spec, self._hub))

    def poll(self, timeout: float) -> list[Event]:
        if self._take is None:
            self._take = self._hub.take.remote(timeout)
        by_ref = {ref: number for number, (_, ref) in self._running.items()}
        ready, _ = ray.wait([self._take, *by_ref], num_returns=1, timeout=timeout)
        if ready:  # gather whatever else is done too, without waiting
            ready, _ = ray.wait([self._take, *by_ref], num_returns=len(by_ref) + 1, timeout=0)
        events: list[Event] = []
        for ref in ready:
            if ref == self._take:
                events.extend(
                    Reported(n, e, m) for n, e, m in ray.get(ref) if n in self._running
                )
                self._take = None
            else:
                events.append(self._outcome(by_ref[ref], ref))
        return events

    def _outcome(self, number: int, ref: Any) -> Event:
        actor, _ = self._running.pop(number)
        try:
            kind, value = ray.get(ref)
        except RayActorError as exc:
            return Failed(number, f"the worker process died: {exc.__class__.__name__}")
        except RayTaskError as exc:
            # The worker lives (e.g. the trainer could not be unpickled there): reuse it.
            self._idle.append(actor)
            cause = exc.cause if exc.cause is not None else exc
            return Failed(number, f"{type(cause).__name__}: {cause}")
        except RayError as exc:
            return Failed(number, f"Ray could not run the trial: {exc}")
        self._idle.append(actor)
        return Finished(number, value) if kind == "finished" else Failed(number, value)

    def answer(self, number: int, stop: bool) -> None:
        self._hub.answer.remote(number, stop)

    def cancel(self, number: int) -> None:
        actor, _ = self._running.pop(number, (None, None))
        if actor is not None:
            # A trial stuck in compute can't be interrupted politely: end its process.
            ray.kill(actor, no_restart=True)
            self._hub.answer.remote(number, True)

    def close(self) -> None:
        for number in list(self._running):
            self.cancel(number)
        for actor in self._idle:
            ray.kill(actor, no_restart=True)
        self._idle.clear()
        if self._hub is not None:
            ray.kill(self._hub, no_restart=True)
            self._hub = None
        self._take = None


class RayClusterBackend(LocalRayBackend):
    """An existing Ray cluster, by ``ray://HOST:PORT`` (Ray Client) or ``ray:HOST:PORT`` (GCS).

    Every node needs this package installed (the same environment as the coordinator).
    """

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address[len("ray:"):] if address.startswith("ray:") and not \
            address.startswith("ray://") else address

    def connect(self) -> None:
        if ray.is_initialized():
            return
        try:
            ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING,
                     configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SweepError(
                f"compute: cannot reach the Ray cluster at {self.address}: {exc}"
            ) from None
