"""The study journal: written in batches by its one writer, and healed after a crash.

Optuna appends one JSON line per operation. A power cut or a full disk can leave the last
line half-written; Optuna would skip it when reading but glue the next record onto it when
writing, which corrupts the journal for good. ``heal`` runs while the sweep's lock is held
(no writer is active), before the journal is opened for writing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend, JournalFileBackend

logger = logging.getLogger(__name__)


def heal(path: Path) -> Path | None:
    """Cuts the journal at its first damaged record; the cut bytes go to a side file, whose
    path is returned (None when the journal was whole or does not exist)."""
    if not path.is_file():
        return None
    data = path.read_bytes()
    good = _good_prefix(data)
    if good == len(data):
        return None
    side = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
    side.write_bytes(data[good:])
    with path.open("r+b") as f:
        f.truncate(good)
        f.flush()
    logger.warning("%s ended in a damaged record (%d bytes, from a crash or a full disk); "
                   "it was cut off and kept in %s, and the sweep goes on from the records "
                   "before it", path, len(data) - good, side)
    return side


def _good_prefix(data: bytes) -> int:
    """The length of the leading run of complete, parseable lines."""
    at = 0
    while at < len(data):
        end = data.find(b"\n", at)
        if end < 0:
            return at
        try:
            json.loads(data[at:end])
        except ValueError:
            return at
        at = end + 1
    return at


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
        yield from self._pending[max(0, log_number_from - self._in_file):]

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
