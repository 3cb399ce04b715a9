"""Trials on Ray: long-lived worker actors, one per running trial, reused across trials.

Each worker actor asks Ray for the trial's CPUs and GPUs (fractions of a GPU pack several
trials on one card), in a placement group when a trial has several workers. A worker streams
its trial's reports to the coordinator (``ray_actors``), which waits on every running
trial's stream at once and answers each report, so a pruned trial stops at the end of the
epoch it reported.
Ray is imported in this package's ``ray_*`` modules and nowhere else.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ObjectLostError, RayActorError, RayError, RayTaskError
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from search_spaces import Resources
from sweep.backends.base import Backend
from sweep.backends.ray_actors import TrialWorker
from sweep.backends.ray_start import start_local_ray
from sweep.errors import SweepError
from sweep.records.trial_log import TRIAL_LOG
from sweep.trials import Event, Failed, Finished, Reported, TrialSpec

logger = logging.getLogger(__name__)


# A data-parallel trial whose workers Ray cannot place in this long fails (the others run).
PLACEMENT_TIMEOUT_S = 120.0


@dataclass
class _Running:
    """A running trial: its worker actors (rank 0 first), their runs' streams (None once a
    rank's run ended), its group.

    A data-parallel trial starts as a placement group being placed (``placing``, the group's
    ready ref): its actors exist only once the group is ready, so ``start`` never waits.
    """

    actors: list[Any]
    streams: list[Any]
    group: Any = None
    placing: Any = None
    spec: TrialSpec | None = None
    since: float = 0.0


class LocalRayBackend(Backend):
    """A Ray started on this machine on demand (or joined, if this process already has one)."""

    def __init__(self) -> None:
        self._idle: list[Any] = []
        self._running: dict[int, _Running] = {}
        self._resources = Resources()
        self._capacity, self._capacity_at = 0.0, -math.inf
        self.workers_started = 0
        """Trial worker processes started (the engine benchmark shows it: one per slot)."""

    def connect(self) -> None:
        if not ray.is_initialized():
            start_local_ray()

    def open(self, resources: Resources, parallel: int | None) -> int:
        self.connect()
        self._resources = resources
        total = ray.cluster_resources()
        workers = resources.workers_per_trial
        slots = math.floor(total.get("CPU", 0) / (resources.cpus_per_trial * workers) + 1e-9)
        if resources.gpus_per_trial:
            slots = min(
                slots, math.floor(total.get("GPU", 0) / (resources.gpus_per_trial * workers) + 1e-9)
            )
        if slots < 1:
            raise SweepError(
                f"resources: a trial asks for {workers} x ({resources.cpus_per_trial} CPUs, "
                f"{resources.gpus_per_trial} GPUs), but Ray has {total.get('CPU', 0)} CPUs and "
                f"{total.get('GPU', 0)} GPUs"
            )
        return min(slots, parallel) if parallel else slots

    def _actor_options(self) -> dict[str, Any]:
        return {
            "num_cpus": self._resources.cpus_per_trial,
            "num_gpus": self._resources.gpus_per_trial,
        }

    def _prepare(self, spec: TrialSpec) -> TrialSpec:
        """The spec as this place runs it (a cluster ships the trainer's code first)."""
        return spec

    def start(self, spec: TrialSpec) -> None:
        spec = self._prepare(spec)
        if self._resources.workers_per_trial > 1:
            self._place(spec)
            return
        if self._idle:
            actor = self._idle.pop()
        else:
            actor = TrialWorker.options(  # type: ignore[attr-defined]
                **self._actor_options()
            ).remote()
            self.workers_started += 1
        self._running[spec.number] = _Running([actor], [actor.run.remote(spec)])

    def _place(self, spec: TrialSpec) -> None:
        """Asks Ray for a data-parallel trial's N bundles (on one node when one can hold them
        all); the workers start in ``poll`` once the group is ready."""
        workers = self._resources.workers_per_trial
        bundle = self._bundle()
        one_node = any(
            all(node["Resources"].get(k, 0) >= v * workers for k, v in bundle.items())
            for node in ray.nodes()
            if node.get("Alive")
        )
        group = placement_group([bundle] * workers, strategy="STRICT_PACK" if one_node else "PACK")
        self._running[spec.number] = _Running([], [], group, group.ready(), spec, time.monotonic())

    def _bundle(self) -> dict[str, float]:
        bundle = {"CPU": self._resources.cpus_per_trial}
        if self._resources.gpus_per_trial:
            bundle["GPU"] = self._resources.gpus_per_trial
        return bundle

    def _start_ranks(self, run: _Running) -> None:
        """The placed group's workers, each a torch DDP rank; rank 0 hosts the process group
        and alone reports."""
        spec, workers = run.spec, self._resources.workers_per_trial
        assert spec is not None
        run.placing = None
        run.actors = [
            TrialWorker.options(  # type: ignore[attr-defined]
                **self._actor_options(),
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    run.group, placement_group_bundle_index=rank
                ),
            ).remote()
            for rank in range(workers)
        ]
        host, port = ray.get(run.actors[0].address.remote())
        for rank, actor in enumerate(run.actors):
            env = {
                "WORLD_SIZE": str(workers),
                "RANK": str(rank),
                "LOCAL_RANK": "0",
                "MASTER_ADDR": host,
                "MASTER_PORT": str(port),
            }
            run.streams.append(
                actor.run.remote(
                    spec, env, TRIAL_LOG if rank == 0 else f"trial-rank{rank}.log", rank == 0
                )
            )

    def _placements(self) -> list[Event]:
        """Starts the trials whose groups are placed; fails those that waited too long."""
        events: list[Event] = []
        for number, run in list(self._running.items()):
            if run.placing is None:
                continue
            ready, _ = ray.wait([run.placing], timeout=0)
            if ready:
                self._start_ranks(run)
            elif time.monotonic() - run.since > PLACEMENT_TIMEOUT_S:
                self._release(number)
                events.append(
                    Failed(
                        number,
                        (
                            f"Ray could not place {self._resources.workers_per_trial} workers of "
                            f"{self._bundle()} within {PLACEMENT_TIMEOUT_S:.0f} s"
                        ),
                    )
                )
        return events

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = self._placements()
        # By identity: what a run's stream compares equal to is Ray's business.
        streams = {
            id(stream): (number, rank, stream)
            for number, run in self._running.items()
            for rank, stream in enumerate(run.streams)
            if stream is not None
        }
        placing = [run.placing for run in self._running.values() if run.placing is not None]
        waited = [stream for _, _, stream in streams.values()]
        ready, _ = ray.wait([*waited, *placing], num_returns=1, timeout=timeout)
        if ready and waited:  # gather whatever else is ready too, without waiting
            ready, _ = ray.wait(waited, num_returns=len(waited), timeout=0)
        for stream in ready:
            if id(stream) not in streams:
                continue  # a group got placed: it starts on the next poll
            number, rank, _ = streams[id(stream)]
            if number in self._running:
                event = self._next(number, rank, stream)
                if event is not None:
                    events.append(event)
        return events

    def _next(self, number: int, rank: int, stream: Any) -> Event | None:
        """What the ready stream of trial ``number``'s rank says: a report, or how it ended."""
        dead = False
        try:
            item = ray.get(next(stream))
        except (RayActorError, ObjectLostError) as exc:  # a report lost with its node too
            dead = True
            item = ("lost", f"the worker process died: {exc.__class__.__name__}")
            # Its node may be gone, and idle workers with it: new ones are placed on the
            # nodes that are alive (a dead idle worker would fail the next trial at once).
            self._drop_idle()
        except RayTaskError as exc:
            cause = exc.cause if exc.cause is not None else exc
            item = ("failed", f"{type(cause).__name__}: {cause}")
        except RayError as exc:
            item = ("failed", f"Ray could not run the trial: {exc}")
        if item[0] == "report":
            _, epoch, metrics, checkpoint, notice, node = item
            return Reported(number, epoch, metrics, checkpoint, notice, node)
        return self._outcome(number, rank, item[0], item[1], dead)

    def _outcome(self, number: int, rank: int, kind: str, value: Any, dead: bool) -> Event | None:
        run = self._running[number]
        run.streams[rank] = None
        if rank > 0:
            if kind == "finished":
                return None  # rank 0 speaks for the trial
            self.cancel(number)
            return Failed(
                number, f"worker {rank} of {len(run.streams)}: {value}", lost=kind == "lost"
            )
        if run.group is None and not dead and kind == "finished" and self._room_to_idle():
            self._idle.append(run.actors[0])
            del self._running[number]
        else:
            # A failed trial may leave its process broken (a CUDA error poisons the context
            # for good): the next trial gets a fresh worker.
            self._release(number)
        if kind == "finished":
            return Finished(number, value)
        preempted = kind == "preempted"
        return Failed(number, value, lost=kind == "lost" or preempted, preempted=preempted)

    def _room_to_idle(self) -> bool:
        """Whether the cluster holds every worker alive (this finished one included): then it
        idles for the next trial. A cluster that lost a node holds fewer workers than the
        sweep started with, and a new worker would wait for ever for the CPUs an idle one
        keeps; then the finished worker ends. (Ending it whenever some new worker was still
        starting cost a new process per trial: two trials always overlap a start.)"""
        now = time.monotonic()
        if now - self._capacity_at > 1.0:  # a call to the cluster; a node loss shows within 1 s
            total = _usable_resources()
            capacity = total.get("CPU", 0) / max(self._resources.cpus_per_trial, 1e-9)
            if self._resources.gpus_per_trial:
                capacity = min(capacity, total.get("GPU", 0) / self._resources.gpus_per_trial)
            self._capacity, self._capacity_at = capacity, now
        alive = sum(len(run.actors) for run in self._running.values()) + len(self._idle)
        return alive <= self._capacity + 1e-9

    def answer(self, number: int, stop: bool) -> None:
        run = self._running.get(number)
        if run is not None and run.actors:
            run.actors[0].answer.remote(number, stop)

    def _release(self, number: int) -> None:
        run = self._running.pop(number, None)
        if run is None:
            return
        for actor in run.actors:
            ray.kill(actor, no_restart=True)
        if run.group is not None:
            remove_placement_group(run.group)

    def cancel(self, number: int) -> None:
        if number in self._running:
            # A trial stuck in compute can't be interrupted politely: end its processes.
            self._release(number)

    def _drop_idle(self) -> None:
        for actor in self._idle:
            with contextlib.suppress(RayError):
                ray.kill(actor, no_restart=True)
        self._idle.clear()

    def close(self) -> None:
        for number in list(self._running):
            self.cancel(number)
        self._drop_idle()


def _usable_resources() -> dict[str, float]:
    """The cluster's resources less those of nodes being drained: Ray places nothing new
    there, so a worker kept idle for them would hold the capacity a continued trial waits
    for."""
    total = dict(ray.cluster_resources())
    try:
        draining = ray._private.state.state.get_draining_nodes()
    except Exception:  # the GCS busy: count every node this time
        return total
    if draining:
        for node in ray.nodes():
            if node.get("Alive") and node.get("NodeID") in draining:
                for name, amount in node.get("Resources", {}).items():
                    total[name] = total.get(name, 0.0) - amount
    return total
