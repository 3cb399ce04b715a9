"""Where a command may write a file the user named (``sweep report --csv FILE`` …).

A report written over a sweep's own records would destroy them (``--csv
sweeps/NAME/study.journal`` once replaced the study with a CSV), and a rename onto a device,
a FIFO or a socket replaces the special file with a plain one. Such a path is refused in one
sentence before anything is written, whether it names the file or a link to it.
"""

from __future__ import annotations

import stat
from pathlib import Path

from search_spaces.atomic_files import file_kind
from sweep.errors import SweepInputError
from sweep.records import layout

# At the top of a sweep's folder, only these are not records (they are rewritten anyway),
# and each only by the option that writes its own kind.
_REWRITTEN = {layout.REPORT_HTML: "--html", layout.TRIALS_CSV: "--csv"}
_MARKS = (layout.CONFIG_FILE, layout.JOURNAL, layout.LOCK)


def check_output_path(path: Path, option: str) -> Path:
    """``path`` if a new file may replace it; else SweepInputError naming ``option``."""
    given = Path(path)
    target = given.resolve()  # through every link: what a rename would really displace
    try:
        mode = target.stat().st_mode
    except OSError:
        mode = None  # not there, or not reachable: the writer's own error says which
    if mode is not None and not stat.S_ISREG(mode):
        raise SweepInputError(
            f"{given}: is {file_kind(mode)}, not a file {option} may replace; "
            "give the path of a file to write"
        )
    record = _record_of(target, option)
    if record is not None:
        raise SweepInputError(
            f"{given}: is {record}; {option} there would destroy it: give "
            "a path outside the sweep's records"
        )
    return given


def _record_of(target: Path, option: str) -> str | None:
    """What ``target`` is among a sweep's or a registry's records, if it is one."""
    for folder in target.parents:
        if any((folder / mark).exists() for mark in _MARKS):
            inside = target.relative_to(folder)
            if len(inside.parts) == 1 and inside.name in _REWRITTEN:
                if option.startswith(_REWRITTEN[inside.name]):
                    return None
                return f"the sweep {folder.name!r}'s own {inside.name}"
            return f"part of the sweep {folder.name!r}'s records ({folder})"
        if (folder / layout.CARD).is_file():
            return f"part of the model saved in {folder}"
    if target.name.startswith(layout.JOURNAL):
        return "a study journal"
    return None
