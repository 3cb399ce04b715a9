"""What runs inside Ray for a sweep: the trial workers (one per running trial, reused across
trials). A worker's ``run`` is a streaming generator: it yields each report of its trial to
the coordinator, which owns what was yielded (a reported checkpoint outlives the worker), and
the coordinator's answer comes back through the worker's ``answer``. Two messages a report."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
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
from trainer import preemption

logger = logging.getLogger(__name__)

NODE_ID_CHARS = 8
"""How much of a Ray node's id names it in status (the id is 56 hex characters)."""
DRAIN_POLL_S = 2.0
"""How often a running trial's worker asks whether its node is being drained."""

WorkerReport = tuple[str, int, dict[str, float], CheckpointFiles | None, str, str]
"""("report", epoch, metrics, checkpoint, notice, node: said on a run's first report)."""
WorkerEnd = tuple[str, Any]
"""(how the run ended: finished, preempted, lost or failed; its result or why)."""


# Two threads: a run streams its trial's reports while ``answer`` hands it the coordinator's
# replies (and ``address`` answers beside a run-to-be).
@ray.remote(max_concurrency=2)  # type: ignore[call-overload]  # its stubs name no actor options
class TrialWorker:
    """A process that runs one trial at a time; torch and the data stay imported between trials."""

    def __init__(self) -> None:
        # Ray builds an actor on the process's main thread, the one Python delivers signals
        # to; its methods run in other threads.
        preemption.listen_for_process()
        self._answers: tuple[int, queue.SimpleQueue[bool]] | None = None

    def address(self) -> tuple[str, int]:
        """This worker's node address and a free port: where rank 0 hosts the process group."""
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def answer(self, number: int, stop: bool) -> None:
        """The coordinator's reply to trial ``number``'s report (True: stop)."""
        waiting = self._answers
        if waiting is not None and waiting[0] == number:
            waiting[1].put(stop)

    def run(
        self,
        spec: TrialSpec,
        env: dict[str, str] | None = None,
        log_name: str = TRIAL_LOG,
        reports: bool = True,
    ) -> Iterator[WorkerReport | WorkerEnd]:
        """Yields the trial's reports (``reports``: rank 0 alone talks to the sweep), each
        after the last one's answer, then how it ended. The trainer runs in a thread of its
        own: its ``report`` is a call, which cannot yield."""
        outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        answers: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._answers = (spec.number, answers)
        # Where this run is, said once: status names the node a continued trial went to.
        unsaid = {"node": ray.get_runtime_context().get_node_id()[:NODE_ID_CHARS]}

        def report(
            epoch: int,
            metrics: dict[str, float],
            checkpoint: CheckpointFiles | None,
            notice: str = "",
        ) -> bool:
            if not reports:
                return False
            outbox.put(("report", epoch, metrics, checkpoint, notice, unsaid.pop("node", "")))
            return answers.get()

        def train() -> None:
            try:
                outbox.put(_run(spec, report, env, log_name))
            except BaseException as exc:  # a fault of the sweep's own: the run raises it
                outbox.put(exc)

        threading.Thread(target=train, name=f"trial-{spec.number}", daemon=True).start()
        while True:
            item = outbox.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if item[0] != "report":
                return


def _run(spec: TrialSpec, report: Any, env: dict[str, str] | None, log_name: str) -> WorkerEnd:
    # The next trial in this reused process starts from the environment Ray gave it
    # (CUDA_VISIBLE_DEVICES included), whatever this one set. Ray set OMP_NUM_THREADS to
    # the actor's CPUs, which torch follows when imported.
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
