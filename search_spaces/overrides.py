"""``--set KEY=VALUE`` on a sweep file's mapping, as the Azure CLI's ``az ml job create --set``.

``KEY`` is a dotted path (``inputs.iris_csv.path``, ``limits.max_total_trials``); ``VALUE``
is read as YAML (``4`` an integer, ``0.1`` a float, ``true`` a boolean, ``[1, 2]`` a list).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from search_spaces._errors import SearchSpaceError
from search_spaces.yaml_file import parse_yaml


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``data`` with every ``KEY=VALUE`` set; intermediate mappings are created."""
    out = copy.deepcopy(dict(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise SearchSpaceError(
                "--set", f"{item!r} must be KEY=VALUE, e.g. inputs.iris_csv.path=./iris.csv"
            )
        try:
            value = parse_yaml(raw, "--set") if raw else ""
        except SearchSpaceError:
            value = raw
        holder: dict[str, Any] = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            nxt = holder.get(part)
            if nxt is None:
                nxt = holder[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(parts[: i + 1])
                raise SearchSpaceError("--set", f"{key}: {where} is {nxt!r}, not a mapping")
            holder = nxt
        holder[parts[-1]] = value
    return out
