"""sweep: hyperparameter sweeps for PyTorch. Optuna decides, Ray runs the trials.

Example:
    >>> from sweep import Sweep
    >>> result = Sweep.from_yaml("space.yaml").run()   # doctest: +SKIP
    >>> result.best.params                             # doctest: +SKIP

The heavy parts (Optuna, pandas, Ray, torch) load when first used, not on ``import sweep``:
a Ray worker, ``sweep --help`` and ``sweep validate`` never pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sweep.errors import SweepError, SweepInputError, SweepInterrupted, TrialFailed

if TYPE_CHECKING:
    from sweep.api import Sweep, compare
    from sweep.records.layout import sweeps_root
    from sweep.result import BestTrial, SweepResult

_LAZY = {
    "BestTrial": "sweep.result",
    "Sweep": "sweep.api",
    "SweepResult": "sweep.result",
    "compare": "sweep.api",
    "sweeps_root": "sweep.records.layout",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")


__all__ = [
    "BestTrial",
    "Sweep",
    "SweepError",
    "SweepInputError",
    "SweepInterrupted",
    "SweepResult",
    "TrialFailed",
    "compare",
    "sweeps_root",
]
