"""A local model registry: numbered versions per name, never overwritten, written atomically.

Layout: ``ROOT/NAME/VERSION/`` holding ``model.pt``, ``model.onnx`` and ``card.json``. A new
version is staged in a hidden folder and then renamed into place: a rename is atomic, so a
crash leaves no half version, and two processes registering the same name at once get two
distinct versions (the loser of a rename race takes the next number).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_spaces import SAFE_NAME
from sweep.errors import SweepInputError
from sweep.records import layout

STAGING_PREFIX = ".staging-"
# A staging folder this old belongs to a writer that died: safe to clear away.
STALE_STAGING_S = 3600


def registry_root(root: str | Path | None = None) -> Path:
    """Where models live: ``root``, else $SWEEP_MODELS, else ./models."""
    return Path(root or os.environ.get("SWEEP_MODELS") or "models")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    path: Path

    @property
    def card(self) -> dict[str, Any]:
        """The version's card; {} when it is missing or unreadable (a foreign folder)."""
        try:
            card = json.loads((self.path / layout.CARD).read_text())
        except (OSError, ValueError):
            return {}
        return card if isinstance(card, dict) else {}

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME:VERSION`` -> (name, version or None for the latest)."""
    name, _, version = ref.partition(":")
    check_name(name)
    if not version:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise SweepInputError(f"{ref}: the version must be a number from 1 up")
    return name, int(version)


def check_name(name: str) -> str:
    if not SAFE_NAME.match(name):
        raise SweepInputError(
            f"model name {name!r} must be letters, digits, '.', '_' or '-' and start with a "
            "letter or digit"
        )
    return name


class ModelRegistry:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = registry_root(root)

    def register(
        self, name: str, files: Mapping[str, Path], card: Mapping[str, Any]
    ) -> ModelVersion:
        """Copies ``files`` (target name -> source) and the card into a new version."""
        folder = self.root / check_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        self._clear_stale_staging(folder)
        staging = folder / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            for target, source in files.items():
                if Path(source).is_dir():  # a command trial's outputs folder
                    shutil.copytree(source, staging / target, symlinks=True)
                else:
                    shutil.copy2(source, staging / target)
            (staging / layout.CARD).write_text(json.dumps(dict(card), indent=2, default=str))
            while True:
                version = max(self._versions(folder), default=0) + 1
                try:
                    os.rename(staging, folder / str(version))
                except OSError:
                    if (folder / str(version)).exists():
                        continue  # another writer took this number first
                    raise
                return ModelVersion(name, version, folder / str(version))
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _versions(folder: Path) -> list[int]:
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir())

    @staticmethod
    def _clear_stale_staging(folder: Path) -> None:
        now = time.time()
        for path in folder.glob(f"{STAGING_PREFIX}*"):
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue  # another writer's version, renamed into place meanwhile
            if age > STALE_STAGING_S:
                shutil.rmtree(path, ignore_errors=True)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        # Anything else under the root (a README, someone's folder) is not ours to list.
        return sorted(
            p.name
            for p in self.root.iterdir()
            if SAFE_NAME.match(p.name) and p.is_dir() and self._versions(p)
        )

    def versions(self, name: str) -> list[ModelVersion]:
        folder = self.root / check_name(name)
        return [ModelVersion(name, v, folder / str(v)) for v in self._versions(folder)]

    def get(self, ref: str) -> ModelVersion:
        """``NAME`` (the latest version) or ``NAME:VERSION``."""
        name, version = parse_ref(ref)
        versions = self.versions(name)
        if not versions:
            raise SweepInputError(f"no model named {name!r} in {self.root}")
        if version is None:
            return versions[-1]
        for mv in versions:
            if mv.version == version:
                return mv
        raise SweepInputError(
            f"model {name} has no version {version} (versions: "
            f"{', '.join(str(v.version) for v in versions)})"
        )

    def download(self, ref: str, dest: str | Path, *, force: bool = False) -> Path:
        """Copies a version's files into ``dest`` (created if needed); returns ``dest``.

        A ``dest`` that already holds files is refused unless ``force``: they may be the
        user's own, and a model.pt of the same name would be overwritten.
        """
        mv = self.get(ref)
        dest = Path(dest)
        if dest.exists() and not dest.is_dir():
            raise SweepInputError(f"{dest} is a file; give a folder to download {mv} into")
        versions = self.root.resolve()
        target = dest.resolve()
        if target == versions or versions in target.parents or target in versions.parents:
            raise SweepInputError(
                f"{dest} is inside the registry (or holds it); its versions "
                "are never written over: download to a folder outside it"
            )
        if dest.is_dir() and any(dest.iterdir()) and not force:
            raise SweepInputError(
                f"{dest} is not empty; choose an empty or new folder, or "
                "add --force to write over files of the same names"
            )
        dest.mkdir(parents=True, exist_ok=True)
        for path in mv.path.iterdir():
            if path.is_dir():
                shutil.copytree(path, dest / path.name, dirs_exist_ok=True)
            else:
                shutil.copy2(path, dest / path.name)
        return dest
