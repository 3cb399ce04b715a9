"""What a Ray cluster's workers need of the trainer's code, as a Ray ``runtime_env``.

A worker on another node has the environment but not the user's files: a command trial's
code snapshot goes as ``working_dir`` (the worker starts in it) and a
``package.module:function`` trainer's top-level package (when it is not an installed
distribution) as ``py_modules``. Ray uploads both once and caches them on each node.
"""

from __future__ import annotations

import importlib.util
import sysconfig
from pathlib import Path
from typing import Any


def code_runtime_env(entry: Any, code: Path | None = None) -> dict[str, Any]:
    """The runtime_env that brings ``entry``'s code (or a command trial's ``code`` folder)
    to every worker of a cluster; ``{}`` when the nodes' environment already has it.

    Ray uploads local folders only for the whole job (``ray.init``), so this is decided
    before the cluster is joined.
    """
    if code is not None:
        from sweep.trainers.command_sweep import SNAPSHOT_EXCLUDES

        return (
            {"working_dir": str(code), "excludes": list(SNAPSHOT_EXCLUDES)} if code.is_dir() else {}
        )
    if not isinstance(entry, str) or entry == "trainer":
        return {}
    top = entry.partition(":")[0].split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None:
        return {}
    if spec.submodule_search_locations:
        location = Path(next(iter(spec.submodule_search_locations)))
    elif spec.origin:
        location = Path(spec.origin)
    else:
        return {}
    installed = (Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["platlib"]))
    if any(location.is_relative_to(p) for p in installed):
        return {}  # an installed distribution: the nodes' environment has it
    return {"py_modules": [str(location)]}
