"""What a sweep keeps on disk (``keep:``): every trial's records and logs, ``best/``, and the
model files of the best few completed trials only.

A ResNet-18 checkpoint is 43 MB; a sweep that kept one per trial, pruned ones included, left
433 MB after the README's 8-trial demo. Pruned and failed trials can never become the best,
so their weights go when they end; a completed trial's go when it drops out of the best
``keep.models``. Records stay: params.json, metrics.jsonl, result.json, trial.log.
A trial's checkpoint (``keep.checkpoints: latest``) goes when it ends, except the best
completed trial's: what ``sweep continue`` trains further.
"""

from __future__ import annotations

import bisect
import logging
from pathlib import Path

from search_spaces.config import Keep
from sweep import layout
from sweep.checkpoint_store import CheckpointStore

logger = logging.getLogger(__name__)

# Files that hold weights, whichever framework or script wrote them.
MODEL_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".onnx", ".safetensors", ".bin", ".h5",
                            ".keras", ".pkl", ".joblib"})


def drop_model_files(trial_folder: Path) -> int:
    """Deletes the model files under a trial's ``outputs/``; returns the bytes freed."""
    outputs = Path(trial_folder) / layout.OUTPUTS
    if not outputs.is_dir():
        return 0
    freed = 0
    for path in outputs.rglob("*"):
        if path.suffix.lower() in MODEL_SUFFIXES and path.is_file() and not path.is_symlink():
            freed += path.stat().st_size
            path.unlink()
    return freed


class ModelFiles:
    """Applies ``keep`` as trials end; the coordinator tells it each ending."""

    def __init__(self, sweep_dir: Path, keep: Keep, *, maximize: bool,
                 completed: list[tuple[int, float]]) -> None:
        """``completed``: the (number, value) of trials completed before (on resume)."""
        self.sweep_dir = sweep_dir
        self.keep = keep
        self.sign = -1.0 if maximize else 1.0
        self._kept: list[tuple[float, int]] = []  # (sign * value, number), best first
        self._best: tuple[float, int] | None = None  # the one completed trial with a checkpoint
        for number, value in sorted(completed, key=lambda c: self.sign * c[1]):
            self._completed(number, value)

    def ended(self, number: int, value: float | None) -> None:
        """A trial ended: completed with ``value``, or pruned/failed (``value`` None)."""
        if value is None:
            self._drop_checkpoint(number)
            if self.keep.models is not None:
                self._drop(number)
        else:
            self._completed(number, value)

    def _completed(self, number: int, value: float) -> None:
        # The best completed trial keeps its checkpoint (``sweep continue`` trains it
        # further); a trial that is not, or no longer, the best loses its own.
        entry = (self.sign * value, number)
        if self._best is None or entry < self._best:
            if self._best is not None:
                self._drop_checkpoint(self._best[1])
            self._best = entry
        else:
            self._drop_checkpoint(number)
        if self.keep.models is None:
            return
        bisect.insort(self._kept, entry)
        while len(self._kept) > self.keep.models:
            _, worst = self._kept.pop()
            self._drop(worst)

    def _drop_checkpoint(self, number: int) -> None:
        if self.keep.checkpoints != "all":
            CheckpointStore(layout.trial_dir(self.sweep_dir, number)).remove()

    def _drop(self, number: int) -> None:
        freed = drop_model_files(layout.trial_dir(self.sweep_dir, number))
        if freed:
            logger.debug("trial %d: removed %.1f MB of model files (keep.models = %s)",
                         number, freed / 1e6, self.keep.models)
