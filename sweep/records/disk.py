"""What a sweep keeps on disk (``keep:``): every trial's records and logs, ``best/``, and the
model files of the best few completed trials only.

A ResNet-18 checkpoint is 43 MB; a sweep that kept one per trial, pruned ones included, left
433 MB after the README's 8-trial demo. Pruned and failed trials can never become the best,
so their weights go when they end; a completed trial's go when it drops out of the best
``keep.models`` (by the first objective, among trials meeting the constraints) and is not
on the Pareto front of a sweep of several objectives: any front member may be the one a
user registers. Records stay: params.json, metrics.jsonl, result.json, trial.log.
A trial's checkpoint (``keep.checkpoints: latest``) goes when it ends, except the best
completed trial's: what ``sweep continue`` trains further.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from pathlib import Path

from search_spaces.config import Keep
from sweep.records import layout
from sweep.records.checkpoint_store import CheckpointStore
from sweep.records.pareto import Front

logger = logging.getLogger(__name__)

# Files that hold weights, whichever framework or script wrote them.
MODEL_SUFFIXES = frozenset(
    {".pt", ".pth", ".ckpt", ".onnx", ".safetensors", ".bin", ".h5", ".keras", ".pkl", ".joblib"}
)


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

    def __init__(
        self,
        sweep_dir: Path,
        keep: Keep,
        *,
        maximize: Sequence[bool],
        completed: list[tuple[int, Sequence[float]]],
    ) -> None:
        """``maximize``: per objective; ``completed``: the (number, values) of feasible
        trials completed before (on resume)."""
        self.sweep_dir = sweep_dir
        self.keep = keep
        self.sign = -1.0 if maximize[0] else 1.0
        self._kept: list[tuple[float, int]] = []  # (sign * value, number), best first
        self._best: tuple[float, int] | None = None  # the one completed trial with a checkpoint
        self._front = Front(maximize) if len(maximize) > 1 else None
        self._out_of_top: set[int] = set()  # completed, left the best keep.models
        for number, values in sorted(completed, key=lambda c: self.sign * c[1][0]):
            self._completed(number, values)

    def ended(self, number: int, values: Sequence[float] | None) -> None:
        """A trial ended: completed with ``values`` (one per objective) and meeting the
        constraints, or pruned, failed or infeasible (None)."""
        if values is None:
            self._drop_checkpoint(number)
            if self.keep.models is not None:
                self._drop(number)
        else:
            self._completed(number, values)

    def _completed(self, number: int, values: Sequence[float]) -> None:
        # The best completed trial keeps its checkpoint (``sweep continue`` trains it
        # further); a trial that is not, or no longer, the best loses its own.
        entry = (self.sign * values[0], number)
        if self._best is None or entry < self._best:
            if self._best is not None:
                self._drop_checkpoint(self._best[1])
            self._best = entry
        else:
            self._drop_checkpoint(number)
        if self.keep.models is None:
            return
        off_front = self._front.add(number, values) if self._front is not None else []
        bisect.insort(self._kept, entry)
        while len(self._kept) > self.keep.models:
            _, worst = self._kept.pop()
            self._out_of_top.add(worst)
        for gone in [*self._out_of_top, *off_front]:
            on_front = self._front is not None and gone in self._front.members
            if gone in self._out_of_top and not on_front:
                self._out_of_top.discard(gone)
                self._drop(gone)

    def _drop_checkpoint(self, number: int) -> None:
        if self.keep.checkpoints != "all":
            CheckpointStore(layout.trial_dir(self.sweep_dir, number)).remove()

    def _drop(self, number: int) -> None:
        freed = drop_model_files(layout.trial_dir(self.sweep_dir, number))
        if freed:
            logger.debug(
                "trial %d: removed %.1f MB of model files (keep.models = %s)",
                number,
                freed / 1e6,
                self.keep.models,
            )
