"""Files written whole or not at all: a temporary file beside the target, then a rename.

A full disk, a killed process or a Ctrl-C while writing leaves the previous file (or none),
never a truncated one that looks finished. The one atomic writer of every package (it lives
in the lowest one, which every other may import): the sweep's records and reports, the
trainer's checkpoints and ONNX files.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Writes ``data`` to ``path`` atomically; an OSError names ``path``, not the temp file.

    The temporary file has an unpredictable name and is created exclusively (a link planted
    at a guessed name is never followed); a device, FIFO or socket at ``path`` is refused,
    not replaced by a plain file.
    """
    path = Path(path)
    mode = _regular_or_absent(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = _temporary(path)
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
        if exc.errno is not None and not (
            isinstance(exc.filename, str) and exc.filename == str(path)
        ):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        _remove(tmp)
        raise
    return path


@contextmanager
def atomic_path(path: str | Path, *, durable: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (``torch.save``,
    ``torch.onnx.export``); what it wrote replaces ``path`` when the block ends without an
    error, and is removed otherwise. The same guarantees as ``write_atomic``; with
    ``durable=False`` the file is not flushed to disk first (a reader still never sees half
    of it: for a working copy whose durable copy is kept elsewhere)."""
    path = Path(path)
    mode = _regular_or_absent(path)
    fd, tmp = _temporary(path)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, stat.S_IMODE(mode) if mode is not None else 0o666 & ~_umask())
        if durable:
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def file_kind(mode: int) -> str:
    """What a file's ``st_mode`` says it is, in words (``a FIFO``), for an error message."""
    kinds = [
        (stat.S_ISLNK, "a link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISREG, "a regular file"),
    ]
    return next((name for test, name in kinds if test(mode)), "a special file")


def _regular_or_absent(path: Path) -> int | None:
    """The mode of the file at ``path`` (None: there is none); a special file is refused."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        raise (
            IsADirectoryError(21, "not a regular file", str(path))
            if stat.S_ISDIR(mode)
            else OSError(13, "not a regular file (a device, FIFO or socket)", str(path))
        )
    return mode


def _temporary(path: Path) -> tuple[int, Path]:
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    return fd, Path(name)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _remove(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass
