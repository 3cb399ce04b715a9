"""A trial's checkpoint folder as its trainer sees it, on whichever node runs it.

The folder is filled from the coordinator's copy when the trial starts, and at every
report the files that changed since the last one (by size, modification time and inode: a
file replaced by a rename counts as changed) go back with the report. Files named ``*.tmp``
are a writer's work in progress and never part of a checkpoint. On a node that shares the
coordinator's file system (it reads the coordinator's token in the sweep's folder) they are
copied into the store by the kernel and only their names go back; elsewhere their bytes
do, through Ray.

The folder is the trainer's to fill, so nothing in it is trusted: only regular files are
read (a FIFO would block the report for ever, a device never ends, a socket cannot be read),
the folder itself is never followed when it became a link (the store would copy whatever
it points at), each file is read with a bound (``max_bytes`` for the whole checkpoint), and
an entry that cannot be kept is skipped with one note for the coordinator to show, never
the whole checkpoint.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

from search_spaces.atomic_files import file_kind
from sweep.errors import SweepError
from sweep.records.checkpoint_store import (
    STAGED,
    TOKEN,
    CheckpointStore,
    regular_file,
    safe_name,
)
from sweep.trials import MAX_CHECKPOINT_BYTES, CheckpointFiles

LIVE = ".live"
"""Under the trial's folder: one working copy per rank (removed when the trial ends)."""

_Stamp = tuple[int, int, int]


