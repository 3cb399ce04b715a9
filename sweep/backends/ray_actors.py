"""What runs inside Ray for a sweep: the report hub (one per sweep, on the head node) and the
trial workers (one per running trial, reused across trials). Each report goes worker -> hub;
the coordinator takes them from the hub with one long-poll and answers each one (the first
answer after a take starts the next take)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import ray

from sweep.errors import TrialFailed, TrialLost, TrialPreempted
from sweep.records.trial_log import TRIAL_LOG
from sweep.trainers.runner import run_trial
from sweep.trials import CheckpointFiles, TrialSpec

logger = logging.getLogger(__name__)

NODE_ID_CHARS = 8
"""How much of a Ray node's id names it in status (the id is 56 hex characters)."""
DRAIN_POLL_S = 2.0
"""How often a running trial's worker asks whether its node is being drained."""

# A report as the hub keeps it: trial, epoch, metrics, and its checkpoint's changes as
# ``[ObjectRef]`` (in a list, so that Ray hands the hub the reference, not the bytes: they go
# from the worker's object store to the coordinator once, when it takes them).
HubReport = tuple[int, int, dict[str, float], list[Any], str, str]
"""(trial, epoch, metrics, checkpoint refs, notice, node: said on a run's first report)."""


@ray.remote(num_cpus=0)
class ReportHub:
    """Holds reports until the coordinator takes them, and each reporter until it is answered."""

    def __init__(self) -> None:
        self._events: list[HubReport] = []
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._new = asyncio.Event()

    async def report(
        self,
        number: int,
        epoch: int,
        metrics: dict[str, float],
        checkpoint: list[Any],
        notice: str = "",
        node: str = "",
    ) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        self._events.append((number, epoch, metrics, checkpoint, notice, node))
        self._new.set()
        return await future

    async def take(
        self, timeout: float, answers: tuple[tuple[int, bool], ...] = ()
    ) -> list[HubReport]:
        """The reports so far (waiting up to ``timeout`` for one), after ``answers`` to the
        last ones: an answer rides the next take instead of a call of its own."""
        for number, stop in answers:
            await self.answer(number, stop)
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

    def address(self) -> tuple[str, int]:
        """This worker's node address and a free port: where rank 0 hosts the process group."""
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def run(
        self,
        spec: TrialSpec,
        hub: Any,
        env: dict[str, str] | None = None,
        log_name: str = TRIAL_LOG,
    ) -> tuple[str, Any]:
        # Where this run is, said once: status names the node a continued trial went to.
        unsaid = {"node": ray.get_runtime_context().get_node_id()[:NODE_ID_CHARS]}

        # Ray sets OMP_NUM_THREADS to the actor's CPUs, which torch follows when imported.
        def report(
            epoch: int,
            metrics: dict[str, float],
            checkpoint: CheckpointFiles | None,
            notice: str = "",
        ) -> bool:
            if hub is None:  # ranks other than 0: rank 0 alone talks to the sweep
                return False
            # The object stays alive while this call waits: the coordinator has taken and
            # committed it before it answers.
            refs = [ray.put(checkpoint)] if checkpoint is not None else []
            where = unsaid.pop("node", "")
            return bool(
                ray.get(hub.report.remote(spec.number, epoch, metrics, refs, notice, where))
            )

        # The next trial in this reused process starts from the environment Ray gave it
        # (CUDA_VISIBLE_DEVICES included), whatever this one set.
        saved = dict(os.environ)
        os.environ.update(env or {})
        rank = int((env or {}).get("RANK", "0"))
        try:
            with _notice_on_drain():
                return "finished", run_trial(spec, report, log_name=log_name, rank=rank)
        except TrialPreempted as exc:  # this process was told to go: it is not reused
            return "preempted", str(exc)
        except TrialLost as exc:
            return "lost", str(exc)
        except TrialFailed as exc:
            return "failed", str(exc)
        finally:
            os.environ.clear()
            os.environ.update(saved)


@contextlib.contextmanager
def _notice_on_drain() -> Iterator[None]:
    """While a trial runs: when Ray drains this worker's node (an autoscaler taking back a
    spot or idle node, ``ray drain-node``), the process gets SIGTERM, the same preemption
    notice a cloud's eviction sends, so the trial saves and continues elsewhere. Ray itself
    tells a draining node's workers nothing."""
    done = threading.Event()
    node = ray.get_runtime_context().get_node_id()

    def watch() -> None:
        while not done.wait(DRAIN_POLL_S):
            try:
                draining = ray._private.state.state.get_draining_nodes()
            except Exception:  # the GCS busy or restarting: ask again next time
                continue
            if node in draining:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    watcher = threading.Thread(target=watch, name="drain-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()


HUB_START_S = 30.0
"""How long the hub may take to start on the head before it is placed wherever Ray can."""


def new_hub() -> Any:
    """A report hub on the cluster's head node (a worker node lost must not take every
    trial's pending reports with it, and a cluster without its head is gone anyway), else
    on this process's node.

    Held there, not asked for: with soft node affinity, Ray placed the hub of a coordinator
    started after another was killed on a worker node (the head, with no CPUs, looked
    unavailable while the dead driver's workers were cleaned up), and the next loss of
    that node took the hub and every running trial with it (the soak benchmark, twice in
    four minutes). A hub that cannot start on the head within ``HUB_START_S`` goes where
    Ray places it, said in a warning."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        alive = [n for n in ray.nodes() if n.get("Alive")]
        heads = [n["NodeID"] for n in alive if "node:__internal_head__" in n.get("Resources", {})]
        node = heads[0] if heads else ray.get_runtime_context().get_node_id()
    except Exception:
        return ReportHub.remote()  # type: ignore[attr-defined]
    hub = ReportHub.options(  # type: ignore[attr-defined]
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False)
    ).remote()
    if len(alive) <= 1:
        return hub  # one node: it is this one
    ready, _ = ray.wait([hub.__ray_ready__.remote()], timeout=HUB_START_S)
    if ready:
        return hub
    logger.warning(
        "the sweep's report hub did not start on the head node in %.0f s; it runs where "
        "Ray places it, and a loss of that node ends the trials running then",
        HUB_START_S,
    )
    ray.kill(hub)
    return ReportHub.remote()  # type: ignore[attr-defined]
