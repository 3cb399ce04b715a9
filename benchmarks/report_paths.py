"""Two ways a trial's report can reach the coordinator and hear its answer, bare (no sweep,
no trainer): 300 trials of N reports each, 2 at a time, on a local Ray.

- hub (what ``sweep.backends.ray_local`` did until 2026-12-07, with the ``ReportHub`` it
  had, copied here): the worker calls the hub's ``report`` and waits; the coordinator
  long-polls the hub's ``take``, and its answer rides the next take. Four messages through
  three processes a report.
- stream (what the sweep does now): the worker's ``run`` is a streaming generator that
  yields each report to the coordinator (the yielded objects are the coordinator's: they
  outlive the worker), and the coordinator answers through a second method the actor runs
  beside it (``max_concurrency=2``). Two messages and no hub process.

It measures only the messaging a design pays per trial, for choosing one; the engine's own
cost is ``engine_overhead.py``'s.

Usage: python benchmarks/report_paths.py [--trials 300] [--reports 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

import ray


@ray.remote(num_cpus=0)
class ReportHub:
    """The sweep's report hub as it was: holds reports until the coordinator takes them, and
    each reporter until it is answered."""

    def __init__(self) -> None:
        self._events: list[tuple[int, int]] = []
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._new = asyncio.Event()

    async def report(self, number: int, epoch: int, metrics: dict, checkpoint: list) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        self._events.append((number, epoch))
        self._new.set()
        return await future

    async def take(
        self, timeout: float, answers: tuple[tuple[int, bool], ...] = ()
    ) -> list[tuple[int, int]]:
        for number, stop in answers:
            future = self._waiting.pop(number, None)
            if future is not None and not future.done():
                future.set_result(stop)
        if not self._events:
            try:
                await asyncio.wait_for(self._new.wait(), timeout)
            except TimeoutError:
                pass
        events, self._events = self._events, []
        self._new.clear()
        return events


@ray.remote(num_cpus=1)
class HubWorker:
    def run(self, number: int, hub: Any, reports: int) -> int:
        for epoch in range(reports):
            if ray.get(hub.report.remote(number, epoch, {}, [])):
                break
        return number


@ray.remote(num_cpus=1, max_concurrency=2)
class StreamWorker:
    def __init__(self) -> None:
        self.heard = threading.Condition()
        self.stop: bool | None = None

    def answer(self, stop: bool) -> None:
        with self.heard:
            self.stop = stop
            self.heard.notify()

    def run(self, number: int, reports: int) -> Any:
        for epoch in range(reports):
            with self.heard:
                self.stop = None
            yield ("report", number, epoch)
            with self.heard:
                while self.stop is None:
                    self.heard.wait()
                if self.stop:
                    break
        yield ("end", number, -1)


def through_hub(trials: int, reports: int) -> float:
    hub = ReportHub.remote()  # type: ignore[attr-defined]
    workers = [HubWorker.remote() for _ in range(2)]  # type: ignore[attr-defined]
    ray.get([w.__ray_ready__.remote() for w in workers])
    started, launched, ended = time.perf_counter(), 0, 0
    running: dict[Any, Any] = {}
    take, answers = None, []
    for w in workers:
        running[w.run.remote(launched, hub, reports)] = w
        launched += 1
    while ended < trials:
        if take is None:
            take, answers = hub.take.remote(0.5, tuple(answers)), []
        ready, _ = ray.wait([take, *running], num_returns=1)
        for ref in ready:
            if ref == take:
                take = None
                answers += [(report[0], False) for report in ray.get(ref)]
            else:
                worker = running.pop(ref)
                ray.get(ref)
                ended += 1
                if launched < trials:
                    running[worker.run.remote(launched, hub, reports)] = worker
                    launched += 1
    return (time.perf_counter() - started) / trials * 1000


def streamed(trials: int, reports: int) -> float:
    workers = [StreamWorker.remote() for _ in range(2)]  # type: ignore[attr-defined]
    ray.get([w.__ray_ready__.remote() for w in workers])
    started, launched, ended = time.perf_counter(), 0, 0
    runs: dict[Any, Any] = {}
    for w in workers:
        runs[w] = w.run.remote(launched, reports)
        launched += 1
    while ended < trials:
        ready, _ = ray.wait(list(runs.values()), num_returns=1)
        for run in ready:
            worker = next(w for w, r in runs.items() if r is run)
            kind, _, _ = ray.get(next(run))
            if kind == "report":
                worker.answer.remote(False)
                continue
            ended += 1
            if launched < trials:
                runs[worker] = worker.run.remote(launched, reports)
                launched += 1
            else:
                del runs[worker]
    return (time.perf_counter() - started) / trials * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--reports", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for round_ in range(args.rounds):  # interleaved: a noisy minute hits both alike
        hub = through_hub(args.trials, args.reports)
        stream = streamed(args.trials, args.reports)
        print(
            f"round {round_ + 1}: {args.reports} reports a trial, 2 at a time: "
            f"hub {hub:.2f} ms a trial, stream {stream:.2f} ms ({stream / hub:.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