class LiveCheckpoint:
    """The working copy of one trial's checkpoint on this node, for one rank."""

    def __init__(
        self,
        trial_folder: Path,
        rank: int = 0,
        *,
        max_bytes: int = MAX_CHECKPOINT_BYTES,
        store_token: str = "",
    ) -> None:
        self.path = Path(trial_folder) / LIVE / f"rank{rank}"
        self.max_bytes = max_bytes
        self._store = CheckpointStore(Path(trial_folder)).root
        # The coordinator's token is in the sweep's folder: sweeps/NAME/.token, with this
        # trial's folder at sweeps/NAME/trials/NNNN.
        self._stages = (
            bool(store_token)
            and _read_token(Path(trial_folder).parent.parent / TOKEN) == store_token
        )
        self._seen: dict[str, _Stamp] = {}
        self._noted: set[str] = set()
        self._notes: list[str] = []

    @property
    def stages(self) -> bool:
        """Whether changed files are copied into the coordinator's store (else sent)."""
        return self._stages

    def fill(self, files: CheckpointFiles | None) -> Path:
        """Empties the folder, then writes the checkpoint the trial continues from."""
        _remove(self.path)
        self.path.mkdir(parents=True)
        for name, data in files.changed.items() if files is not None else ():
            target = self.path / safe_name(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self._seen = self._scan()
        self._notes.clear()
        return self.path

    def changes(self) -> CheckpointFiles | None:
        """What changed since the last call (or ``fill``); None when nothing did and there
        is nothing new to say about it."""
        now = self._scan()
        changed: dict[str, bytes] = {}
        staged: list[str] = []
        stage = _Stage(self._store) if self._stages else None
        room = self.max_bytes - sum(stamp[0] for stamp in now.values())
        for name in list(now):
            if self._seen.get(name) == now[name]:
                continue
            if room < 0:
                self._note(
                    name,
                    f"{name}: the checkpoint's files pass keep.max_checkpoint_bytes"
                    f" ({self.max_bytes} bytes): not kept; raise the limit or "
                    "save less",
                )
                del now[name]
                room += self._size(name)
                continue
            if stage is not None and stage.copy(self.path / name, name, self.max_bytes):
                staged.append(name)
                continue
            data = self._read(name)
            if data is None:  # replaced, removed or turned special while we looked
                del now[name]
            else:
                changed[name] = data
        notes, self._notes = tuple(self._notes), []
        if stage is not None and not staged:
            stage.drop()  # a folder made for a copy that failed
        if not changed and not staged and now.keys() == self._seen.keys() and not notes:
            return None
        self._seen = now
        return CheckpointFiles(
            changed,
            tuple(sorted(now)),
            notes,
            staged=stage.name if stage is not None and staged else "",
            staged_names=tuple(staged),
        )

    def remove(self) -> None:
        _remove(self.path)
        try:
            self.path.parent.rmdir()
        except OSError:
            pass  # another rank's copy is still there

    def _note(self, key: str, text: str) -> None:
        if key not in self._noted:  # once per trial run: a report per epoch would repeat it
            self._noted.add(key)
            self._notes.append(text)

    def _size(self, name: str) -> int:
        try:
            return os.lstat(self.path / name).st_size
        except OSError:
            return 0

    def _read(self, name: str) -> bytes | None:
        """A regular file's bytes, at most its size when scanned plus nothing more."""
        try:
            with regular_file(self.path / name) as opened:
                if opened is None:
                    return None
                fd, size = opened
                limit = min(size, self.max_bytes)
                chunks, got = [], 0
                while got < limit:
                    chunk = os.read(fd, min(1 << 24, limit - got))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
                return b"".join(chunks)
        except OSError:
            return None

    def _scan(self) -> dict[str, _Stamp]:
        found: dict[str, _Stamp] = {}
        try:
            top = os.lstat(self.path)
        except OSError:
            return found
        if not stat.S_ISDIR(top.st_mode):  # the trainer put a link (or a file) in its place
            self._note(
                ".",
                f"the checkpoint folder {self.path} was replaced by "
                f"{file_kind(top.st_mode)}: nothing in it is kept",
            )
            return found
        # os.walk lists links to folders without entering them; the top was checked above.
        for folder, dirs, names in os.walk(self.path):
            for name in [*names, *(d for d in dirs if os.path.islink(os.path.join(folder, d)))]:
                if name.endswith(".tmp"):
                    continue
                path = Path(folder) / name
                rel = str(path.relative_to(self.path))
                try:
                    safe_name(rel)
                    st = os.lstat(path)
                except SweepError:
                    self._note(
                        rel,
                        f"{rel!r}: not a name the checkpoint can hold (a '\\' or "
                        "control character): skipped",
                    )
                    continue
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    self._note(
                        rel,
                        f"{rel}: is {file_kind(st.st_mode)}; a checkpoint keeps "
                        "regular files only: skipped",
                    )
                    continue
                found[rel] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return found


class _Stage:
    """A report's folder in the coordinator's store, made when its first file is copied."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.folder: Path | None = None
        self.broken = False

    @property
    def name(self) -> str:
        return self.folder.name if self.folder is not None else ""

    def copy(self, source: Path, name: str, limit: int) -> bool:
        """Copies a regular file (at most ``limit`` bytes) in; False: send its bytes instead
        (no folder could be made, or the file was not what it was when scanned)."""
        if self.broken:
            return False
        try:
            if self.folder is None:
                self.store.mkdir(exist_ok=True)  # a trial's first checkpoint makes the store
                self.folder = Path(tempfile.mkdtemp(prefix=STAGED, dir=self.store))
            target = self.folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            return _copy_regular(source, target, limit)
        except OSError:
            self.broken = self.folder is None
            return False

    def drop(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _copy_regular(source: Path, target: Path, limit: int) -> bool:
    """The kernel copies ``source`` to ``target`` when it is a regular file (a FIFO, a
    device or a link is never opened for reading): at most ``limit`` bytes."""
    with regular_file(source) as opened:
        if opened is None:
            return False
        src, size = opened
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            left = min(size, limit)
            while left > 0:
                done = _kernel_copy(src, dst, left)
                if not done:
                    break
                left -= done
        finally:
            os.close(dst)
        return True


def _kernel_copy(src: int, dst: int, count: int) -> int:
    chunk = min(count, 1 << 30)
    try:
        return os.copy_file_range(src, dst, chunk)
    except OSError as exc:  # an older kernel, or two file systems: sendfile copies too
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
    return os.sendfile(dst, src, None, chunk)


def _read_token(path: Path) -> str:
    try:
        with regular_file(path) as opened:
            return os.read(opened[0], 256).decode("ascii", "replace").strip() if opened else ""
    except OSError:
        return ""


def _remove(path: Path) -> None:
    """Removes the working copy, or the link the trainer left in its place (not its target)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
