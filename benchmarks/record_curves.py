"""Records the curve bank ``benchmarks/curves/digits.jsonl.gz``: full per-epoch validation
curves and epoch times of the built-in trainer on the built-in digits, for configurations
drawn at random (learning rate, momentum, batch size, model, image size, schedule, weight
decay), from scratch on CPU, one thread per run.

A run that diverges (a NaN loss) is kept in the file, marked ``diverged``, and left out of
replays: a sweep fails such a trial at once whatever its early termination. Each finished
configuration is appended at once, so an interrupted recording goes on where
it stopped (the draws are seeded: the same configurations in the same order). Replay the
bank with ``sweep replay benchmarks/curves/digits.jsonl.gz``, or with the replay benchmark.

Usage: python benchmarks/record_curves.py [--count 300] [--epochs 9] [--jobs 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

BANK = Path(__file__).parent / "curves" / "digits.jsonl.gz"
METRIC = "best_val_acc"


def configurations(count: int, epochs: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        out.append(
            {
                "learning_rate": round(math.exp(rng.uniform(math.log(3e-4), math.log(0.5))), 6),
                "momentum": round(rng.uniform(0.0, 0.99), 4),
                "batch_size": rng.choice([16, 32, 64, 128]),
                "model": rng.choice(["resnet18", "resnet18", "mobilenet_v3_small"]),
                "image_size": rng.choice([16, 16, 24]),
                "lr_schedule": rng.choice(["none", "step", "cosine"]),
                # a step a third of the way, as the 9-epoch bank had (3): a longer run keeps
                # its rate longer, as a user setting step_size for it would
                "step_size": max(3, epochs // 3),
                "weight_decay": rng.choice([0.0, 1e-4, 1e-3]),
                "num_epochs": epochs,
            }
        )
    return out


def record(params: dict[str, Any]) -> dict[str, Any]:
    os.environ["OMP_NUM_THREADS"] = "1"
    from trainer.fit import fit_params

    values, epoch_s = [], []
    started = time.perf_counter()

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        values.append(float(metrics[METRIC]))
        epoch_s.append(float(metrics.get("epoch_s", 0.0)))
        return False

    from trainer.errors import TrainerError

    diverged = ""
    with tempfile.TemporaryDirectory() as out:
        try:
            fit_params(
                {
                    "data": "digits",
                    "weights": "none",
                    "threads": 1,
                    "device": "cpu",
                    "amp": False,
                    "output_dir": out,
                    **params,
                },
                report,
            )
        except TrainerError as exc:  # a NaN loss: a sweep fails such a trial under any policy
            if "diverged" not in str(exc):
                raise
            diverged = str(exc)
    wall = time.perf_counter() - started
    return {
        **({"diverged": diverged} if diverged else {}),
        "values": [round(v, 6) for v in values],
        "epoch_s": [round(s, 4) for s in epoch_s],
        "planned": params["num_epochs"],
        "start_s": round(max(0.0, wall - sum(epoch_s)), 4),
        "params": params,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--bank", type=Path, default=BANK)
    args = parser.parse_args()
    args.bank.parent.mkdir(parents=True, exist_ok=True)
    done = 0
    if args.bank.exists():
        with gzip.open(args.bank, "rt") as f:
            done = sum(1 for line in f if line.strip()) - 1
    else:
        with gzip.open(args.bank, "wt") as f:
            f.write(
                json.dumps(
                    {
                        "bank": "digits",
                        "metric": METRIC,
                        "goal": "maximize",
                        "about": "built-in trainer, built-in digits, from scratch on CPU, "
                        "one thread a run; configurations drawn by benchmarks/record_curves.py"
                        + ("" if args.epochs == 9 else f", {args.epochs} epochs"),
                    }
                )
                + "\n"
            )
    todo = configurations(args.count, args.epochs)[done:]
    print(f"{done} recorded, {len(todo)} to go ({args.jobs} at a time)", flush=True)
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for i, row in enumerate(pool.map(record, todo), start=done + 1):
            with gzip.open(args.bank, "at") as f:  # each its own gzip member: a kill loses one
                f.write(json.dumps(row) + "\n")
            if "diverged" in row:
                print(f"{i}/{args.count}: {row['diverged']}", flush=True)
                continue
            print(
                f"{i}/{args.count}: best {max(row['values']):.4f} in "
                f"{sum(row['epoch_s']):.1f} s ({time.perf_counter() - started:.0f} s so far)",
                flush=True,
            )


if __name__ == "__main__":
    main()
