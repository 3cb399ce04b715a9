"""A preemption notice (SIGTERM before the kill: a spot or low-priority node's eviction, a
Ray node's drain, SLURM's ``--signal``) turned into a flag the training loop reads between
batches, so a run saves where it is instead of losing the epoch in flight.

The handler is installed only while a run trains, and only from the main thread (Python
delivers signals there); elsewhere (a trial in a thread) SIGTERM keeps its usual meaning,
unless the process listens for its runs in threads (:func:`listen_for_process`: a sweep's
trial worker, whose runs Ray calls off the main thread).
When nobody above the run handles the notice (a script that calls ``fit``), the signal is
passed on once the run has saved: the process ends as SIGTERM would have ended it (exit
code 143, what a scheduler or a sweep reads as "preempted"), only later and with its state.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from trainer.errors import TrainerError

NOTICE = threading.Event()
"""Set by SIGTERM while :func:`listening`; cleared when the outermost listener starts."""
_depth = 0
_process_wide = False


class Preempted(TrainerError):
    """The run stopped on a preemption notice, its state saved where the notice found it
    (when it had a checkpoint folder): run it again with the same folder to go on."""

    def __init__(self, epoch: int, batch: int, saved: bool) -> None:
        self.epoch, self.batch, self.saved = epoch, batch, saved
        where = f"preempted at epoch {epoch + 1}, batch {batch}"
        super().__init__(where + ("; its state is saved there" if saved else ""))


@contextlib.contextmanager
def listening(pass_on: bool = True) -> Iterator[bool]:
    """SIGTERM sets :data:`NOTICE` while the block runs (the previous handler is back after
    it); yields whether it listens (False off the main thread, unless the process listens
    for all its runs: :func:`listen_for_process`). ``pass_on``: the outermost
    listener hands a notice it heard to the previous handler at the end (a caller that
    handles :class:`Preempted` itself says False)."""
    global _depth
    in_main = threading.current_thread() is threading.main_thread()
    if not (in_main or _process_wide):
        yield False
        return
    if not _depth:  # a sweep's worker listens around the trainer, which listens too
        NOTICE.clear()
    # A process that listens for every run has its handler already (listen_for_process).
    own = in_main and not _process_wide
    before = signal.signal(signal.SIGTERM, _notice) if own else None
    _depth += 1
    try:
        yield True
    finally:
        _depth -= 1
        if own:
            signal.signal(signal.SIGTERM, before)
            if pass_on and not _depth and NOTICE.is_set():
                signal.raise_signal(signal.SIGTERM)


def _notice(signum: int, frame: FrameType | None) -> None:
    NOTICE.set()


def listen_for_process() -> None:
    """Called once on the main thread of a process whose runs train in other threads: from
    then on SIGTERM sets :data:`NOTICE` while a run listens (in any thread), and does what it
    did before while none does (an idle worker has nothing to save: it ends as it would
    have)."""
    global _process_wide
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("listen_for_process must be called on the main thread")
    before = signal.getsignal(signal.SIGTERM)

    def notice(signum: int, frame: FrameType | None) -> None:
        if _depth:
            NOTICE.set()
        elif callable(before):
            before(signum, frame)
        else:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)
            signal.raise_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, notice)
    _process_wide = True
