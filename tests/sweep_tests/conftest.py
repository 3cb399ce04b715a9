from __future__ import annotations

import os

import pytest

BACKENDS = ["inprocess", "local_ray", "ray_cluster"]
RAY = {"ray_local", "ray_cluster"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts Ray is slow (seconds to start, two cores to share): marked so by
    construction, so that ``-m "not slow"`` stays Ray-free and quick."""
    for item in items:
        params = getattr(item, "callspec", None)
        backend = params.params.get("make_backend") if params is not None else None
        if RAY & set(getattr(item, "fixturenames", ())) or backend in ("local_ray", "ray_cluster"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.shutdown()
    # The repo root on the workers' path, so they import tests.sweep_tests.toy_trainers.
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": root, "OMP_NUM_THREADS": "1"}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_cluster(ray_local):
    """A real 2-node Ray cluster on this machine (head + one worker node), 1 CPU each."""
    from ray.cluster_utils import Cluster

    ray_local.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray_local.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="session", params=BACKENDS)
def make_backend(request):
    """A factory of fresh backends of one kind (each sweep closes the one it used)."""
    kind = request.param
    if kind == "inprocess":
        from sweep.backends import InProcessBackend

        return InProcessBackend
    from sweep.backends.ray_cluster import RayClusterBackend
    from sweep.backends.ray_local import LocalRayBackend

    if kind == "local_ray":
        request.getfixturevalue("ray_local")
        return LocalRayBackend
    cluster = request.getfixturevalue("ray_cluster")
    import ray

    if not ray.is_initialized():
        root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
        ray.init(
            address=cluster.address,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": root, "OMP_NUM_THREADS": "1"}},
        )
    return lambda: RayClusterBackend(f"ray:{cluster.address}")
