from __future__ import annotations


class TrainerError(Exception):
    """A training run that cannot start or go on; the message is one sentence for the user."""


class TrainerInputError(TrainerError):
    """What the user gave is wrong: an option, a weights file, the data (exit code 2)."""


class DataError(TrainerInputError):
    """The data set is missing, empty, or unreadable."""
