"""sweep: hyperparameter sweeps for PyTorch. Optuna decides, Ray runs the trials.

Example:
    >>> from sweep import Sweep
    >>> result = Sweep.from_yaml("space.yaml").run()   # doctest: +SKIP
    >>> result.best.params                             # doctest: +SKIP
"""

from __future__ import annotations

from sweep.api import BestTrial, Sweep, SweepResult, sweeps_root
from sweep.coordinator import SweepInterrupted
from sweep.errors import SweepError, SweepInputError, TrialFailed

__all__ = ["BestTrial", "Sweep", "SweepError", "SweepInputError", "SweepInterrupted",
           "SweepResult", "TrialFailed", "sweeps_root"]
