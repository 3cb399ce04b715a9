"""``trainer.env``: environment variables for the trainer's process, and the ``${VAR}``
references they and a storage URL may hold.

A reference is filled from the coordinator's environment only when a trial starts, so what
the file says (and sweep.yaml keeps, and messages show) never holds the value; a name that
reads as a secret (``*_KEY``, ``*TOKEN*``, ``*PASSWORD*``, ``*SECRET*``) must be a reference.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from search_spaces._errors import SearchSpaceError, abbreviate

VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET = re.compile(r"(KEY|TOKEN|PASSWORD|PASSWD|SECRET)", re.I)


def check_env(value: Any, path: str) -> dict[str, str]:
    """A mapping of variable names to strings (numbers and booleans are written as text)."""
    if not isinstance(value, Mapping):
        raise SearchSpaceError(path, f"expected a mapping of NAME: value, got {abbreviate(value)}")
    out: dict[str, str] = {}
    for name, raw in value.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise SearchSpaceError(
                f"{path}.{name}",
                "is not an environment variable name "
                "(letters, digits and _, not starting with a digit)",
            )
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        if not isinstance(raw, str | int | float):
            raise SearchSpaceError(f"{path}.{name}", f"expected text, got {abbreviate(raw)}")
        text = str(raw)
        if _SECRET.search(name) and text and not VAR.fullmatch(text):
            raise SearchSpaceError(
                f"{path}.{name}",
                "looks like a secret written into the file "
                "(it would be copied into sweep.yaml); keep it in the "
                f"coordinator's environment and write ${{{name}}} here",
            )
        out[name] = _passable(name, text, f"{path}.{name}")
    return out


# Linux refuses to start a process with one environment string over 32 pages (E2BIG).
MAX_ENV_ENTRY = 32 * 4096 - 1


def _passable(name: str, text: str, path: str) -> str:
    """``text`` if a process can be given ``name=text`` in its environment."""
    if "\0" in text:
        raise SearchSpaceError(path, "holds a NUL byte, which no environment variable can")
    if len(f"{name}={text}".encode(errors="surrogateescape")) > MAX_ENV_ENTRY:
        raise SearchSpaceError(
            path,
            f"is longer than a process's environment takes "
            f"({MAX_ENV_ENTRY} bytes with its name); pass a path to a file "
            "that holds it instead",
        )
    return text


def expand_env(env: Mapping[str, str], path: str = "trainer.env") -> dict[str, str]:
    """``env`` with its ``${VAR}`` references filled from this process's environment."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        found = os.environ.get(name)
        if found is None:
            raise SearchSpaceError(path, f"uses ${{{name}}}, which is not set here")
        return found

    return {
        name: _passable(name, VAR.sub(value, text), f"{path}.{name}") for name, text in env.items()
    }
