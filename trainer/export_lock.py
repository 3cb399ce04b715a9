"""One process's training threads against its ONNX exports.

``torch.onnx.export(dynamo=True)`` sets process-wide state while it traces
(``torch.compiler.is_exporting()``, ``torch.fx.traceback.current_meta``): an optimiser call
in another thread meanwhile (``zero_grad`` and ``step`` are ``torch._disable_dynamo``
functions, which annotate that state when an export is on) breaks the other thread's
training with ``KeyError: 'custom'`` or the export with "Failed to decompose the FX graph".
Trials of the in-process backend are threads of one process, so a trial ending with an
export (``measure: latency_ms``) while another trains failed one of them, now and then.

Training holds the lock shared (trials train side by side); an export holds it alone, and
once it waits, no training starts a new step until it is done (at most one epoch's wait).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SharedExclusiveLock:
    """Held by many threads at once (shared) or by one alone (exclusive); a thread waiting
    to hold it alone goes before threads asking to share it, so it is never starved."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._sharers = 0
        self._alone = False
        self._waiting_alone = 0
        self._mine = threading.local()

    def _held_here(self) -> int:
        return getattr(self._mine, "count", 0)

    @contextmanager
    def shared(self) -> Iterator[None]:
        if self._held_here():  # nested in this thread: already counted
            self._mine.count += 1
            try:
                yield
            finally:
                self._mine.count -= 1
            return
        with self._changed:
            while self._alone or self._waiting_alone:
                self._changed.wait()
            self._sharers += 1
        self._mine.count = 1
        try:
            yield
        finally:
            self._mine.count = 0
            with self._changed:
                self._sharers -= 1
                self._changed.notify_all()

    @contextmanager
    def set_aside(self) -> Iterator[None]:
        """Lets go of this thread's shared hold for a while (a report to the sweep, which
        may wait on other trials; an export of its own) and takes it back after."""
        count = self._held_here()
        if not count:
            yield
            return
        self._mine.count = 0
        with self._changed:
            self._sharers -= 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                while self._alone or self._waiting_alone:
                    self._changed.wait()
                self._sharers += 1
            self._mine.count = count

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if self._held_here():
            raise RuntimeError("an export inside training would wait for itself: set_aside first")
        with self._changed:
            self._waiting_alone += 1
            try:
                while self._alone or self._sharers:
                    self._changed.wait()
            finally:
                self._waiting_alone -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._changed:
                self._alone = False
                self._changed.notify_all()


TORCH_STATE = SharedExclusiveLock()
"""Shared by ``fit`` while it trains, held alone by ``export_onnx``."""
