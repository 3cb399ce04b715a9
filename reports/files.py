"""Files written whole or not at all: a temporary file beside the target, then a rename.

A full disk, a killed process or a Ctrl-C while writing leaves the previous file (or none),
never a truncated one that looks finished.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Writes ``data`` to ``path`` atomically; an OSError names ``path``, not the temp file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        if exc.errno is not None and not (isinstance(exc.filename, str)
                                          and exc.filename == str(path)):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass
