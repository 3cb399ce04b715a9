"""Where trials run. One class per place; heavy imports (ray) only inside their module."""

from __future__ import annotations

from typing import Any

from sweep.backends.base import Backend
from sweep.backends.inprocess import InProcessBackend
from sweep.errors import SweepInputError


def make_backend(compute: str, runtime_env: dict[str, Any] | None = None) -> Backend:
    """The backend for a sweep file's ``compute`` value; ``runtime_env`` brings the trainer's
    code to a Ray cluster's nodes."""
    if compute == "local":
        from sweep.backends.ray_auth import local_token_mode

        local_token_mode()
        from sweep.backends.ray_local import LocalRayBackend

        return LocalRayBackend()
    if compute.startswith("ray:"):
        from sweep.backends.ray_auth import use_token_if_available

        use_token_if_available()
        from sweep.backends.ray_cluster import RayClusterBackend

        return RayClusterBackend(compute, runtime_env)
    raise SweepInputError(
        f"compute: {compute!r} runs the whole sweep in Azure ML (Sweep.run picks "
        "sweep.azure.sweep_job.AzureMLRunner for it), not on a trial backend"
    )


__all__ = ["Backend", "InProcessBackend", "make_backend"]
