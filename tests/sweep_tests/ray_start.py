"""Ray clusters started as the README says (``ray start --head``, then ``ray start
--address`` per node), with Ray's token authentication as it comes; each stopped by its own
temp folder only (a plain ``ray stop`` would also end the suite's other Ray)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def processes_of(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def token_auth() -> bool:
    return Path("~/.ray/auth_token").expanduser().is_file() or bool(
        os.environ.get("RAY_AUTH_TOKEN")
    )


@contextlib.contextmanager
def ray_start_cluster(
    cwd: Path,
    *,
    head_cpus: int = 1,
    node_cpus: Sequence[int] = (1,),
    head_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Yields the cluster's ``ray:HOST:PORT`` address."""
    ray = str(Path(sys.executable).parent / "ray")
    temp = tempfile.mkdtemp(prefix="swr", dir="/tmp")  # short: Ray's socket paths are bounded
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.pop("RAY_ADDRESS", None)
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    try:
        subprocess.run(
            [
                ray,
                "start",
                "--head",
                f"--port={port}",
                f"--temp-dir={temp}",
                "--include-dashboard=false",
                f"--num-cpus={head_cpus}",
                *common,
            ],
            env={**env, **(head_env or {})},
            cwd=cwd,
            check=True,
            capture_output=True,
            timeout=120,
        )
        # A node joins in the head's authentication mode (token by default since Ray 2.59).
        node_env = {**env, "RAY_AUTH_MODE": "token"} if token_auth() else env
        for cpus in node_cpus:
            subprocess.run(
                [ray, "start", f"--address=127.0.0.1:{port}", f"--num-cpus={cpus}", *common],
                env=node_env,
                cwd=cwd,
                check=True,
                capture_output=True,
                timeout=120,
            )
        yield f"ray:127.0.0.1:{port}"
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in processes_of(temp):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(1)
        shutil.rmtree(temp, ignore_errors=True)
        # `ray start` leaves the cluster's address here; a later bare ray.init() would try to
        # join that dead cluster.
        Path(tempfile.gettempdir(), "ray", "ray_current_cluster").unlink(missing_ok=True)
