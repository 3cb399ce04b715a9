"""The transfer-learning trainer: what one trial runs. Runnable alone as ``python -m trainer``.

It knows nothing of the sweep: it reports each epoch through ``report(epoch, metrics)`` and
stops when that returns True. Heavy imports (torch) happen in the submodules.
"""

from __future__ import annotations

from trainer.errors import DataError, TrainerError, TrainerInputError
from trainer.options import TrainConfig

__all__ = ["DataError", "TrainConfig", "TrainerError", "TrainerInputError"]
