"""Joining a Ray cluster as it comes, token authentication included.

Ray 2.59 started local clusters with token authentication by default (``RAY_AUTH_MODE``), so
a head started with ``ray start --head`` may expect a token that a driver only sends when it
is told to: when the first connection fails and a token is to be had where Ray looks for it
(``RAY_AUTH_TOKEN``, the file at ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``), the
driver joins again in token mode.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray

from sweep.errors import SweepError

DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")


def token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return Path(path).expanduser().is_file()
    return DEFAULT_TOKEN_FILE.expanduser().is_file()


def _init(address: str) -> None:
    ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
             configure_logging=False)


def join_cluster(address: str) -> None:
    try:
        _init(address)
        return
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = exc
        ray.shutdown()
    if os.environ.get("RAY_AUTH_MODE") != "token" and token_available():
        os.environ["RAY_AUTH_MODE"] = "token"
        try:
            _init(address)
            return
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = exc
            ray.shutdown()
    hint = "" if token_available() else (
        "; if the cluster uses Ray's token authentication, give this machine its token: "
        "RAY_AUTH_TOKEN, a file named by RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token "
        "('ray get-auth-token' on the head prints it)")
    raise SweepError(f"compute: cannot reach the Ray cluster at {address}: "
                     f"{str(first).splitlines()[0] if str(first) else type(first).__name__}"
                     f"{hint}") from None
