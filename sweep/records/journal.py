"""The study journal: written in batches by its one writer, and healed after a crash.

Optuna appends one JSON line per operation. A power cut or a full disk can leave the last
line half-written; Optuna would skip it when reading but glue the next record onto it when
writing, which corrupts the journal for good. ``heal`` runs while the sweep's lock is held
(no writer is active), before the journal is opened for writing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend, JournalFileBackend
from optuna.storages.journal._file import BaseJournalFileLock
from optuna.storages.journal._storage import JournalOperation, JournalStorageReplayResult

logger = logging.getLogger(__name__)

_OPS = {op.value for op in JournalOperation}
CUT_SHORT = "a record cut short"


def heal(path: Path) -> Path | None:
    """Cuts the journal at its first damaged record; it and every record after it go to a
    side file, whose path is returned (None when the journal was whole or does not exist)."""
    if not path.is_file():
        return None
    data = path.read_bytes()
    damage = find_damage(data)
    if damage is None:
        return None
    good, line, what = damage
    side = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
    side.write_bytes(data[good:])
    with path.open("r+b") as f:
        f.truncate(good)
        f.flush()
    logger.warning(
        "%s: line %d is damaged (%s; from a crash, a full disk or an edit); it and "
        "the %d bytes after it were moved to %s, and the sweep goes on from the "
        "records before it",
        path,
        line,
        what,
        len(data) - good,
        side,
    )
    return side


def find_damage(data: bytes) -> tuple[int, int, str] | None:
    """Where the journal's first damaged record starts (byte offset, line number) and what is
    wrong with it; None when every record reads and replays as Optuna would. A record that
    parses but that Optuna cannot apply (``{}``, an unknown op code, a trial that does not
    exist) is damage too: Optuna would fail on it each time the study is opened."""
    replay = JournalStorageReplayResult("")
    at, line = 0, 1
    while at < len(data):
        end = data.find(b"\n", at)
        if end < 0:
            return at, line, CUT_SHORT
        try:
            record = json.loads(data[at:end])
        except ValueError:
            return at, line, "not a JSON record"
        if not isinstance(record, dict) or record.get("op_code") not in _OPS:
            return at, line, "not a record of Optuna's journal"
        try:
            replay.apply_logs([record])
        except Exception as exc:  # AssertionError included: Optuna's own 'Should not reach'
            return at, line, f"Optuna cannot apply it: {type(exc).__name__}"
        at, line = end + 1, line + 1
    return None


class FlockJournalLock(BaseJournalFileLock):
    """The journal's write lock: ``flock`` on ``study.journal.flock``, which stays.

    Optuna's own locks make and remove a file at every write (create, rename, unlink: three
    metadata writes, about 2 ms a commit on this project's test machine, a commit or two a
    trial), and a writer killed while holding one leaves it for the next writer to wait out
    (30 s). The kernel drops a flock with its holder however it dies. Local file systems only,
    as the sweep's own lock (``sweep.records.lock``): NFS does not carry flock reliably.
    """

    SUFFIX = ".flock"

    def __init__(self, journal: str) -> None:
        self._path = journal + self.SUFFIX
        self._fd: int | None = None
        # flock is per open file: two threads of one process would both get it
        self._thread = threading.Lock()

    def acquire(self) -> bool:
        self._thread.acquire()
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
        except BaseException:
            self._thread.release()
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.close(fd)  # closing drops the flock
        finally:
            self._thread.release()


class GroupCommit(BaseJournalBackend):
    """The journal file, appended a batch of records at a time while ``batching``.

    Optuna writes each operation on its own: open, lock, write, fsync, about 0.6 ms, six or
    more times per trial, and every read opens and stats the file again. The coordinator is
    the default journal's only writer, so while it runs its records wait in memory until it
    commits them: when a trial starts (before it runs, so a started trial is on disk) and
    after each batch of events. A crash loses at most the last batch: its trials were still
    running as far as the file knows, and a resume runs them again. Reads are served from
    the file up to what it holds, then from the records in memory; while batching, the file
    is not opened when nothing new can be in it. Outside ``batching`` every record is
    written at once and every read looks at the file.
    """

    def __init__(self, file: JournalFileBackend) -> None:
        self._file = file
        self._pending: list[dict[str, Any]] = []
        self._in_file: int | None = None  # records in the file, once read to its end
        self.batching = False

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        # Only a batching writer knows the file has nothing new: a reader (``sweep status``, a
        # study held in a notebook) reads it each time, as Optuna does, to see a running sweep.
        if not self.batching or self._in_file is None or log_number_from < self._in_file:
            read = 0
            for log in self._file.read_logs(log_number_from):
                read += 1
                yield log
            self._in_file = log_number_from + read
        yield from self._pending[max(0, log_number_from - self._in_file) :]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self._pending.extend(logs)
        if not self.batching:
            self.commit()

    def commit(self) -> None:
        """Writes the records held in memory (one write, one fsync)."""
        if not self._pending:
            return
        self._file.append_logs(self._pending)
        if self._in_file is not None:
            self._in_file += len(self._pending)
        self._pending = []
