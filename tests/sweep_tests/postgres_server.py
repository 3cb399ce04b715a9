"""A real PostgreSQL server for tests: Debian's binaries, a fresh cluster in a temporary
folder, listening on 127.0.0.1 only, stopped and removed afterwards. The server refuses to
run as root, so as root it runs as the ``postgres`` user."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def postgres_server(database: str = "sweeps") -> Iterator[str]:
    """Yields ``postgresql://sweep@127.0.0.1:PORT/DATABASE`` (no password: trust on loopback)."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL's server is not installed (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="sweep-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = dict(check=True, capture_output=True, timeout=120, cwd="/")
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "sweep",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            **run,
        )
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-w",
                    "-l",
                    str(folder / "server.log"),
                    "-o",
                    f"-p {port} -h 127.0.0.1 -k {sockets}",
                    "start",
                ]
            ),
            **run,
        )
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "sweep",
                    database,
                ]
            ),
            **run,
        )
        yield f"postgresql://sweep@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
            timeout=60,
            cwd="/",
        )
        shutil.rmtree(folder, ignore_errors=True)
