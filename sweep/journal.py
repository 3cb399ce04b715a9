"""The study journal after a crash: a torn last record is cut off, never appended to.

Optuna appends one JSON line per operation. A power cut or a full disk can leave the last
line half-written; Optuna would skip it when reading but glue the next record onto it when
writing, which corrupts the journal for good. ``heal`` runs while the sweep's lock is held
(no writer is active), before the journal is opened for writing.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

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
