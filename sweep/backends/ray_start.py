"""Starting and stopping a local Ray of the sweep's own."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from typing import Any

import ray


def start_local_ray() -> None:
    """A new Ray of our own on this machine ("local": never a cluster some other process
    left running), whose processes end with this one however it ends."""
    from sweep.backends.ray_reaper import guard_ray_processes

    guard_ray_processes()
    # Workers import what this process can, so a trainer in the user's own module works.
    # Given as the job's driver path rather than a runtime_env PYTHONPATH: a runtime_env
    # sends every new worker through Ray's runtime-env agent, 0.7 s more per worker start.
    path = [p for p in sys.path if p and os.path.isdir(p)]
    job = ray.job_config.JobConfig()
    extra: dict[str, Any] = {"job_config": job}
    if isinstance(getattr(job, "_py_driver_sys_path", None), list):
        job._py_driver_sys_path = path
    else:  # a Ray without that field: the slower, public way
        extra = {"runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(path)}}}
    ray.init(
        address="local",
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=False,
        **extra,
    )
    atexit.register(_stop_local_ray, getattr(ray._private.worker, "_global_node", None))


def _stop_local_ray(started: Any) -> None:
    """Runs before Ray's own exit handler (handlers run last-registered first).

    Ray's shutdown gives each of its processes a second to exit on SIGTERM; its autoscaler
    monitor, which has nothing to do or save on a single local node, always takes all of it
    (1 s of every ``sweep run``'s exit). It gets SIGKILL first; the rest stop as Ray stops
    them.
    """
    node = getattr(ray._private.worker, "_global_node", None)
    if node is None or node is not started:
        return  # stopped already, or a Ray someone else started since
    for info in getattr(node, "all_processes", {}).get("monitor", []):
        with contextlib.suppress(Exception):
            info.process.kill()
            info.process.wait(timeout=1)
    ray.shutdown()
