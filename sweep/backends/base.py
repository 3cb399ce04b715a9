"""The one seam for where trials run: start, hear back, answer reports, cancel, close."""

from __future__ import annotations

from abc import ABC, abstractmethod

from search_spaces import Resources
from sweep.trials import Event, TrialSpec


class Backend(ABC):
    """A place that runs trials.

    The coordinator starts trials, polls for events (a report, a finish, a failure), answers
    every report (True: stop, the trial was pruned), and cancels trials that ran too long.
    A backend never decides anything about the sweep.
    """

    @abstractmethod
    def open(self, resources: Resources, parallel: int | None) -> int:
        """Gets ready; returns how many trials of ``resources`` can run at once."""

    @abstractmethod
    def start(self, spec: TrialSpec) -> None:
        """Starts a trial; returns at once."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Event]:
        """The events since the last poll, waiting up to ``timeout`` seconds for the first."""

    @abstractmethod
    def answer(self, number: int, stop: bool) -> None:
        """Replies to trial ``number``'s pending report."""

    @abstractmethod
    def cancel(self, number: int) -> None:
        """Stops trial ``number`` now, whatever it is doing; it sends no more events."""

    @abstractmethod
    def close(self) -> None:
        """Cancels what still runs and frees everything."""
