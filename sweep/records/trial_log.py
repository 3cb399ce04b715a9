"""A trial's log (``trial.log`` in its folder), capped: a trainer or script that floods its
output keeps the log's head and its last lines, and the disk.

One class for both kinds of trial: a function trial's prints and log records, and each
stream of a command trial's processes.
"""

from __future__ import annotations

import collections
import io
from typing import TextIO

TRIAL_LOG = "trial.log"
"""A trial's log, in its folder (a data-parallel trial's other ranks: ``rank-N.log``)."""
LOG_CAP_BYTES = 20 * 2**20
LAST_LINES = 20


class CappedLog(io.TextIOBase):
    """Writes to ``file`` up to ``cap`` bytes (default ``LOG_CAP_BYTES``); past it, only the
    last lines are kept, written at the end with how much was left out. ``recent``: the last
    lines written, kept or not (for error messages)."""

    def __init__(
        self, file: TextIO, cap: int | None = None, recent: collections.deque[str] | None = None
    ) -> None:
        self.file, self.cap = file, LOG_CAP_BYTES if cap is None else cap
        self.written = self.dropped = 0
        self.recent = collections.deque(maxlen=LAST_LINES) if recent is None else recent
        self._partial = ""

    def write(self, text: str) -> int:
        size = len(text.encode(errors="replace"))
        if self.written < self.cap:
            self.file.write(text)
            self.written += size
        else:
            self.dropped += size
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()[-1000:]
        self.recent.extend(line[-1000:] for line in lines)
        return len(text)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        if self.closed:
            return
        if self.dropped:
            self.file.write(
                f"[sweep: {self.dropped} more bytes of output not kept; the last "
                "lines follow]\n" + "\n".join([*self.recent, self._partial]) + "\n"
            )
            self.dropped = 0
        self.file.flush()
        super().close()
