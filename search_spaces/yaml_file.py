"""YAML in, bounded: ``safe_load`` semantics, a size limit, and a limit on what aliases expand to.

A sweep file is small; one that is not is a mistake or an attack. Aliases are shared while
loading, so a ``billion laughs`` document loads in microseconds, but anything that walks the
value afterwards (a check, an error message, the dry-run plan) would expand it: the expanded
size is counted on the node graph first, in time linear in the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from search_spaces._errors import SearchSpaceError

MAX_FILE_BYTES = 1_000_000
MAX_VALUES = 100_000  # scalars, lists and mappings after every alias is expanded


def load_yaml(path: Path) -> Mapping[str, Any]:
    """Loads a sweep file's top-level mapping; every failure is a one-line SearchSpaceError."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise SearchSpaceError(str(path), "is not a file")
        if size > MAX_FILE_BYTES:
            raise SearchSpaceError(
                str(path),
                f"is {size / 1e6:.1f} MB; a sweep file may be at "
                f"most {MAX_FILE_BYTES // 1_000_000} MB",
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SearchSpaceError(str(path), "no such file") from None
    except OSError as exc:
        raise SearchSpaceError(str(path), f"cannot be read ({exc.strerror})") from None
    if b"\x00" in raw:
        raise SearchSpaceError(str(path), "is a binary file, not YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SearchSpaceError(str(path), f"is not UTF-8 text (byte {exc.start})") from None
    data = parse_yaml(text, str(path))
    if data is None:
        raise SearchSpaceError(str(path), "is empty; expected a sweep mapping with search_space")
    if not isinstance(data, Mapping):
        kind = type(data).__name__
        raise SearchSpaceError(str(path), f"expected a mapping at the top, got {kind}")
    return data


class SweepLoader(yaml.SafeLoader):
    """``safe_load``'s loader, reading numbers as YAML 1.2 and JSON do: ``1e-6`` is a float
    (YAML 1.1, which PyYAML follows, wants a dot and reads it as a string). Nothing else that
    PyYAML accepts changes."""


SweepLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load(text)`` with YAML 1.2 numbers, refusing keys written twice and
    documents whose aliases expand past MAX_VALUES."""
    loader = None
    try:
        loader = SweepLoader(text)  # it reads (and may refuse) the text right here
        node = loader.get_single_node()
        if node is None:
            return None
        if expanded_size(node) > MAX_VALUES:
            raise SearchSpaceError(
                where,
                f"its YAML aliases expand to more than {MAX_VALUES} "
                "values; write the values out or use fewer aliases",
            )
        check_unique_keys(node, where)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"{where}:{mark.line + 1}" if mark is not None else where
        raise SearchSpaceError(at, f"YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SearchSpaceError(where, f"YAML error: {str(exc)[:200]}") from None
    except RecursionError:
        raise SearchSpaceError(where, "is nested too deeply to be a sweep file") from None
    finally:
        if loader is not None:
            loader.dispose()


def check_unique_keys(root: yaml.Node, where: str) -> None:
    """Refuses a mapping that names a key twice: YAML keeps the last one without a word (a
    second ``limits:`` once raised a budget from 3 to 300). Merge keys (``<<``) may be
    overridden, as YAML means them to be."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue  # an alias: checked where it was defined
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            for key, value in node.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                full = f"{path}.{name}" if path else name
                if isinstance(key, yaml.ScalarNode) and name != "<<":
                    line = key.start_mark.line + 1
                    if name in lines:
                        raise SearchSpaceError(
                            f"{where}:{line}",
                            f"{full} is written twice (lines "
                            f"{lines[name]} and {line}); YAML would keep the last one silently",
                        )
                    lines[name] = line
                stack.append((value, full))


def expanded_size(root: yaml.Node) -> int:
    """How many nodes the document has once every alias is expanded (memoised per node)."""
    sizes: dict[int, int] = {}
    # Iterative post-order: a deep document must not hit Python's recursion limit here.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 0) for c in children)
            if sizes[id(node)] > MAX_VALUES:
                return sizes[id(node)]
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
