"""One coordinator per sweep: an exclusive lock on ``sweeps/NAME/coordinator.lock``.

``flock`` is released by the kernel when its holder dies however it dies (``kill -9``
included), so a lock is never stale: the file's text (host, pid, start) only names the
holder in the refusal, and tells the next holder whom it took over from. Local file systems
only: NFS does not carry flock reliably (a database storage is the way to share a study).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from sweep.errors import SweepInputError
from sweep.records.layout import LOCK

logger = logging.getLogger(__name__)


class SweepLock:
    """Held for the whole of a ``run`` or ``resume``; a second one on the same sweep fails."""

    def __init__(self, sweep_dir: Path) -> None:
        self.path = Path(sweep_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> SweepLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SweepInputError(
                f"sweep {self.path.parent.name!r} is already running ({_describe(self._read())}); "
                "wait for it to end or stop it first"
            ) from None
        previous = self._read()
        if previous.get("pid"):
            logger.warning(
                "took over the lock of %s: it ended without releasing it", _describe(previous)
            )
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps(
                {
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            ).encode(),
        )
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # empty: released cleanly, nothing to take over
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> SweepLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def _describe(holder: dict[str, object]) -> str:
    if not holder.get("pid"):
        return "by another coordinator"
    return (
        f"coordinator pid {holder['pid']} on {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')}"
    )
