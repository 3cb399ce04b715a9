"""Joining a Ray cluster as it comes, token authentication included.

Ray 2.59 starts local clusters with token authentication by default, so a head started with
``ray start --head`` expects a token that a driver sends only in ``RAY_AUTH_MODE=token``;
without it ``ray.init`` retries for about 30 s and fails with "Failed to connect". A process
reads the mode once, at its first ``ray.init``, so it is decided before joining: token mode
whenever a token is to be had where Ray looks for one (``RAY_AUTH_TOKEN``, the file at
``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``); a cluster without authentication ignores
the token.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from sweep.errors import SweepError

DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")


def token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return Path(path).expanduser().is_file()
    return DEFAULT_TOKEN_FILE.expanduser().is_file()


def local_token_mode() -> None:
    """A local Ray with token authentication, said explicitly: Ray then keeps it on without
    printing its "Token authentication is enabled…" banner on every run. Only before Ray is
    imported, when its configuration is read; a mode the user set is left alone."""
    if "RAY_AUTH_MODE" not in os.environ and "ray" not in sys.modules:
        os.environ["RAY_AUTH_MODE"] = "token"


def use_token_if_available() -> None:
    """Token mode when a token is to be had; call before ``ray`` is first imported, which
    is when Ray reads the mode."""
    if "RAY_AUTH_MODE" not in os.environ and token_available():
        os.environ["RAY_AUTH_MODE"] = "token"


def join_cluster(address: str, runtime_env: dict[str, Any] | None = None) -> None:
    import ray
    from ray.exceptions import RayError

    # What ray.init raises when it cannot join: no cluster there, or one that wants a token.
    join_errors = (ConnectionError, RuntimeError, ValueError, RayError)
    try:
        ray.init(
            address=address,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=False,
            runtime_env=runtime_env or None,
        )
        return
    except join_errors as exc:
        first = exc
        ray.shutdown()
    hint = (
        ""
        if token_available()
        else (
            "; if the cluster uses Ray's token authentication, give this machine its token: "
            "RAY_AUTH_TOKEN, a file named by RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token "
            "('ray get-auth-token' on the head prints it)"
        )
    )
    raise SweepError(
        f"compute: cannot reach the Ray cluster at {address}: "
        f"{str(first).splitlines()[0] if str(first) else type(first).__name__}"
        f"{hint}"
    ) from None
