"""What early termination by Pareto rank buys a sweep of two objectives (accuracy up, latency
down): the hypervolume of the front found against the epochs spent, with and without it.

A synthetic family with crossing curves, run as real sweeps (the sweep's own coordinator and
rule, in-process, one trial at a time): ``x`` in [0, 1] is the model's size (latency
``1 + 4x``, reported every epoch as the built-in trainer reports a measured one), ``lr`` its
rate; the accuracy a model reaches rises with its size and falls off a best rate, and bigger
models start slower (the curves cross). Per seed: a sweep without early termination, and a
sweep with each policy that ranks by Pareto front (ASHA and Hyperband, stopping and
promotion, ``min_resource: 1, reduction_factor: 3``; median stopping) given three times the
trials, each followed in the order trials ended: the front's hypervolume (reference point
accuracy 0, latency 6) when the sweep had spent 1/4, 1/2 and all of the no-pruning sweep's
epochs. Random sampling.

``--problem digits``: the digits trainer against its latency, on recorded curves: a trial
trains (reports) the curve of the configuration nearest its params in the digits curve bank
(``benchmarks/digits_table.py``: ResNet-18 or MobileNetV3-Small at 16 or 24 px, learning
rate, momentum, batch size, schedule, weight decay; 9 epochs) with the ``latency_ms`` that
the built-in trainer's ``measure: latency_ms`` gives its model and image size, measured
here once per pair at the start (ONNX Runtime, batch 1, one thread; the least of three
medians). The hypervolume's
reference point is accuracy 0 and 1.2x the largest latency.

Usage: python benchmarks/pareto_pruning.py [--problem synthetic|digits] [--seeds 8]
                                           [--trials 30] [--epochs 9] [--policies ...]
"""

from __future__ import annotations

import argparse
import datetime
import logging
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep import Sweep  # noqa: E402
from sweep.backends import InProcessBackend  # noqa: E402

REFERENCE = (0.0, 6.0)  # accuracy, latency
NEVER = datetime.datetime.min


@dataclass(frozen=True)
class Problem:
    trainer: Callable[..., dict]
    space: dict
    reference: tuple[float, float]
    """(accuracy, latency) of the hypervolume's reference point."""


