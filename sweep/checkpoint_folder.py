"""A trial's checkpoint folder as its trainer sees it, on whichever node runs it.

The folder is filled from the coordinator's copy when the trial starts, and at every
report the files that changed since the last one (by size, modification time and inode: a
file replaced by a rename counts as changed) go back with the report. Files named ``*.tmp``
are a writer's work in progress and never part of a checkpoint.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sweep.checkpoint_store import safe_name
from sweep.trials import CheckpointFiles

LIVE = ".live"
"""Under the trial's folder: one working copy per rank (removed when the trial ends)."""


class LiveCheckpoint:
    """The working copy of one trial's checkpoint on this node, for one rank."""

    def __init__(self, trial_folder: Path, rank: int = 0) -> None:
        self.path = Path(trial_folder) / LIVE / f"rank{rank}"
        self._seen: dict[str, tuple[int, int, int]] = {}

    def fill(self, files: CheckpointFiles | None) -> Path:
        """Empties the folder, then writes the checkpoint the trial continues from."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        for name, data in (files.changed.items() if files is not None else ()):
            target = self.path / safe_name(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self._seen = self._scan()
        return self.path

    def changes(self) -> CheckpointFiles | None:
        """What changed since the last call (or ``fill``); None when nothing did."""
        now = self._scan()
        changed: dict[str, bytes] = {}
        for name, stamp in now.items():
            if self._seen.get(name) != stamp:
                try:
                    changed[name] = (self.path / name).read_bytes()
                except OSError:  # replaced or removed while we looked: next report has it
                    now.pop(name)
        if not changed and now.keys() == self._seen.keys():
            return None
        self._seen = now
        return CheckpointFiles(changed, tuple(sorted(now)))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            self.path.parent.rmdir()
        except OSError:
            pass  # another rank's copy is still there

    def _scan(self) -> dict[str, tuple[int, int, int]]:
        found: dict[str, tuple[int, int, int]] = {}
        for folder, _, names in os.walk(self.path):
            for name in names:
                if name.endswith(".tmp"):
                    continue
                path = Path(folder) / name
                try:
                    st = path.stat(follow_symlinks=False)
                except OSError:
                    continue
                if path.is_symlink():
                    continue
                found[str(path.relative_to(self.path))] = (st.st_size, st.st_mtime_ns,
                                                           st.st_ino)
        return found
