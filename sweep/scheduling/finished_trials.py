"""A study's trials as they finish, each read once: what a rule comparing a trial with its
peers (Azure ML's rules, the forecast, promotion by forecast) needs, at the cost of the trials
still running rather than of the whole sweep."""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState


class FinishedTrials:
    """A study's trials as they finish, each read once (a finished trial never changes:
    Optuna refuses to), and the ones running now: what a rule that compares a trial with
    its peers needs, at the cost of the trials still running rather than the whole sweep."""

    def __init__(self) -> None:
        self._count = 0
        """How many of the study's trials were looked at (positions never move)."""
        self._open: set[int] = set()
        """Positions of trials not finished when last looked at."""
        self.finished: list[FrozenTrial] = []
        """Complete, pruned or failed, in the order they were seen finished."""

    def update(self, trials: list[FrozenTrial]) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """(the trials finished since the last look, the trials running now)."""
        self._open.update(range(self._count, len(trials)))
        self._count = len(trials)
        new, running = [], []
        for i in sorted(self._open):
            t = trials[i]
            if t.state.is_finished():
                self._open.discard(i)
                new.append(t)
            elif t.state == TrialState.RUNNING:
                running.append(t)
        self.finished.extend(new)
        return new, running
