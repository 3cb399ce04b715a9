"""sweep: hyperparameter sweeps for PyTorch."""

from __future__ import annotations

from sweep.errors import SweepError, SweepInputError, TrialFailed

__all__ = ["SweepError", "SweepInputError", "TrialFailed"]
