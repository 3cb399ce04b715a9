"""A trial's checkpoint as the coordinator keeps it: ``trials/NNNN/checkpoint/``.

Each report's checkpoint is committed whole or not at all. The files go to a new version
folder (unchanged files hard-linked from the previous version, so only what changed is
written), then ``LATEST.json`` is replaced in one rename to point at it; only then is the
previous version removed. A crash at any step leaves ``LATEST.json`` naming a complete
version, and the next commit or read clears what the crash left half-made.

    trials/0007/checkpoint/
      LATEST.json            {"epoch": 5, "version": "000005.1732860000123", "metrics": {...}}
      000005.1732860000123/  the trainer's files as of its report of epoch 5
      .staged-k3j9x2/        the changed files of a report on their way in (see below)

A worker on the coordinator's file system (the same node, or a shared disk) copies a
report's changed files into a ``.staged-*`` folder here itself and sends only their names;
the commit then fsyncs them and renames that folder into the version, as it would its own.
A worker knows it is on that file system when it reads the coordinator's token, written
once per run of the coordinator in the sweep's folder (``sweeps/NAME/.token``,
``write_token``; a token of each trial's own cost two metadata writes per trial start,
where one per coordinator run does).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from search_spaces.atomic_files import write_atomic
from sweep.errors import SweepError
from sweep.trials import CheckpointFiles

logger = logging.getLogger(__name__)

FOLDER = "checkpoint"
LATEST = "LATEST.json"
TOKEN = ".token"
STAGED = ".staged-"
_PARTIAL = ".incoming-"


def write_token(folder: Path) -> str:
    """A fresh token in ``folder/.token`` for this run of the coordinator; '' when it cannot
    be written (something not a plain file in its place): workers then send bytes."""
    token = secrets.token_hex(16)
    # Written in place, not flushed: workers read it only after this returns, and a token
    # read half-written or lost in a crash only sends the bytes through Ray. Opened without
    # following a link or waiting on a FIFO put in its place.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / TOKEN, flags, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return ""
            os.write(fd, token.encode())
        finally:
            os.close(fd)
    except OSError:
        return ""
    return token


@dataclass(frozen=True)
class Committed:
    """The latest committed checkpoint: its epoch, the metrics reported with it, its files."""

    epoch: int
    metrics: Mapping[str, Any]
    folder: Path


def safe_name(name: str) -> str:
    """A file name from a worker, checked before it becomes a path under the store."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or "\0" in name:
        raise SweepError(f"checkpoint: {name!r} is not a file name inside the folder")
    return str(path)


class CheckpointStore:
    """The committed checkpoint of the trial whose folder is ``trial_folder``."""

    def __init__(self, trial_folder: Path) -> None:
        self.root = Path(trial_folder) / FOLDER

    def latest(self) -> Committed | None:
        try:
            record = json.loads((self.root / LATEST).read_text())
            folder = self.root / safe_name(str(record["version"]))
            epoch = int(record["epoch"])
        except (OSError, ValueError, KeyError, TypeError, SweepError):
            return None
        if not folder.is_dir():
            return None
        return Committed(epoch, dict(record.get("metrics") or {}), folder)

    def commit(self, epoch: int, metrics: Mapping[str, Any], files: CheckpointFiles) -> None:
        """Makes ``files`` (changes against the latest version) the checkpoint at ``epoch``."""
        self.root.mkdir(parents=True, exist_ok=True)
        previous = self.latest()
        if files.staged:
            incoming = self._staged(files.staged)
            staged = set(files.staged_names)
        else:
            incoming = Path(tempfile.mkdtemp(prefix=_PARTIAL, dir=self.root))
            staged = set()
        try:
            for raw in files.names:
                try:
                    name = safe_name(raw)
                except SweepError as exc:  # one bad entry costs itself, not the checkpoint
                    logger.warning("%s: %s: skipped", self.root.parent.name, exc)
                    continue
                target = incoming / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if raw in staged:
                    _sync_regular(target)
                elif raw in files.changed:
                    _write_durably(target, files.changed[raw])
                elif previous is not None and (previous.folder / name).is_file():
                    _link_or_copy(previous.folder / name, target)
                else:
                    raise SweepError(
                        f"checkpoint: {name} is unchanged since a version the "
                        "coordinator does not have"
                    )
            version = f"{epoch:06d}.{time.time_ns()}"
            os.rename(incoming, self.root / version)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        record = {"epoch": epoch, "version": version, "metrics": dict(metrics)}
        write_atomic(self.root / LATEST, json.dumps(record, default=str))
        _sync_folder(self.root)
        self._drop_all_but(version)

    def read(self) -> CheckpointFiles | None:
        """The latest version's files, to start the trial elsewhere; None if there is none."""
        latest = self.latest()
        if latest is None:
            return None
        changed = {
            str(p.relative_to(latest.folder)): p.read_bytes()
            for p in sorted(latest.folder.rglob("*"))
            if p.is_file()
        }
        return CheckpointFiles(changed, tuple(changed))

    def size(self) -> int:
        latest = self.latest()
        if latest is None:
            return 0
        return sum(p.stat().st_size for p in latest.folder.rglob("*") if p.is_file())

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def discard(self, files: CheckpointFiles | None) -> None:
        """A report's staged files that will not be committed (its trial had ended)."""
        if files is not None and files.staged:
            with contextlib.suppress(SweepError):
                shutil.rmtree(self._staged(files.staged), ignore_errors=True)

    def discard_staged(self) -> None:
        """Every staged folder: no worker of the trial is running to send its names."""
        with contextlib.suppress(OSError):
            for entry in self.root.iterdir():
                if entry.name.startswith(STAGED):
                    shutil.rmtree(entry, ignore_errors=True)

    def _staged(self, name: str) -> Path:
        """The staged folder a worker named, checked: a folder of its own in this store."""
        folder = self.root / name
        if (
            not name.startswith(STAGED)
            or PurePosixPath(name).name != name
            or not stat.S_ISDIR(_lstat_mode(folder))
        ):
            raise SweepError(f"checkpoint: {name!r} is not a folder staged in {self.root}")
        return folder

    def _drop_all_but(self, version: str) -> None:
        # A staged folder is the trial's next report, already on its way: it stays.
        for entry in self.root.iterdir():
            if (
                entry.name not in (version, LATEST)
                and not entry.name.startswith(STAGED)
                and entry.is_dir()
            ):
                shutil.rmtree(entry, ignore_errors=True)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_regular(path: Path) -> None:
    """Flushes a staged file to disk: a regular file, never a link followed."""
    with regular_file(path) as opened:
        if opened is None:
            raise SweepError(f"checkpoint: staged {path.name} is not a regular file")
        os.fsync(opened[0])


@contextlib.contextmanager
def regular_file(path: Path) -> Iterator[tuple[int, int] | None]:
    """``path`` open for reading with its size, if it is a regular file; else None (a link
    is never followed, a FIFO never waits for a writer, a device is never read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        yield None
        return
    try:
        st = os.fstat(fd)
        yield (fd, st.st_size) if stat.S_ISREG(st.st_mode) else None
    finally:
        os.close(fd)


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def _link_or_copy(source: Path, target: Path) -> None:
    # Hard links cost nothing and the version folders are never written in place.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
