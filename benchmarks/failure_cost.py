"""What an interruption costs, with trial checkpoints on and off, beside an uninterrupted run
measured in the same run.

1. Per epoch: the built-in trainer (ResNet-18 on digits, 64 px, 1 trial at a time, local
   Ray): the time between two reports reaching the coordinator, with ``keep.checkpoints:
   latest`` (state saved, staged in the store by the worker on this disk, committed),
   the same with its bytes sent through Ray (``SWEEP_CHECKPOINTS_THROUGH_RAY=1``, as from
   another machine), every third epoch, and ``none``; the checkpoint's size.
2. Interruptions of a shorter digits sweep (32 px, 4 trials of 4 epochs, 2 at a time), at
   10 of its 16 epochs: the coordinator killed with SIGKILL then ``sweep resume``; and, on a
   ``ray start`` cluster of a head and two worker nodes, one worker node's raylet killed.
   Printed: epochs trained in all (every run of every trial) and wall time, beside the same
   sweep never interrupted.

Usage: python benchmarks/failure_cost.py [--skip-nodes] [--epoch-224] [--epoch-only]
       python benchmarks/failure_cost.py --rounds 4   (part 1's default beside off only)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SWEEP = {
    "name": "bench",
    "trainer": {
        "entry": "trainer",
        "args": {
            "data": "digits",
            "model": "resnet18",
            "weights": "none",
            "batch_size": 64,
            "image_size": 32,
            "num_epochs": 4,
            "threads": 1,
        },
        # Without checkpoints a lost trial runs again from its start (a retry).
        "retries": 1,
    },
    "search_space": {
        "learning_rate": {"type": "choice", "values": [0.02, 0.05, 0.1, 0.2]},
        "momentum": {"type": "choice", "values": [0.9]},
    },
    "objective": {"primary_metric": "best_val_acc", "goal": "maximize"},
    "sampling_algorithm": "grid",
    "limits": {"max_total_trials": 4, "max_concurrent_trials": 2},
}
EPOCHS_PLANNED = 16


def _epochs_trained(sweep_dir: Path) -> int:
    """Every epoch any run of any trial finished (the trainer's own metrics.jsonl lines: a
    trial continued from its checkpoint appends to its file, one run again from the start
    has a folder of its own)."""
    return sum(
        len(p.read_text().splitlines()) for p in sweep_dir.glob("trials/*/outputs/metrics.jsonl")
    )


def _reported(sweep_dir: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in sweep_dir.glob("trials/*/metrics.jsonl"))


def _sweep_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweep.cli", *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)}
    env["PYTHONPATH"] = str(ROOT)
    return env


def sweep_once(
    folder: Path, checkpoints: str, *, interrupt: str | None, address: str | None = None
) -> tuple[int, float]:
    """(epochs trained, wall seconds) of the sweep, interrupted half-way as asked."""
    doc = {**SWEEP, "keep": {"checkpoints": checkpoints}}
    (folder / "bench.yaml").write_text(yaml.safe_dump(doc))
    argv = _sweep_cli("run", "bench.yaml", *(["--compute", address] if address else []))
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=folder,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    sweep_dir = folder / "sweeps" / "bench"
    if interrupt is not None:
        # Half-way and then some: both running trials have reported (a trial lost before its
        # first report has no checkpoint in either mode).
        while _reported(sweep_dir) < EPOCHS_PLANNED // 2 + 2:
            if proc.poll() is not None:
                raise SystemExit(f"the sweep ended first: {proc.stderr.read()[-2000:]}")
            time.sleep(0.1)
        if interrupt == "coordinator":
            os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and the Ray it started
            proc.wait()
            proc = subprocess.Popen(
                _sweep_cli("resume", "bench"),
                cwd=folder,
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        else:
            os.kill(_raylet_of_a_running_trial(sweep_dir), signal.SIGKILL)
    _, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"sweep failed: {err[-2000:]}")
    return _epochs_trained(sweep_dir), time.perf_counter() - started


def _raylet_of_a_running_trial(sweep_dir: Path) -> int:
    """The parent (the node's raylet) of a process running a trial, found by its log file."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            if b"ray::TrialWorker" not in cmd:
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = int(
            next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1]
        )
        return ppid
    raise SystemExit("no trial worker found")


LABELS = ("none", "latest", "through Ray", "every 3")


