"""Data-parallel trials on Ray: 2 DDP workers per trial, in a placement group."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from search_spaces import Resources
from sweep import Sweep
from sweep.trials import Finished, Reported, TrialSpec

ARGS = {
    "data": "digits",
    "image_size": 16,
    "batch_size": 64,
    "num_epochs": 3,
    "freeze": "backbone",
    "learning_rate": 0.05,
}


@pytest.mark.slow
def test_a_two_worker_sweep_trains_with_ddp(tmp_path, ray_local):
    result = Sweep(
        name="ddp",
        root=tmp_path,
        trainer_args={**ARGS, "num_epochs": 2},
        search_space={"momentum": {"type": "choice", "values": [0.9]}},
        resources={"cpus_per_trial": 1, "workers_per_trial": 2},
        limits={"max_total_trials": 1},
    ).run()
    assert result.counts == {"complete": 1}
    folder = result.sweep_dir / "trials" / "0000"
    assert "data-parallel (ddp): rank 0 of 2" in (folder / "trial.log").read_text()
    assert "data-parallel (ddp): rank 1 of 2" in (folder / "trial-rank1.log").read_text()
    # Rank 0 alone wrote the outputs: one metrics line per epoch.
    assert len((folder / "outputs" / "metrics.jsonl").read_text().splitlines()) == 2
    assert result.best_dir is not None and (result.best_dir / "model.onnx").is_file()


def _spec(tmp_path: Path) -> TrialSpec:
    return TrialSpec(0, {**ARGS, "output_dir": str(tmp_path / "out")}, "trainer", str(tmp_path))


def _drive(backend, stop_at: int) -> tuple[list, Finished]:  # type: ignore[no-untyped-def]
    reports = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for event in backend.poll(0.5):
            if isinstance(event, Reported):
                reports.append(event)
                backend.answer(event.number, event.epoch >= stop_at)
            elif isinstance(event, Finished):
                return reports, event
            else:
                raise AssertionError(f"trial failed: {event}")
    raise AssertionError("the trial did not finish")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local_ray", "ray_cluster"])
def test_pruning_stops_every_worker(tmp_path, request, where):
    import ray

    from sweep.backends.ray_cluster import RayClusterBackend
    from sweep.backends.ray_local import LocalRayBackend

    if where == "local_ray":
        request.getfixturevalue("ray_local")
        backend = LocalRayBackend()
    else:
        cluster = request.getfixturevalue("ray_cluster")
        if not ray.is_initialized():
            ray.init(address=cluster.address, log_to_driver=False)
        backend = RayClusterBackend(f"ray:{cluster.address}")
    assert backend.open(Resources(cpus_per_trial=1, workers_per_trial=2), None) == 1
    try:
        backend.start(_spec(tmp_path))
        run = backend._running[0]
        assert run.actors == [] and run.placing is not None  # start did not wait for Ray
        reports, finished = _drive(backend, stop_at=0)
        workers, group = run.actors, run.group
    finally:
        backend.close()
    assert [r.epoch for r in reports] == [0]  # rank 0 alone reports
    assert finished.result["pruned"] is True and finished.result["epochs_run"] == 1
    lines = (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0]
    # Every worker process is gone, and the placement group with them.
    assert len(workers) == 2
    for worker in workers:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(worker.address.remote(), timeout=30)
    assert ray.util.placement_group_table(group)["state"] == "REMOVED"
