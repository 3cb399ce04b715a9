from __future__ import annotations

from typing import Any

# A message is one line a person reads: a 1 MB value quoted in it would bury the point.
MAX_MESSAGE = 300


def abbreviate(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters with an ellipsis (for names in messages)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_message(text: str) -> str:
    """Any message a user reads, bounded: the one place that says how long one may be."""
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


_clip = clip_message


class SearchSpaceError(ValueError):
    """A sweep file or search space that cannot be used, with the key path at fault.

    The message is one sentence meant for the user: ``path: what is wrong``.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = _clip(path)
        self.reason = _clip(message)
        super().__init__(_clip(f"{self.path}: {self.reason}" if path else self.reason))


class SearchSpaceErrors(SearchSpaceError):
    """Every problem found in one file, one line each (``errors`` holds them in file order)."""

    errors: list[SearchSpaceError]

    def __init__(self, errors: list[SearchSpaceError]) -> None:
        flat: list[SearchSpaceError] = []
        for error in errors:
            inner: list[SearchSpaceError] = getattr(error, "errors", [error])
            flat.extend(inner)
        self.errors = flat
        ValueError.__init__(self, "\n".join(str(e) for e in flat))
        self.path = flat[0].path
        self.reason = flat[0].reason
