from __future__ import annotations


class SearchSpaceError(ValueError):
    """A sweep file or search space that cannot be used, with the key path at fault.

    The message is one sentence meant for the user: ``path: what is wrong``.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)
