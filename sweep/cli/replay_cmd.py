"""``sweep replay NAME``: which early-termination policy for the next sweep, from this one's
own curves, in seconds (see sweep.replay.simulator)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweep.replay.simulator import Curve

TABLE_HEAD = (
    f"{'policy':<22} {'epochs':>7} {'hours':>7} {'pruned':>7} {'best':>8} "
    f"{'lost':>5} {'to best':>8} {'sooner':>7}   {'at equal compute: 1/4, 1/2, all':<32}"
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="re-run a finished sweep's curves under other early-termination "
        "policies on a simulated clock: which policy for the next sweep",
        description="Re-runs the recorded per-epoch curves of a finished sweep (or a curve "
        "bank file) under early-termination policies, with N simulated workers and no "
        "waiting: the sweep's own pruners judge each report as in a real run. The first seed "
        "replays the trials in their recorded order (one worker and the sweep's own policy "
        "reproduce the real sweep), each further seed in a new order. Per policy: epochs run "
        "(the compute), simulated hours, trials pruned, the best value, the share of seeds "
        "that lost the best the sweep without pruning finds, the time to that best and how "
        "much sooner than without pruning, and the best found by an open stream of trials "
        "at the no-pruning sweep's compute (what pruning buys: more trials in the same time). "
        "Without --early-termination, a standard set of policies is compared.",
        epilog="example: sweep replay digits-resnet18 --workers 4 --seeds 20\n"
        "         sweep replay digits-resnet18 --early-termination "
        "'{type: forecast, risk: 0.05}'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "name",
        help="a sweep's name (see 'sweep ls'), or a curve bank file (benchmarks/curves/*.jsonl.gz)",
    )
    p.add_argument(
        "--early-termination",
        action="append",
        metavar="YAML",
        default=[],
        help="a policy as the sweep file writes it, e.g. '{type: asha, "
        "min_resource: 2}' (repeatable; compared with none)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="simulated parallel trials (default: the sweep's max_concurrent_trials, else 1)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=10,
        metavar="S",
        help="orders of the trials to replay (default 10; the first is the recorded order)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        help="how far below the no-pruning best still counts as reaching it",
    )
    p.add_argument(
        "--no-anytime",
        action="store_true",
        help="skip the open stream at equal compute (about 3/4 of the time)",
    )
    p.add_argument(
        "--calibrate-on",
        metavar="SWEEP_OR_BANK",
        help="an earlier sweep of the same trainer (or a bank file): the forecast's margin "
        "learns from its curves from the first trial on, as with warm_start in a sweep, its "
        "trials most like each replayed one bound where it ends (where both have params), "
        "and it judges trials from epoch 1 (unless min_epochs is given); the other policies "
        "ignore it",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per policy")
    p.add_argument("--root", type=Path, help="the folder of sweeps (default ./sweeps)")
    p.set_defaults(func=replay)


def replay(args: argparse.Namespace) -> int:
    from search_spaces.sections import parse_early_termination
    from search_spaces.yaml_file import parse_yaml
    from sweep.errors import SweepInputError
    from sweep.replay.simulator import STANDARD, Hindsight, ReplayPolicy, compare

    if args.seeds < 1 or (args.workers is not None and args.workers < 1):
        raise SweepInputError("--seeds and --workers: expected 1 or more")
    policies: dict[str, ReplayPolicy] = dict(STANDARD)
    if args.early_termination:
        policies = {"none": STANDARD["none"]}
        for text in args.early_termination:
            policy = parse_early_termination(parse_yaml(text, "--early-termination"))
            label = policy.type + "".join(f" {k}={v}" for k, v in policy.options.items())
            policies[label] = policy
    curves, maximize, metric, workers, what, study_name = _source(args.name, args)
    calibration: list[Curve] = []
    if args.calibrate_on:
        calibration, same_way, other_metric, *_ = _source(args.calibrate_on, args)
        if same_way != maximize:
            raise SweepInputError(
                f"--calibrate-on: {args.calibrate_on} {'max' if same_way else 'min'}imises "
                f"{other_metric} and {args.name} {'max' if maximize else 'min'}imises "
                f"{metric}: its curves cannot calibrate this one's forecasts"
            )
        if not args.early_termination:
            # The bound the calibrated forecast is measured against judges from its epoch.
            policies["hindsight_from_1"] = Hindsight(1)
    started = time.perf_counter()
    summaries = compare(
        curves,
        policies,
        maximize=maximize,
        workers=workers,
        seeds=args.seeds,
        tolerance=args.tolerance,
        anytime=not args.no_anytime,
        study_name=study_name,
        calibration=calibration,
    )
    took = time.perf_counter() - started
    if args.json:
        for summary in summaries:
            print(json.dumps(summary.as_json()))
        return 0
    print(
        f"{what}: {len(curves)} trials of {metric} ({'max' if maximize else 'min'}imised), "
        f"{workers} simulated worker{'s' * (workers > 1)}, {args.seeds} seed"
        f"{'s' * (args.seeds > 1)} (the first in the recorded order); replayed in "
        f"{took:.1f} s"
    )
    if calibration:
        from sweep.scheduling.neighbours import NEIGHBOURS

        with_params = sum(bool(c.params) for c in calibration)
        print(
            f"the forecast's margin calibrated on {len(calibration)} curves of "
            f"{args.calibrate_on} as well"
            + (
                f"; the {NEIGHBOURS} of their {with_params} trials with params most like each "
                "replayed one bound where it ends"
                if with_params and any(c.params for c in curves)
                else ""
            )
        )
    censored = sum(1 for c in curves if not c.complete)
    if censored:
        print(
            f"note: {censored} trials were stopped in the sweep itself; a policy that would "
            "keep them stops them there (counted as pruned)"
        )
    print(TABLE_HEAD)
    for s in summaries:

        def num(v: float | None, form: str = ".4f") -> str:
            return format(v, form) if v is not None else "-"

        anytime = ", ".join(num(v) for v in s.anytime)
        print(
            f"{s.policy:<22} {s.epochs:7.0f} {s.seconds / 3600:7.2f} {s.pruned:7.0f} "
            f"{num(s.best):>8} {s.lost:5.0%} "
            f"{num(s.to_best_s / 3600 if s.to_best_s is not None else None, '.2f'):>7}h "
            f"{s.sooner:6.1f}x   {anytime}"
        )
    print(
        "lost: share of seeds that missed the no-pruning best; sooner: the no-pruning "
        "sweep's time to its best over the policy's (median over seeds; 0 when never)"
    )
    bounds = [name for name in policies if name.startswith("hindsight_from_")]
    if bounds:
        print(
            f"{' and '.join(bounds)}: bounds, not policies: a forecast never wrong, judging "
            "from that epoch against the best finished value (the most forecast could save "
            "here; it judges from epoch 3, or 1 when calibrated on an earlier sweep)"
        )
    return 0


def _source(name: str, args: argparse.Namespace) -> tuple[list[Curve], bool, str, int, str, str]:
    """The curves of ``name``: a bank file's, or a finished sweep's (and the study name
    its replays take: a sweep's own, so Hyperband deals its trials as the sweep did)."""
    from sweep.errors import SweepInputError
    from sweep.replay.sources import curves_of_sweep, load_bank
    from sweep.scheduling.verdicts import fixed_epochs

    path = Path(name)
    if name.endswith((".jsonl.gz", ".gz")) or path.is_file():
        bank = load_bank(path)
        return (
            list(bank.curves),
            bank.maximize,
            bank.metric,
            args.workers or 1,
            f"bank {bank.name}",
            bank.name,
        )
    from sweep.api import Sweep

    sweep = Sweep.load(name, root=args.root)
    config = sweep.config
    if config.multi_objective:
        raise SweepInputError(
            f"replay: sweep {name} has several objectives; a replay judges one per-epoch value"
        )
    result = sweep.result()
    assert result.study is not None
    metric = config.objective.primary_metric
    curves = curves_of_sweep(
        sweep.sweep_dir, result.study.get_trials(deepcopy=False), metric, fixed_epochs(config)
    )
    if len(curves) < 2:
        raise SweepInputError(
            f"replay: sweep {name} has {len(curves)} trials with a per-epoch history of "
            f"{metric} (a replay needs the value of each epoch, which trials that report only "
            "once, or that failed, do not leave); run a sweep whose trainer reports every "
            "epoch"
        )
    workers = args.workers or config.limits.max_concurrent_trials or 1
    return curves, config.maximize, metric, workers, f"sweep {name}", config.name
