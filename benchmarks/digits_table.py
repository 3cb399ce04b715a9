"""The digits trainer as a table, for benchmarks that run real sweeps on recorded curves: a
trial gets the curve of the configuration nearest its params in the digits curve bank
(``benchmarks/curves/digits.jsonl.gz``, 300 configurations of the built-in trainer; the same
model, image size, schedule, batch size and weight decay count most, then the distance in log
learning rate and momentum)."""

from __future__ import annotations

import json
import math
from pathlib import Path

BANK = Path(__file__).resolve().parent / "curves" / "digits.jsonl.gz"
CATEGORICAL = ("model", "image_size", "lr_schedule", "batch_size", "weight_decay")
LR_MIN, LR_MAX = 3e-4, 0.5
"""The bank's range of learning rates."""


class DigitsTable:
    def __init__(self) -> None:
        from sweep.replay.sources import load_bank

        self.rows = [(json.loads(c.label), c.values) for c in load_bank(BANK).curves if c.label]

    def space(self, lr_max: float = LR_MAX) -> dict:
        """The bank's space, learning rates up to ``lr_max``."""
        return {
            "learning_rate": {
                "type": "loguniform",
                "min_value": math.log(LR_MIN),
                "max_value": math.log(lr_max),
            },
            "momentum": {"type": "uniform", "min_value": 0.0, "max_value": 0.99},
            **{
                name: {"type": "choice", "values": sorted({r[name] for r, _ in self.rows})}
                for name in CATEGORICAL
            },
        }

    def nearest(self, params: dict) -> tuple[dict, tuple[float, ...]]:
        """The recorded configuration nearest ``params``, and its curve (best_val_acc after
        each epoch)."""

        def distance(row: dict) -> float:
            mismatched = sum(row[n] != params[n] for n in CATEGORICAL)
            return (
                mismatched
                + abs(math.log(row["learning_rate"]) - math.log(params["learning_rate"]))
                / math.log(LR_MAX / LR_MIN)
                + abs(row["momentum"] - params["momentum"]) / 0.99
            )

        return min(self.rows, key=lambda r: distance(r[0]))
