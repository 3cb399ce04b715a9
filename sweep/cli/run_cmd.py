"""``sweep validate``, ``sweep run``, ``sweep resume`` and ``sweep continue``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search_spaces import SearchSpaceError, SweepConfig, read_sweep_file
from search_spaces.expressions import Choice

if TYPE_CHECKING:
    from sweep.api import Sweep
    from sweep.azure.sweep_job import AzureMLRunner


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a sweep file (exit 0, or 2 with what is wrong)",
        description="Check a sweep file without running anything: every key, every bound, "
        "the data folder. Prints the plan on success.",
    )
    p.add_argument("space", type=Path, help="the sweep file, e.g. space.yaml")
    _file_flags(p)
    p.add_argument(
        "--root", type=Path, help="the folder of sweeps, for warm_start (default ./sweeps)"
    )
    p.set_defaults(func=validate)

    p = sub.add_parser(
        "run",
        help="run a sweep",
        description="Run the trials of a sweep file in parallel (a local Ray by default) and "
        "show them as they go. The study, one folder per trial and the best model are kept "
        "under ROOT/NAME (./sweeps/NAME). Ctrl-C stops cleanly; 'sweep resume NAME' goes on.",
    )
    p.add_argument("space", type=Path, help="the sweep file, e.g. space.yaml")
    _file_flags(p)
    p.add_argument(
        "--register",
        metavar="MODEL_NAME",
        help="register the best trial's model under this name (register.model_name)",
    )
    _budget_flags(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and print the plan only (azure: also write the job YAML)",
    )
    p.add_argument(
        "--workspace-config",
        type=Path,
        metavar="FILE",
        help="azure: the workspace's config.json (default: searched upwards from .)",
    )
    p.add_argument(
        "--environment",
        metavar="NAME",
        help="azure: a curated environment (azureml:NAME@latest) instead of one "
        "built from our pinned packages",
    )
    p.set_defaults(func=run)

    p = sub.add_parser(
        "resume",
        help="continue a stopped or crashed sweep, or add trials to a finished one",
        description="Continue a sweep: completed and pruned trials are kept, interrupted ones "
        "continue from their checkpoints (those without one run again with the same "
        "parameters), and the trial budget still holds. A finished sweep runs more trials "
        "with --max-trials N (N in all).",
    )
    p.add_argument("name", help="the sweep's name (see 'sweep ls')")
    _budget_flags(p)
    p.add_argument(
        "--space",
        type=Path,
        metavar="FILE",
        help="a new search space for the trials still to run: a sweep file (its "
        "search_space) or a file with the search_space mapping alone; parameters the study "
        "has keep their kind, log scale and choices",
    )
    p.set_defaults(func=resume)

    p = sub.add_parser(
        "continue",
        help="train a completed trial further from its checkpoint",
        description="Train a completed trial for more epochs, from its last checkpoint, as a "
        "new trial of the sweep (same params, num_epochs raised; 'continues' names the trial "
        "it came from). The sweep's best model and registration are updated as after a run. "
        "The best completed trial keeps its checkpoint (keep: {checkpoints: all} keeps "
        "every trial's).",
    )
    p.add_argument("name", help="the sweep's name (see 'sweep ls')")
    p.add_argument(
        "--trial",
        type=int,
        required=True,
        metavar="N",
        help="the completed trial to continue (see 'sweep status NAME')",
    )
    p.add_argument(
        "--epochs",
        type=int,
        required=True,
        metavar="E",
        help="epochs in all, counting those it trained already",
    )
    p.add_argument("--root", type=Path, help="the folder of sweeps (default ./sweeps)")
    p.set_defaults(func=continue_trial)


def _file_flags(p: argparse.ArgumentParser) -> None:
    """What validate and run both take: the same file, read the same way."""
    p.add_argument(
        "--compute",
        help="where to run, whatever the file says: local, ray://HOST:PORT, "
        "azure:CLUSTER (or azureml:CLUSTER)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="set a key of the file first, as 'az ml job create --set' does, e.g. "
        "--set inputs.iris_csv.path=./iris.csv --set limits.max_total_trials=4 "
        "(repeatable)",
    )
    p.add_argument(
        "--trainer",
        metavar="ENTRY",
        help="the trainer (package.module:function) for a W&B sweep config, or to "
        "replace trainer.entry",
    )


def read_config(args: argparse.Namespace) -> SweepConfig:
    """The sweep file with --set, --compute, --register and --trainer applied, then checked."""
    overrides = list(args.overrides)
    if getattr(args, "compute", None):
        overrides.append(f"compute={args.compute}")
    if getattr(args, "register", None):
        overrides.append(f"register.model_name={args.register}")
    wandb: dict[str, Any] = {}
    if args.trainer:
        from search_spaces.reader import is_wandb, load_yaml

        data = load_yaml(args.space)
        wandb = dict(data) if is_wandb(data) else {}
    config = read_sweep_file(args.space, overrides, trainer=args.trainer)
    if wandb:
        launch = "scheduler" in wandb or "job" in wandb
        moved = [
            ("scheduler" if launch and "method" not in wandb else "method", "sampling_algorithm"),
            ("parameters", "search_space"),
            ("metric", "objective"),
            ("job" if launch else "program", "--trainer"),
        ]
        print(
            f"{args.space}: a W&B{' Launch' if launch else ''} sweep config, converted ("
            + ", ".join(f"{a} -> {b}" for a, b in moved)
            + ")",
            file=sys.stderr,
        )
    return config


def _budget_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-trials", type=int, metavar="N", help="override limits.max_total_trials")
    p.add_argument("--parallel", type=int, metavar="N", help="run at most N trials at once")
    p.add_argument("--root", type=Path, help="the folder of sweeps (default ./sweeps)")


PLAN_WIDTH = 160
RANKS_AT_RUNGS = (
    "bandit",
    "median_stopping",
    "truncation_selection",
    "median",
    "percentile",
    "asha",
    "hyperband",
)
"""Policies that stop a trial for being behind now (see benchmarks/pruning_payoff.py)."""


def describe(config: SweepConfig) -> str:
    """A few lines that say what a sweep would do."""
    lim = config.limits
    mode = config.early_termination.options.get("mode")
    at_a_time = f"{lim.max_concurrent_trials or 'as many as fit'} at a time, on {config.compute}"
    lines = [
        f"sweep {config.name}: {len(config.search_space)} parameters, "
        f"{config.sampling_algorithm.type} sampling, early termination "
        f"{config.early_termination.type}" + (f" ({mode})" if mode else ""),
        f"  objective: {config.objective.goal} {config.objective.primary_metric}"
        if not config.multi_objective
        else "  objectives: "
        + ", ".join(f"{o.goal} {o.primary_metric}" for o in config.goals)
        + " (the Pareto front; the pick: best on the first among trials meeting every "
        "constraint)",
    ]
    if config.constraints:
        lines.append("  constraints: " + ", ".join(map(str, config.constraints)))
    if config.multi_objective and config.early_termination.type != "none":
        where = (
            "at each rung"
            if config.early_termination.type in ("asha", "hyperband")
            else "at each evaluation interval"
        )
        lines.append(
            f"  early termination: {where}, the trials there ranked by Pareto front "
            "(ties by crowding distance); a report must carry every objective to be ranked"
        )
    elif config.early_termination.type in RANKS_AT_RUNGS and not config.compute.startswith("azure"):
        lines += [
            f"  hint: on learning curves that cross, {config.early_termination.type} "
            "stopped the eventual winner in 80-95% of replays,",
            "        early_termination: {type: forecast} in none (README, Which "
            "policy?); 'sweep replay NAME' compares them on your own finished sweep",
        ]
    if config.sampling_algorithm.type == "pbt":
        pbt = config.sampling_algorithm.options
        factors = " or x".join(f"{f:g}" for f in pbt["perturbation_factors"])
        lines += [
            f"  population: {pbt['population_size']} members (its trials: "
            f"limits.max_total_trials does not apply), {at_a_time}",
            f"  every {pbt['perturbation_interval']} epochs the bottom {pbt['quantile']:.0%} "
            f"copy the checkpoint of one of the top {pbt['quantile']:.0%}",
            f"  and explore its params: x{factors} a number, a neighbouring value of a "
            f"choice, or resampled with probability {pbt['resample_probability']:g}",
            "  in synchronous generations (every member waits at each boundary)"
            if pbt.get("synchronous", True)
            else "  asynchronously: each member judged as it reaches a boundary, among those "
            "that reached it; no one waits",
        ]
    elif config.sampling_algorithm.type == "grid":
        sizes = [len(e.values) for e in config.search_space.values() if isinstance(e, Choice)]
        points = math.prod(sizes)
        lines.append(
            f"  grid: {points:,} points ({' x '.join(map(str, sizes))}); trials: "
            f"{min(points, lim.max_total_trials):,} of them (limits.max_total_trials "
            f"{lim.max_total_trials}), {at_a_time}"
        )
    else:
        lines.append(f"  trials: up to {lim.max_total_trials}, {at_a_time}")
    if config.warm_start is not None:
        warm = config.warm_start
        lines.append(
            f"  warm start: the {'completed' if warm.best is None else f'best {warm.best}'} "
            "trials of "
            + (
                "every earlier sweep of this trainer and objective"
                if warm.auto
                else ", ".join(warm.sweeps)
            )
            + " that fit this space teach the sampler (not counted as this sweep's trials)"
        )
        et = config.early_termination
        if et.type == "forecast":
            lines.append(
                "  warm start: their learning curves calibrate the forecast's margin from "
                "the first trial on (the best to beat is this sweep's own)"
            )
            from sweep.scheduling.neighbours import NEIGHBOURS

            lines.append(
                f"  warm start: and the {NEIGHBOURS} of them most like each new trial bound "
                "where it ends"
            )
            if et.options.get("min_epochs") is None and et.options.get("mode") != "promotion":
                lines.append(
                    "  warm start: so the forecast judges trials from epoch 1 "
                    "(min_epochs: 3 waits as without them)"
                )
    policy = config.checkpoint
    if not policy.each_epoch and config.keep.checkpoints != "none":
        from sweep.scheduling.verdicts import what_pauses

        lines.append(
            f"  checkpoints: every {policy.every} epochs"
            + (f" or {policy.interval_s:g} s" if policy.interval_s else "")
            + (
                f", at every rung where {what_pauses(config)} may pause a trial"
                if what_pauses(config)
                else ""
            )
            + ", and at the last epoch (an interruption retrains the epochs since the last one)"
        )
    from sweep.trainers.trial_kinds import trial_kind

    lines.extend(trial_kind(config).plan(config))
    for key, expr in config.search_space.items():
        shown = ", ".join(f"{k}={v}" for k, v in expr.to_dict().items() if k != "type")
        lines.append(f"  {key}: {expr.type}({shown})")
    # A plan is read at a glance: a 5,000-value choice or a long argument is cut short.
    return "\n".join(
        line if len(line) <= PLAN_WIDTH else line[: PLAN_WIDTH - 1] + "…" for line in lines
    )


def warm_start_hint(config: SweepConfig, root: Path | None) -> str | None:
    """A hint when a forecast could learn from earlier sweeps of this trainer that the file
    does not name: warm-started, it judges from epoch 1 and bounds each trial by the earlier
    ones most like it (README, Which policy?)."""
    from search_spaces.sections import WARM_SAMPLERS

    if (
        config.warm_start is not None
        or config.early_termination.type != "forecast"
        or config.sampling_algorithm.type not in WARM_SAMPLERS
        or config.on_azure
    ):
        return None
    from sweep.coordination.warm_start import same_trainer_sweeps
    from sweep.records.layout import sweeps_root

    found = sorted(same_trainer_sweeps(config, sweeps_root(root)))
    if not found:
        return None
    shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    return (
        f"hint: {len(found)} earlier sweep{'s' * (len(found) > 1)} of this trainer and "
        f"objective here ({shown}): warm_start: {{from: auto}} lets the forecast learn from "
        "their curves and judge from epoch 1 (README, Warm start)"
    )


def validate(args: argparse.Namespace) -> int:
    config = read_config(args)
    from sweep.coordination.checks import check_runs_here

    check_runs_here(config)  # run's own checks: a file that validates is a file that runs
    warm = None
    if config.warm_start is not None:
        from sweep.api import Sweep

        warm = Sweep(config=config, root=args.root).warm_start().summary()
    print(f"{args.space}: valid")
    print(describe(config))
    if warm:
        print(warm)
    hint = warm_start_hint(config, args.root)
    if hint:
        print(hint)
    return 0


def _check_budget(args: argparse.Namespace) -> None:
    from sweep.errors import SweepInputError

    for flag in ("max_trials", "parallel"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SweepInputError(f"--{flag.replace('_', '-')}: must be 1 or more, got {value}")


def run(args: argparse.Namespace) -> int:
    _check_budget(args)
    config = read_config(args)
    from sweep.api import Sweep

    sweep = Sweep(config=config, root=args.root, azure=_azure_runner(config, args))
    if args.dry_run:
        sweep.check()
        print(describe(config))
        if config.warm_start is not None and sweep.azure is None:
            print(sweep.warm_start().summary())
        hint = warm_start_hint(config, args.root)
        if hint:
            print(hint)
        if sweep.azure is not None:
            _, path = sweep.azure.compile(sweep.config, sweep.sweep_dir)
            print(f"wrote {path} (submit it with: az ml job create -f {path})")
        return 0
    return _execute(sweep, args, resume=False)


def _azure_runner(config: SweepConfig, args: argparse.Namespace) -> AzureMLRunner | None:
    """For azure: compute, a runner that prints the job's progress as it happens."""
    if not config.on_azure:
        return None
    from sweep.azure.sweep_job import AzureMLRunner

    return AzureMLRunner(
        workspace_config=getattr(args, "workspace_config", None),
        environment=getattr(args, "environment", None),
        progress=lambda line: print(line, flush=True),
    )


