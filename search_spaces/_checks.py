"""Small typed getters that validate one key at a time and name its path when they refuse."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

from search_spaces._errors import SearchSpaceError, SearchSpaceErrors

_MISSING = object()


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SearchSpaceError(path, f"expected a mapping, got {_kind(value)} {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise SearchSpaceError(path, f"keys must be strings, got {key!r}")
    return value


class Problems:
    """Collects the problems of a whole file so that validation reports them all at once."""

    def __init__(self) -> None:
        self.errors: list[SearchSpaceError] = []

    @contextlib.contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except SearchSpaceError as exc:
            self.errors.append(exc)

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise SearchSpaceErrors(self.errors)


def no_unknown_keys(
    value: Mapping[str, Any], path: str, allowed: set[str], hint: str | None = None
) -> None:
    """Raises naming every unknown key (one line each), not only the first."""
    unknown = [k for k in value if k not in allowed]
    if not unknown:
        return
    expected = hint or f"expected one of {', '.join(sorted(allowed))}"
    errors = [
        SearchSpaceError(f"{path}.{k}" if path else k, f"unknown key; {expected}") for k in unknown
    ]
    raise errors[0] if len(errors) == 1 else SearchSpaceErrors(errors)


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def number(d: Mapping[str, Any], key: str, path: str, default: Any = _MISSING) -> float:
    value = d.get(key, default)
    where = f"{path}.{key}"
    if value is _MISSING:
        raise SearchSpaceError(where, "is required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SearchSpaceError(where, f"expected a number, got {_kind(value)} {value!r}")
    if not math.isfinite(value):
        raise SearchSpaceError(where, f"expected a finite number, got {value!r}")
    return value


def optional_number(d: Mapping[str, Any], key: str, path: str) -> float | None:
    return None if d.get(key) is None else number(d, key, path)


def integer(d: Mapping[str, Any], key: str, path: str, default: Any = _MISSING) -> int:
    value = d.get(key, default)
    where = f"{path}.{key}"
    if value is _MISSING:
        raise SearchSpaceError(where, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise SearchSpaceError(where, f"expected an integer, got {_kind(value)} {value!r}")
    return value


def optional_integer(d: Mapping[str, Any], key: str, path: str) -> int | None:
    return None if d.get(key) is None else integer(d, key, path)


def boolean(d: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise SearchSpaceError(f"{path}.{key}", f"expected true or false, got {value!r}")
    return value


def string(d: Mapping[str, Any], key: str, path: str, default: Any = _MISSING) -> str:
    value = d.get(key, default)
    where = f"{path}.{key}" if path else key
    if value is _MISSING:
        raise SearchSpaceError(where, "is required")
    if not isinstance(value, str) or not value:
        raise SearchSpaceError(where, f"expected a non-empty string, got {_kind(value)} {value!r}")
    return value


def one_of(value: str, options: tuple[str, ...], path: str) -> str:
    if value not in options:
        raise SearchSpaceError(path, f"{value!r} is not one of {', '.join(options)}")
    return value


def positive(value: float, path: str, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "greater than 0"
        raise SearchSpaceError(path, f"must be {bound}, got {value!r}")
