"""Ray's processes end with the coordinator that started them, however it ends.

After ``kill -9`` of a coordinator, Ray's GCS, raylet and workers notice and exit, but its
dashboard and runtime-env agents live on for good. A watchdog in a session of its own keeps
a list of the coordinator's descendants (every 2 s: Ray's processes are long-lived) and,
once the coordinator is gone, ends those still running (same pid and start time). The
agents cannot be found any other way: they rename themselves and clobber their environment.
"""

from __future__ import annotations

import os
import subprocess
import sys

_WATCHDOG = """
import os, signal, sys, time
parent = int(sys.argv[1])
def table():
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":  # a zombie has ended (its parent has not reaped it yet)
                procs[int(name)] = (int(fields[1]), fields[19])  # ppid, start time
    return procs
def descendants(procs):
    found, todo = {}, [parent]
    while todo:
        pid = todo.pop()
        for child, (ppid, start) in procs.items():
            if ppid == pid and child not in found and child != os.getpid():
                found[child] = start
                todo.append(child)
    return found
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
known = {}
while parent in (procs := table()):
    known.update(descendants(procs))
    known = {p: s for p, s in known.items() if procs.get(p, (0, None))[1] == s}
    time.sleep(2)
time.sleep(1)  # Ray's own shutdown, when the coordinator ended normally, goes first
for sig in (signal.SIGTERM, signal.SIGKILL):
    procs = table()
    for pid, start in known.items():
        if procs.get(pid, (0, None))[1] == start:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    time.sleep(2)
"""


def guard_ray_processes() -> subprocess.Popen[bytes] | None:
    """Starts the watchdog of this process's descendants (None where there is no /proc)."""
    if not os.path.isdir("/proc"):
        return None
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid())],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
