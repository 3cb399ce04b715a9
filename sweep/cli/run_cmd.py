"""``sweep validate``, ``sweep run`` and ``sweep resume``."""

from __future__ import annotations

import argparse
from pathlib import Path

from search_spaces import SweepConfig, read_sweep_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="check a sweep file (exit 0, or 2 with what is wrong)",
        description="Check a sweep file without running anything: every key, every bound, "
        "the data folder. Prints the plan on success.",
    )
    p.add_argument("space", type=Path, help="the sweep file, e.g. space.yaml")
    p.set_defaults(func=validate)


def describe(config: SweepConfig) -> str:
    """A few lines that say what a sweep would do."""
    lim = config.limits
    lines = [
        f"sweep {config.name}: {len(config.search_space)} parameters, "
        f"{config.sampling_algorithm.type} sampling, early termination "
        f"{config.early_termination.type}",
        f"  objective: {config.objective.goal} {config.objective.primary_metric}",
        f"  trials: up to {lim.max_total_trials}, "
        f"{lim.max_concurrent_trials or 'as many as fit'} at a time, on {config.compute}",
        f"  trainer: {config.trainer.entry} "
        + " ".join(f"{k}={v}" for k, v in config.trainer.args.items()),
    ]
    for key, expr in config.search_space.items():
        shown = ", ".join(f"{k}={v}" for k, v in expr.to_dict().items() if k != "type")
        lines.append(f"  {key}: {expr.type}({shown})")
    return "\n".join(lines)


def validate(args: argparse.Namespace) -> int:
    config = read_sweep_file(args.space)
    print(f"{args.space}: valid")
    print(describe(config))
    return 0
