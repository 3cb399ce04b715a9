"""An existing Ray cluster as the place trials run (``compute: ray:HOST:PORT`` or
``ray://HOST:PORT``): the local backend's workers, joined to the cluster."""

from __future__ import annotations

from typing import Any

import ray

from sweep.backends.ray_local import LocalRayBackend
from sweep.trials import TrialSpec


class RayClusterBackend(LocalRayBackend):
    """An existing Ray cluster, by ``ray://HOST:PORT`` (Ray Client) or ``ray:HOST:PORT`` (GCS).

    Every node needs the same Python environment as the coordinator (this package, torch…);
    the trainer's own code travels with each worker: a command trial's snapshot as Ray's
    ``working_dir``, a ``package.module:function`` trainer's package as ``py_modules``.
    """

    def __init__(self, address: str, runtime_env: dict[str, Any] | None = None) -> None:
        """``runtime_env``: what brings the trainer's code to the nodes (see ray_code)."""
        super().__init__()
        self.address = (
            address[len("ray:") :]
            if address.startswith("ray:") and not address.startswith("ray://")
            else address
        )
        self.runtime_env = runtime_env or {}

    def connect(self) -> None:
        if ray.is_initialized():
            return
        from sweep.backends.ray_auth import join_cluster

        join_cluster(self.address, self.runtime_env)

    def _prepare(self, spec: TrialSpec) -> TrialSpec:
        import dataclasses

        from sweep.trainers.command_trial import CommandTrainer

        if isinstance(spec.entry, CommandTrainer) and "working_dir" in self.runtime_env:
            # Workers start in the uploaded copy of the code, wherever their node is.
            entry = dataclasses.replace(spec.entry, code=None, code_in_working_dir=True)
            return dataclasses.replace(spec, entry=entry)
        return spec
