"""GPU packing without a GPU: a Ray that declares 4 GPUs on this CPU machine.

Ray hands out GPU ids and sets CUDA_VISIBLE_DEVICES exactly as on a real GPU node, so what
is checked here (how many trials run at once, which trial gets which card, what a data-
parallel trial's ranks get, a fresh worker after a failed trial) is what happens on one.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys, ray
ray.init(address="local", num_cpus=16, num_gpus=4, include_dashboard=False,
         log_to_driver=False)
from sweep import Sweep
from search_spaces import Resources
from sweep.backends.ray_local import LocalRayBackend
root = sys.argv[1]
out = {}
# Slots first: what open() computes from the declared resources.
for gpus, workers in ((0.25, 1), (0.5, 2), (1, 1), (2, 1)):
    backend = LocalRayBackend()
    out[f"slots {gpus}x{workers}"] = backend.open(Resources(cpus_per_trial=1, gpus_per_trial=gpus,
                                                            workers_per_trial=workers), None)
    backend.close()
space = {"x": {"type": "uniform", "min_value": 0, "max_value": 1}}
common = dict(trainer="tests.sweep_tests.toy_trainers:gpu_probe", root=root,
              search_space=space, sampling_algorithm={"type": "random", "seed": 1})
Sweep(name="quarter", resources={"cpus_per_trial": 0.5, "gpus_per_trial": 0.25},
      trainer_args={"together": 16}, limits={"max_total_trials": 16}, **common).run()
Sweep(name="ddp", resources={"cpus_per_trial": 1, "gpus_per_trial": 0.5,
                             "workers_per_trial": 2},
      trainer_args={"together": 4}, limits={"max_total_trials": 2}, **common).run()
Sweep(name="poison", trainer="tests.sweep_tests.toy_trainers:gpu_poison", root=root,
      search_space=space, resources={"cpus_per_trial": 1, "gpus_per_trial": 1},
      limits={"max_total_trials": 3, "max_concurrent_trials": 1}).run()
print("RESULT " + json.dumps(out))
"""


def _probes(folder: Path, kind: str = "probe") -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(folder.glob(f"trials/*/outputs/{kind}*.jsonl"))
        for line in path.read_text().splitlines()
    ]


@pytest.mark.slow
def test_fractional_gpus_pack_trials_on_declared_gpus(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
            "PYTHONPATH": str(ROOT),
        },
    )
    assert run.returncode == 0, run.stderr[-3000:]
    slots = json.loads(run.stdout.split("RESULT ", 1)[1].splitlines()[0])  # Ray may print after
    assert slots == {"slots 0.25x1": 16, "slots 0.5x2": 4, "slots 1x1": 4, "slots 2x1": 2}

    # gpus_per_trial 0.25 on 4 GPUs: 16 trials at once, 4 to a card, each told its own card.
    quarter = _probes(tmp_path / "quarter")
    assert len(quarter) == 16
    met = _probes(tmp_path / "quarter", "together")
    assert len(met) == 16 and all(p["together"] for p in met), "16 did not run at once"
    per_card = collections.Counter(p["cuda"] for p in quarter)
    assert sorted(per_card) == ["0", "1", "2", "3"] and set(per_card.values()) == {4}

    # workers_per_trial 2 x gpus_per_trial 0.5: each rank sees one card, rank 0 and 1 listed.
    ranks = _probes(tmp_path / "ddp")
    assert sorted((p["rank"], p["world"]) for p in ranks) == [
        ("0", "2"),
        ("0", "2"),
        ("1", "2"),
        ("1", "2"),
    ]
    assert all(p["cuda"] in {"0", "1", "2", "3"} for p in ranks)
    assert all(p["together"] for p in _probes(tmp_path / "ddp", "together"))

    # A trial that breaks its process (here: the environment and a module global, as a CUDA
    # error breaks a context) and fails: the next trial runs in a fresh, clean worker.
    poison = sorted(_probes(tmp_path / "poison"), key=lambda p: p["start"])
    assert poison[0]["failed_next"] and not poison[1]["poisoned"]
    assert poison[1]["pid"] != poison[0]["pid"]
    assert poison[0]["cuda_before"] in {"0", "1", "2", "3"}
    assert poison[1]["cuda"] in {"0", "1", "2", "3"}  # Ray's card, not the "99" trial 0 set
