from __future__ import annotations


class SearchSpaceError(ValueError):
    """A sweep file or search space that cannot be used, with the key path at fault.

    The message is one sentence meant for the user: ``path: what is wrong``.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


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