def resume(args: argparse.Namespace) -> int:
    _check_budget(args)
    from sweep.api import Sweep

    loaded = Sweep.load(args.name, root=args.root)
    sweep = Sweep(config=loaded.config, root=args.root, azure=_azure_runner(loaded.config, args))
    sweep.heal_journal()  # before anything opens the study: a damaged record stops the open
    if args.space is not None:
        from search_spaces.yaml_file import load_yaml

        data = load_yaml(args.space)
        space = data.get("search_space", data)
        if not isinstance(space, Mapping):
            raise SearchSpaceError(f"{args.space}: search_space", "expected a mapping")
        before = sweep.space.distributions()
        sweep = sweep.with_space(space)
        same = sweep.space.distributions() == before
        print(
            f"search space of {sweep.name} "
            + ("unchanged" if same else "changed from its next trial on")
            + f" ({args.space})"
        )
    if sweep.azure is None and sweep.trials_left(args.max_trials) == 0:
        total = args.max_trials or sweep.config.limits.max_total_trials
        print(
            f"sweep {sweep.name} is finished: its {total} trials ran, nothing to resume "
            f"(--max-trials N runs more; 'sweep status {sweep.name}' shows them)"
        )
        return 0
    return _execute(sweep, args, resume=True)


def continue_trial(args: argparse.Namespace) -> int:
    from sweep.api import Sweep
    from sweep.cli.progress import ProgressView, summary

    sweep = Sweep.load(args.name, root=args.root)
    config = sweep.config
    view = ProgressView(config.objective.primary_metric, config.objective.goal)
    print(
        f"continuing trial {args.trial} of sweep {config.name} to {args.epochs} epochs on "
        f"{config.compute}",
        flush=True,
    )
    result = sweep.continue_trial(args.trial, epochs=args.epochs, listener=view)
    print(summary(result, config.objective.primary_metric))
    return 0 if result.best is not None else 1


def _execute(sweep: Sweep, args: argparse.Namespace, *, resume: bool) -> int:
    from sweep.cli.progress import ProgressView, azure_summary, summary
    from sweep.scheduling.verdicts import fixed_epochs

    config = sweep.config
    go = sweep.resume if resume else sweep.run
    if sweep.azure is not None:
        result = go(max_trials=args.max_trials, parallel=args.parallel)
        print(azure_summary(result))
        return 0
    view = ProgressView(
        config.objective.primary_metric, config.objective.goal, planned=fixed_epochs(config)
    )
    notice = sweep.kind.notice(config)
    if notice:
        print(notice, flush=True)
    if config.warm_start is not None:
        print(sweep.warm_start().summary(), flush=True)
    print(
        f"{'resuming' if resume else 'running'} sweep {config.name} on {config.compute}; "
        f"files in {sweep.sweep_dir}",
        flush=True,
    )
    result = go(max_trials=args.max_trials, parallel=args.parallel, listener=view)
    print(summary(result, config.objective.primary_metric))
    return 0 if result.best is not None else 1
