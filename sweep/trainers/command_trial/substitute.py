"""Azure ML's expressions in a command: ``${{search_space.X}}``, ``${{inputs.X}}``,
``${{outputs.X}}``, and the optional blocks ``$[[ … ]]`` that are dropped when an input they
name was not given."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

_EXPRESSION = re.compile(r"\$\{\{\s*([A-Za-z_]+)\.([A-Za-z0-9_.\-]+)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)


def expand_command(
    command: str,
    *,
    search_space: Mapping[str, Any],
    inputs: Mapping[str, Any],
    outputs: Mapping[str, str],
) -> str:
    """The command with every expression replaced by its value, shell-quoted where needed.

    Example:
        >>> expand_command("python t.py --lr ${{search_space.lr}} $[[--w ${{inputs.w}}]]",
        ...                search_space={"lr": 0.1}, inputs={}, outputs={})
        'python t.py --lr 0.1 '
    """
    groups = {"search_space": search_space, "inputs": inputs, "outputs": outputs}

    def lookup(group: str, name: str) -> Any:
        parts = name.split(".")
        value: Any = groups.get(group, {})
        for part in parts:
            if not isinstance(value, Mapping) or part not in value:
                raise KeyError(f"${{{{{group}.{name}}}}}")
            value = value[part]
        return value

    def render(match: re.Match[str]) -> str:
        value = lookup(match.group(1), match.group(2))
        if isinstance(value, Mapping | list):
            value = json.dumps(value)
        return shlex.quote(str(value)) if str(value) else "''"

    def optional(match: re.Match[str]) -> str:
        block = match.group(1)
        try:
            for inner in _EXPRESSION.finditer(block):
                if lookup(inner.group(1), inner.group(2)) is None:
                    return ""
        except KeyError:
            return ""
        return _EXPRESSION.sub(render, block)

    return _EXPRESSION.sub(render, _OPTIONAL.sub(optional, command))