def per_epoch(
    image_size: int, epochs: int, labels: tuple[str, ...] = LABELS
) -> dict[str, tuple[float, float]]:
    """Seconds between reports (median), by keep.checkpoints; and the checkpoint's MB."""
    from sweep import Sweep

    class Clock:
        def __init__(self) -> None:
            self.times: list[float] = []

        def trial_started(self, number, params):  # type: ignore[no-untyped-def]
            self.times.append(time.perf_counter())

        def trial_reported(self, number, epoch, value):  # type: ignore[no-untyped-def]
            self.times.append(time.perf_counter())

        def trial_ended(self, number, state, value, reason):  # type: ignore[no-untyped-def]
            pass

    out: dict[str, tuple[float, float]] = {}
    # Every epoch, and every third (checkpoint: {every: 3}): its cost is the mean gap, since
    # two epochs of three save nothing.
    settings = {
        "none": ("none", 1),
        "latest": ("latest", 1),
        "through Ray": ("latest", 1),
        "every 3": ("latest", 3),
    }
    for label in labels:
        checkpoints, every = settings[label]
        clock = Clock()
        if label == "through Ray":
            os.environ["SWEEP_CHECKPOINTS_THROUGH_RAY"] = "1"
        else:
            os.environ.pop("SWEEP_CHECKPOINTS_THROUGH_RAY", None)

        with tempfile.TemporaryDirectory() as tmp:
            args = {
                **SWEEP["trainer"]["args"],
                "image_size": image_size,  # type: ignore[index]
                "num_epochs": epochs,
                "threads": 2,
            }
            Sweep(
                name="epoch",
                search_space={"learning_rate": {"type": "choice", "values": [0.05]}},
                trainer_args=args,
                root=tmp,
                keep={"checkpoints": checkpoints},
                checkpoint={"every": every},
                limits={"max_total_trials": 1},
                resources={"cpus_per_trial": 2},
            ).run(listener=clock)
            from sweep.records.checkpoint_store import CheckpointStore
            from sweep.records.layout import trial_dir

            size = CheckpointStore(trial_dir(Path(tmp) / "epoch", 0)).size() / 1e6
        times = clock.times
        gaps = sorted(b - a for a, b in zip(times[1:], times[2:], strict=False))
        middle = gaps[len(gaps) // 2] if every == 1 else statistics.mean(gaps)
        out[label] = (middle, size)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-nodes", action="store_true", help="no ray start cluster")
    parser.add_argument("--epoch-only", action="store_true", help="part 1 only")
    parser.add_argument(
        "--epoch-224",
        action="store_true",
        help="also the per-epoch cost at 224 px (an epoch takes minutes)",
    )
    parser.add_argument(
        "--epochs", type=int, default=7, help="epochs per 64-px run (more: steadier medians)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="instead: N rounds of the default (every epoch) beside checkpoints off, in "
        "alternating order, and the median of the rounds' costs (the machine's speed drifts "
        "between runs by more than the cost)",
    )
    args = parser.parse_args()

    if args.rounds:
        costs = []
        for round_ in range(args.rounds):
            order = ("none", "latest") if round_ % 2 == 0 else ("latest", "none")
            figures = per_epoch(64, args.epochs, order)
            (off, _), (on, mb) = figures["none"], figures["latest"]
            costs.append(100 * (on - off) / off)
            print(
                f"round {round_ + 1}: off {off:6.2f} s, every epoch {on:6.2f} s "
                f"({costs[-1]:+.1f}%), checkpoint {mb:.0f} MB",
                flush=True,
            )
        print(f"every epoch against off, median of {args.rounds}: {statistics.median(costs):+.1f}%")
        return

    sizes = [64] + ([224] if args.epoch_224 else [])
    print("1. per epoch, ResNet-18 on digits, 1 trial, 2 CPUs (median seconds between reports)")
    for size in sizes:
        figures = per_epoch(size, args.epochs if size == 64 else 2)
        off, _ = figures["none"]
        on, mb = figures["latest"]
        sent, _ = figures["through Ray"]
        third, _ = figures["every 3"]
        print(
            f"   {size:>3} px: checkpoints off {off:6.2f} s, every epoch {on:6.2f} s "
            f"(+{on - off:.2f} s, {100 * (on - off) / off:+.1f}%), every epoch through Ray "
            f"{sent:6.2f} s ({100 * (sent - off) / off:+.1f}%), every 3 epochs (mean) "
            f"{third:6.2f} s ({100 * (third - off) / off:+.1f}%), checkpoint {mb:.0f} MB"
        )

    if args.epoch_only:
        return
    print(
        f"2. digits sweep, 4 trials x 4 epochs (={EPOCHS_PLANNED}), 2 at a time, 32 px, "
        "interrupted after 10 of its 16 reports"
    )
    rows: list[tuple[str, str, int, float]] = []
    for checkpoints in ("latest", "none"):
        for interrupt in (None, "coordinator"):
            with tempfile.TemporaryDirectory() as tmp:
                trained, wall = sweep_once(Path(tmp), checkpoints, interrupt=interrupt)
            rows.append((checkpoints, interrupt or "never", trained, wall))
    if not args.skip_nodes:
        from tests.sweep_tests.ray_start import ray_start_cluster

        for checkpoints in ("latest", "none"):
            for interrupt in (None, "node"):
                with (
                    tempfile.TemporaryDirectory() as tmp,
                    ray_start_cluster(Path(tmp), head_cpus=0, node_cpus=(1, 1)) as address,
                ):
                    trained, wall = sweep_once(
                        Path(tmp), checkpoints, interrupt=interrupt, address=address
                    )
                rows.append((checkpoints, f"{interrupt or 'never'} (cluster)", trained, wall))
    print(f"   {'checkpoints':<12} {'interrupted':<20} {'epochs trained':>14} {'wall s':>8}")
    for checkpoints, interrupt, trained, wall in rows:
        print(f"   {checkpoints:<12} {interrupt:<20} {trained:>14} {wall:>8.1f}")
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
