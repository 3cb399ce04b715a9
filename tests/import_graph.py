"""Import cycles among the project's modules and among its packages, read from the source
(module-level and function-level imports alike): kept in the repository so that the test runs
on a fresh clone.

The group level (a package's sub-packages, ``sweep.records``, ``sweep.scheduling``, …) is the
house by concern: no group reaches back into one that uses it. The package level is the
layering: ``sweep`` uses ``reports``, ``trainer`` and
``search_spaces``; ``reports`` must not reach back up into ``sweep`` (hand it plain data).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGES = ("sweep", "search_spaces", "trainer", "reports")


def module_graph(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    mods: dict[str, Path] = {}
    for pkg in packages:
        for f in (root / pkg).rglob("*.py"):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if "examples" in parts:
                continue  # a user's script shipped as an example, not the package's code
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        is_pkg = f.name == "__init__.py"
        for node in ast.walk(ast.parse(f.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = m if is_pkg else m.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if base else pkg
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                r = resolve(t)
                # A module importing its own package's face is not a cycle of interest.
                if r and r != m and not m.startswith(r + "."):
                    graph[m].add(r)
    return graph


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    top = {m: m.split(".")[0] for m in graph}
    out: dict[str, set[str]] = {p: set() for p in top.values()}
    for m, targets in graph.items():
        out[top[m]] |= {top[t] for t in targets if top[t] != top[m]}
    return out


def group_graph(graph: dict[str, set[str]], package: str = "sweep") -> dict[str, set[str]]:
    """The graph of ``package``'s groups: each sub-package is one node (``sweep.records``),
    each module directly in the package one more (``sweep.api``); the package's face
    (``sweep/__init__.py``) is left out, as it imports its groups to show them."""

    def group(m: str) -> str | None:
        parts = m.split(".")
        if parts[0] != package or len(parts) < 2:
            return None
        return ".".join(parts[:2])

    out: dict[str, set[str]] = {}
    for m, targets in graph.items():
        g = group(m)
        if g is None:
            continue
        out.setdefault(g, set())
        out[g] |= {t for t in map(group, targets) if t is not None and t != g}
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def mermaid(graph: dict[str, set[str]], package: str = "sweep") -> str:
    """The picture of ``package``'s house for the README: each group a box holding its
    modules, an arrow where a group imports another (the arrows of ``group_graph``)."""
    groups = group_graph(graph, package)
    members: dict[str, list[str]] = {g: [] for g in groups}
    for m in graph:
        parts = m.split(".")
        if parts[0] == package and len(parts) >= 2 and ".".join(parts[:2]) in members:
            members[".".join(parts[:2])].append(".".join(parts[2:3]) or parts[1])
    lines = ["```mermaid", "flowchart TB"]
    for g in sorted(groups):
        name = g.split(".", 1)[1]
        inner = sorted({m for m in members[g] if m != name})
        if inner:
            lines.append(f'  subgraph {name}["{name}/"]')
            lines.append(f'    {name}_m["{" · ".join(inner)}"]')
            lines.append("  end")
        else:
            lines.append(f'  {name}["{name}.py"]')
    for g, t in reduced(groups):
        lines.append(f"  {g.split('.', 1)[1]} --> {t.split('.', 1)[1]}")
    lines.append("```")
    return "\n".join(lines)


def reduced(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The arrows of an acyclic graph that no longer path implies (its transitive
    reduction): what a reader needs to see of the layers."""

    def reach(start: str, skip: tuple[str, str]) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            v = todo.pop()
            for w in graph.get(v, ()):
                if (v, w) != skip and w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen

    return [(v, w) for v in sorted(graph) for w in sorted(graph[v]) if w not in reach(v, (v, w))]
