"""Files written whole or not at all: a temporary file beside the target, then a rename.

A full disk, a killed process or a Ctrl-C while writing leaves the previous file (or none),
never a truncated one that looks finished.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Writes ``data`` to ``path`` atomically; an OSError names ``path``, not the temp file.

    The temporary file has an unpredictable name and is created exclusively (a link planted
    at a guessed name is never followed); a device, FIFO or socket at ``path`` is refused,
    not replaced by a plain file.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise IsADirectoryError(21, "not a regular file", str(path)) if stat.S_ISDIR(mode) \
            else OSError(13, "not a regular file (a device, FIFO or socket)", str(path))
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    tmp = Path(name)
    try:
        # mkstemp's file is private (0600); the result gets the old file's mode, or what a
        # plain open() would have given it.
        os.fchmod(fd, stat.S_IMODE(mode) if mode is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
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


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _remove(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass
