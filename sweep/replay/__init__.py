"""Replays recorded learning curves under any early-termination policy on a simulated
clock (``simulator``), from a finished sweep or a bank of curves (``sources``): which policy
for the next sweep, answered in seconds, and the test bed of the scheduling group.
"""

from sweep.replay.simulator import (
    STANDARD,
    Curve,
    Hindsight,
    KeepTopAfter,
    ReplayPolicy,
    Run,
    Summary,
    compare,
    replay,
)
from sweep.replay.sources import (
    Bank,
    crossing_curves,
    curves_of_sweep,
    hartmann_curves,
    load_bank,
    save_bank,
)

__all__ = [
    "STANDARD",
    "Bank",
    "Curve",
    "Hindsight",
    "KeepTopAfter",
    "ReplayPolicy",
    "Run",
    "Summary",
    "compare",
    "crossing_curves",
    "curves_of_sweep",
    "hartmann_curves",
    "load_bank",
    "replay",
    "save_bank",
]
