"""A trial's processes: their own process group, logs with a size cap, and a tree that ends.

Ending only the direct child would leave its children (a DataLoader's workers, torchrun's
ranks) running: the whole group gets SIGTERM, a grace period, then SIGKILL. A watchdog
in a session of its own does the same if the process that started the trial dies first
(a Ray worker killed for a timeout never runs its ``finally``).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from sweep.records.trial_log import LAST_LINES, CappedLog

GRACE_S = 5.0

_WATCHDOG = """
import os, signal, sys, time
parent, grace, groups = int(sys.argv[1]), float(sys.argv[2]), [int(g) for g in sys.argv[3:]]
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
while alive(parent):
    time.sleep(0.5)
for sig in (signal.SIGTERM, signal.SIGKILL):
    for group in groups:
        try:
            os.killpg(group, sig)
        except OSError:
            pass
    time.sleep(grace)
"""


class _LogPump(threading.Thread):
    """Copies one stream to a trial's capped log; ``tail``: its last lines, for errors."""

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        super().__init__(daemon=True)
        self.stream, self.path = stream, path
        self.tail: collections.deque[str] = collections.deque(maxlen=LAST_LINES)

    def run(self) -> None:
        with self.path.open("a", errors="replace") as out, CappedLog(out, recent=self.tail) as log:
            for line in iter(self.stream.readline, b""):
                log.write(line.decode(errors="replace"))
                log.flush()


class ProcessGroup:
    """A trial's processes, each the leader of a new session and process group (one group
    cannot span sessions); ``stop`` ends every group."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pumps: list[_LogPump] = []
        self.stderr_tails: list[collections.deque[str]] = []
        self._watchdog: subprocess.Popen[bytes] | None = None

    def start(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path, err_log: Path
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        for stream, path in ((proc.stdout, log), (proc.stderr, err_log)):
            pump = _LogPump(stream, path)
            pump.start()
            self.pumps.append(pump)
        self.stderr_tails.append(self.pumps[-1].tail)
        self.procs.append(proc)
        return proc

    def guard(self) -> None:
        """Starts the watchdog that ends every group if this process dies first."""
        self._watchdog = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WATCHDOG,
                str(os.getpid()),
                str(GRACE_S),
                *(str(p.pid) for p in self.procs),
            ],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def running(self) -> bool:
        return any(p.poll() is None for p in self.procs)

    def first_failure(self) -> tuple[int, int] | None:
        """(rank, exit code) of the first process that exited non-zero, if any."""
        for rank, p in enumerate(self.procs):
            code = p.poll()
            if code not in (None, 0):
                return rank, code
        return None

    def stderr_tail(self, rank: int, lines: int = 5) -> str:
        self.pumps[2 * rank + 1].join(timeout=2)
        tail = [line for line in self.stderr_tails[rank] if line.strip()][-lines:]
        return " | ".join(tail)

    def stop(self, grace: float = GRACE_S) -> None:
        """SIGTERM to every group, up to ``grace`` seconds, then SIGKILL."""
        if not self.procs:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
            for p in self.procs:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and self._group_alive():
                time.sleep(0.05)
            if not self._group_alive():
                break
        for p in self.procs:
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self.close()

    def _group_alive(self) -> bool:
        for p in self.procs:
            p.poll()
        for p in self.procs:
            try:
                os.killpg(p.pid, 0)
                return True
            except ProcessLookupError:
                continue
        return False

    def close(self) -> None:
        for pump in self.pumps:
            pump.join(timeout=2)
        if self._watchdog is not None and self._watchdog.poll() is None:
            self._watchdog.kill()
            self._watchdog.wait()
