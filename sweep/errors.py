from __future__ import annotations


class SweepError(Exception):
    """The root of every error this package raises on purpose; the CLI's exit code 1."""


class SweepInputError(SweepError):
    """The user's input is wrong (a flag, a name, a missing sweep); the CLI's exit code 2."""


class TrialFailed(SweepError):
    """One trial failed; the sweep records it and goes on."""


class TrialLost(TrialFailed):
    """A trial was stopped from outside (its process killed, its node preempted): a trial
    with a checkpoint continues from it."""


class TrialPreempted(TrialLost):
    """A trial stopped on a preemption notice (SIGTERM before its node goes, a drain), its
    state saved where the notice found it: it continues from there without spending a
    retry or counting as a loss."""


class SweepInterrupted(SweepError):
    """Ctrl-C: running trials were stopped and queued to run again on resume."""
