"""What pruning saves: the digits sweep with and without early termination, same seed.

Prints epochs run, wall time and best validation accuracy for each, side by side.
Usage: python benchmarks/pruning_payoff.py [--trials 16] [--policies median_stopping bandit]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from search_spaces import example_path, parse_sweep, read_sweep_file, to_dict
from sweep import Sweep


def run(policy: dict, trials: int, root: str, gpus: float = 0.0) -> tuple[float, int, int, float]:
    data = to_dict(read_sweep_file(example_path("digits")))
    data["trainer"]["args"]["num_epochs"] = 6
    data["search_space"].pop("num_epochs")
    data["early_termination"] = policy
    data["limits"] = {"max_total_trials": trials, "max_concurrent_trials": 2}
    data["resources"] = {"cpus_per_trial": 1, "gpus_per_trial": gpus}
    data["name"] = f"payoff-{policy['type']}"
    started = time.perf_counter()
    result = Sweep(config=parse_sweep(data), root=root).run()
    wall = time.perf_counter() - started
    frame = result.trials
    best = result.best.value if result.best else float("nan")
    return wall, int(frame["epochs_run"].sum()), int((frame["state"] == "pruned").sum()), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--policies", nargs="+", default=["median_stopping", "bandit"])
    args = parser.parse_args()
    extra = {"bandit": {"slack_factor": 0.1},
             "truncation_selection": {"truncation_percentage": 25}}
    with tempfile.TemporaryDirectory() as root:
        rows = [("no pruning", run({"type": "none"}, args.trials, root))]
        for name in args.policies:
            policy = {"type": name, "evaluation_interval": 1, "delay_evaluation": 1,
                      **extra.get(name, {})}
            rows.append((name, run(policy, args.trials, root)))
    print(f"{'':<22} {'wall s':>8} {'epochs':>7} {'pruned':>7} {'best val_acc':>13}")
    for label, (wall, epochs, pruned, best) in rows:
        print(f"{label:<22} {wall:8.1f} {epochs:7d} {pruned:7d} {best:13.4f}")
    w0, e0, _, b0 = rows[0][1]
    for label, (w1, e1, _, b1) in rows[1:]:
        print(f"{label}: {100 * (1 - e1 / e0):.0f}% fewer epochs, {100 * (1 - w1 / w0):.0f}% "
              f"less wall time, best accuracy {100 * (b1 - b0):+.1f} points")


if __name__ == "__main__":
    main()
