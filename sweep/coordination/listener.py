"""Who hears a sweep's progress: the ``Listener`` protocol and the library's default."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

logger = logging.getLogger("sweep.coordination.coordinator")


class Listener(Protocol):
    """Whoever shows progress (the CLI's live view); every method is optional to act on.

    ``trial_continued`` may be left out: a listener without it hears nothing when a trial
    continues from its checkpoint.
    """

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None: ...
    def trial_reported(self, number: int, epoch: int, value: float | None) -> None: ...
    def trial_ended(self, number: int, state: str, value: float | None, reason: str) -> None: ...


class LogProgress:
    """The library's default listener: progress as log records (INFO, epochs at DEBUG), shown
    wherever the caller's logging configuration sends them; nothing is printed."""

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None:
        logger.info(
            "trial %d started: %s", number, ", ".join(f"{k}={v}" for k, v in params.items())
        )

    def trial_continued(self, number: int, epoch: int, why: str) -> None:
        logger.info(
            "trial %d continues from its checkpoint at epoch %d (%s)", number, epoch + 1, why
        )

    def trial_reported(self, number: int, epoch: int, value: float | None) -> None:
        logger.debug("trial %d epoch %d: %s", number, epoch + 1, value)

    def trial_ended(self, number: int, state: str, value: float | None, reason: str) -> None:
        logger.info(
            "trial %d %s%s%s",
            number,
            state.lower(),
            f" with {value:.4g}" if value is not None else "",
            f": {reason}" if reason else "",
        )