def curve(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    x, lr = float(params["x"]), float(params["lr"])
    ceiling = (0.6 + 0.35 * x) * math.exp(-(((math.log10(lr) + 2) / 1.2) ** 2))
    speed = 1.2 - 1.0 * x  # bigger starts slower
    latency = 1 + 4 * x
    acc = 0.0
    # Where it stopped, for promotion: a paused trial continues from its checkpoint.
    saved = Path(params["checkpoint_dir"]) / "epoch" if params.get("checkpoint_dir") else None
    start = int(saved.read_text()) + 1 if saved is not None and saved.exists() else 0
    for epoch in range(start, int(params["num_epochs"])):
        acc = ceiling * (1 - math.exp(-speed * (epoch + 1)))
        if saved is not None:
            saved.write_text(str(epoch))
        if report(epoch, {"acc": acc, "latency_ms": latency}):
            break
    return {
        "acc": ceiling * (1 - math.exp(-speed * int(params["num_epochs"]))),
        "latency_ms": latency,
    }


SYNTHETIC = Problem(
    curve,
    {
        "x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0},
        "lr": {"type": "loguniform", "min_value": math.log(1e-4), "max_value": math.log(1.0)},
    },
    REFERENCE,
)


def digits() -> Problem:
    """The digits trainer on its recorded curves, with each model's measured latency."""
    from benchmarks.digits_table import DigitsTable
    from trainer.checkpoint import ModelInfo, save_checkpoint
    from trainer.deploy_cost import measure
    from trainer.model import build_model

    table = DigitsTable()
    latency: dict[tuple[str, int], float] = {}
    for arch, size in sorted({(r["model"], int(r["image_size"])) for r, _ in table.rows}):
        with tempfile.TemporaryDirectory() as tmp:
            info = ModelInfo(arch, [str(d) for d in range(10)], size, "digits")
            save_checkpoint(Path(tmp) / "model.pt", build_model(arch, 10), info)
            # The least of three medians: a busy moment moves one, not all three.
            latency[arch, size] = min(
                measure(Path(tmp), ["latency_ms"])["latency_ms"] for _ in range(3)
            )
        print(f"  latency_ms of {arch} at {size} px: {latency[arch, size]:.3f}", flush=True)

    def trainer(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
        row, values = table.nearest(params)
        cost = latency[row["model"], int(row["image_size"])]
        saved = Path(params["checkpoint_dir"]) / "epoch" if params.get("checkpoint_dir") else None
        start = int(saved.read_text()) + 1 if saved is not None and saved.exists() else 0
        last = min(int(params["num_epochs"]), len(values))
        for epoch in range(start, last):
            if saved is not None:
                saved.write_text(str(epoch))
            if report(epoch, {"acc": values[epoch], "latency_ms": cost}):
                break
        return {"acc": values[last - 1], "latency_ms": cost}

    reference = (0.0, round(1.2 * max(latency.values()), 3))
    print(f"  hypervolume's reference point: accuracy 0, latency {reference[1]} ms", flush=True)
    return Problem(trainer, table.space(), reference)


def hypervolume(
    points: list[tuple[float, float]], reference: tuple[float, float] = REFERENCE
) -> float:
    """Of (accuracy, latency) points against ``reference`` (accuracy up, latency down): the
    area the front's staircase encloses, fastest point first."""
    inside = sorted(
        ((a, lat) for a, lat in points if a > reference[0] and lat < reference[1]),
        key=lambda p: (p[1], -p[0]),
    )
    staircase: list[tuple[float, float]] = []
    for acc, lat in inside:
        if not staircase or acc > staircase[-1][0]:
            staircase.append((acc, lat))
    volume = 0.0
    for k, (acc, lat) in enumerate(staircase):
        upper = staircase[k + 1][1] if k + 1 < len(staircase) else reference[1]
        volume += (upper - lat) * (acc - reference[0])
    return volume


RUNG = {"min_resource": 1, "reduction_factor": 3}
POLICIES: dict[str, dict[str, object]] = {
    "none": {"type": "none"},
    "asha": {"type": "asha", **RUNG},
    "hyperband": {"type": "hyperband", **RUNG},
    "median_stopping": {"type": "median_stopping", "delay_evaluation": 1},
    "asha promotion": {"type": "asha", "mode": "promotion", **RUNG},
    "hyperband promotion": {"type": "hyperband", "mode": "promotion", **RUNG},
}
"""Every policy that ranks trials of several objectives by Pareto front."""


def run(
    seed: int, trials: int, epochs: int, policy: str, root: Path, problem: Problem = SYNTHETIC
) -> list[tuple[int, float]]:
    """(epochs spent so far, hypervolume of the front so far) after each trial ended."""
    result = Sweep(
        name=f"{policy.replace(' ', '-')}-{seed}",
        search_space=problem.space,
        trainer=problem.trainer,
        trainer_args={"num_epochs": epochs},
        root=root,
        backend=InProcessBackend(),
        objective=[
            {"primary_metric": "acc", "goal": "maximize"},
            {"primary_metric": "latency_ms", "goal": "minimize"},
        ],
        sampling_algorithm={"type": "random", "seed": seed},
        early_termination=POLICIES[policy],
        limits={"max_total_trials": trials, "max_concurrent_trials": 1},
        keep={"checkpoints": "latest" if "promotion" in policy else "none", "models": 1},
    ).run()
    assert result.study is not None
    spent, done, timeline = 0, [], []
    for t in sorted(
        result.study.get_trials(), key=lambda t: t.datetime_complete or t.datetime_start or NEVER
    ):
        spent += int(t.user_attrs.get("epochs", 0))  # epochs it trained (set at its end)
        if t.state.name == "COMPLETE" and t.values is not None:
            done.append((t.values[0], t.values[1]))
        timeline.append((spent, hypervolume(done, problem.reference)))
    return timeline


def at(timeline: list[tuple[int, float]], budget: float) -> float:
    found = [hv for spent, hv in timeline if spent <= budget]
    return found[-1] if found else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=["synthetic", "digits"], default="synthetic")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument(
        "--policies", nargs="+", choices=list(POLICIES)[1:], default=list(POLICIES)[1:]
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    started = time.perf_counter()
    problem = digits() if args.problem == "digits" else SYNTHETIC
    names = ["none", *args.policies]
    rows: dict[str, list[list[float]]] = {name: [] for name in names}
    spent: dict[str, list[int]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            base = run(seed, args.trials, args.epochs, "none", Path(tmp), problem)
            budget = base[-1][0]
            for name in names:
                line = (
                    base
                    if name == "none"
                    else run(seed, 3 * args.trials, args.epochs, name, Path(tmp), problem)
                )
                rows[name].append([at(line, budget * f) for f in (0.25, 0.5, 1.0)])
                spent[name].append(at_epochs(line, args.trials))
    print(
        f"{args.seeds} seeds, {args.trials} trials of {args.epochs} epochs without early "
        f"termination, {3 * args.trials} with; in {time.perf_counter() - started:.0f} s"
    )
    print(
        f"  {'policy (Pareto rank)':<20} {'epochs for its first':>22}   "
        "hypervolume (median) at 1/4, 1/2, all"
    )
    print(f"  {'':<20} {f'{args.trials} trials':>22}   of the no-pruning sweep's epochs")
    for name, values in rows.items():
        medians = [statistics.median(v[i] for v in values) for i in range(3)]
        print(
            f"  {name:<20} {statistics.median(spent[name]):>22.0f}   "
            + ", ".join(f"{m:.3f}" for m in medians)
        )


def at_epochs(timeline: list[tuple[int, float]], trials: int) -> int:
    """Epochs the first ``trials`` trials spent."""
    return timeline[min(trials, len(timeline)) - 1][0]


if __name__ == "__main__":
    main()
