"""The metrics the built-in trainer reports every epoch (and returns at the end), by name.

The one place they are named: a sweep that sends this trainer to Azure ML checks its
objective against them. Light on purpose (no torch), so anyone can import it.
"""

from __future__ import annotations

EPOCH_METRICS = (
    "train_loss",
    "val_loss",
    "val_acc",
    "best_val_acc",
    "lr",
    "epoch_s",
    "images_per_s",
)
