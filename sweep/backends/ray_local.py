"""Trials on Ray: long-lived worker actors, one per running trial, reused across trials.

Each worker actor asks Ray for the trial's CPUs and GPUs (fractions of a GPU pack several
trials on one card), in a placement group when a trial has several workers. A trial's
reports go to the hub (``ray_actors``); the coordinator takes them from there with one
long-poll and answers each one, so a pruned trial stops at the end of the epoch it reported.
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
from ray.exceptions import RayActorError, RayError, RayTaskError
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from search_spaces import Resources
from sweep.backends.base import Backend
from sweep.backends.ray_actors import HubReport, TrialWorker, new_hub
from sweep.backends.ray_start import start_local_ray
from sweep.errors import SweepError
from sweep.records.trial_log import TRIAL_LOG
from sweep.trials import CheckpointFiles, Event, Failed, Finished, Reported, TrialSpec

logger = logging.getLogger(__name__)


# A data-parallel trial whose workers Ray cannot place in this long fails (the others run).
PLACEMENT_TIMEOUT_S = 120.0


@dataclass
class _Running:
    """A running trial: its worker actors (rank 0 first), their result refs, its group.

    A data-parallel trial starts as a placement group being placed (``placing``, the group's
    ready ref): its actors exist only once the group is ready, so ``start`` never waits.
    """

    actors: list[Any]
    refs: list[Any]
    group: Any = None
    placing: Any = None
    spec: TrialSpec | None = None
    since: float = 0.0

    @property
    def pending(self) -> dict[Any, int]:
        return {ref: rank for rank, ref in enumerate(self.refs) if ref is not None}


class LocalRayBackend(Backend):
    """A Ray started on this machine on demand (or joined, if this process already has one)."""

    def __init__(self) -> None:
        self._hub: Any = None
        self._idle: list[Any] = []
        self._running: dict[int, _Running] = {}
        self._take: Any = None
        self._take_timeout = 0.5
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
        self._hub = self._new_hub()
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

    @staticmethod
    def _new_hub() -> Any:
        return new_hub()

    def _hub_lost(self, exc: Exception) -> list[Event]:
        """The hub died with its node: a new one, and every running trial (whose reports
        went to the old one) is lost, to continue from its checkpoint with the new hub."""
        logger.warning(
            "the sweep's report hub was lost with its node (%s); running trials "
            "continue from their checkpoints",
            str(exc).splitlines()[0][:300],
        )
        self._hub = self._new_hub()
        events: list[Event] = []
        for number in list(self._running):
            self._release(number)
            events.append(
                Failed(number, "the node holding the sweep's report hub was lost", lost=True)
            )
        self._drop_idle()
        return events

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
        self._running[spec.number] = _Running([actor], [actor.run.remote(spec, self._hub)])

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
        and reports."""
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
            run.refs.append(
                actor.run.remote(
                    spec,
                    self._hub if rank == 0 else None,
                    env,
                    TRIAL_LOG if rank == 0 else f"trial-rank{rank}.log",
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
        self._take_timeout = timeout
        if self._take is None:
            self._take = self._hub.take.remote(timeout)
        by_ref = {ref: number for number, run in self._running.items() for ref in run.pending}
        placing = [run.placing for run in self._running.values() if run.placing is not None]
        ready, _ = ray.wait([self._take, *by_ref, *placing], num_returns=1, timeout=timeout)
        if ready:  # gather whatever else is done too, without waiting
            ready, _ = ray.wait([self._take, *by_ref], num_returns=len(by_ref) + 1, timeout=0)
        for ref in ready:
            if ref not in by_ref and ref != self._take:
                continue  # a group got placed: it starts on the next poll
            if ref == self._take:
                self._take = None
                try:
                    taken = ray.get(ref)
                except RayActorError as exc:
                    return events + self._hub_lost(exc)
                events.extend(self._reports(taken))
            elif by_ref[ref] in self._running:
                event = self._outcome(by_ref[ref], ref)
                if event is not None:
                    events.append(event)
        return events

    def _reports(self, taken: list[HubReport]) -> list[Event]:
        events: list[Event] = []
        for number, epoch, metrics, refs, notice, node in taken:
            if number not in self._running:
                continue
            checkpoint: CheckpointFiles | None = None
            if refs:
                try:
                    got: Any = ray.get(refs[0])
                    checkpoint = got
                except RayError:
                    continue  # its worker died holding it: the trial's failure follows
            events.append(Reported(number, epoch, metrics, checkpoint, notice, node))
        return events

    def _outcome(self, number: int, ref: Any) -> Event | None:
        run = self._running[number]
        rank = run.refs.index(ref)
        run.refs[rank] = None
        dead = False
        try:
            kind, value = ray.get(ref)
        except RayActorError as exc:
            dead = True
            kind, value = "lost", f"the worker process died: {exc.__class__.__name__}"
            # Its node may be gone, and idle workers with it: new ones are placed on the
            # nodes that are alive (a dead idle worker would fail the next trial at once).
            self._drop_idle()
        except RayTaskError as exc:
            cause = exc.cause if exc.cause is not None else exc
            kind, value = "failed", f"{type(cause).__name__}: {cause}"
        except RayError as exc:
            kind, value = "failed", f"Ray could not run the trial: {exc}"
        if rank > 0:
            if kind == "finished":
                return None  # rank 0 speaks for the trial
            self.cancel(number)
            return Failed(number, f"worker {rank} of {len(run.refs)}: {value}", lost=kind == "lost")
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
        # With no take out, the answer goes as the next take: one actor call instead of two
        # a report (the reporter hears it as soon as the call reaches the hub, as before).
        if self._take is None:
            self._take = self._hub.take.remote(self._take_timeout, ((number, stop),))
        else:
            self._hub.answer.remote(number, stop)

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
            self._hub.answer.remote(number, True)

    def _drop_idle(self) -> None:
        for actor in self._idle:
            with contextlib.suppress(RayError):
                ray.kill(actor, no_restart=True)
        self._idle.clear()

    def close(self) -> None:
        for number in list(self._running):
            self.cancel(number)
        self._drop_idle()
        if self._hub is not None:
            ray.kill(self._hub, no_restart=True)
            self._hub = None
        self._take = None


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
