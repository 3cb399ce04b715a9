"""``sweep ls``, ``sweep status NAME`` and ``sweep best NAME``."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from search_spaces import clip_message


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ls", help="list the sweeps under the sweeps folder")
    p.add_argument("--root", type=Path, help="the folder of sweeps (default ./sweeps)")
    p.set_defaults(func=ls)

    p = sub.add_parser(
        "status",
        help="one sweep's trials: state, params, value, epochs, reason",
    )
    p.add_argument("name", help="the sweep's name (see 'sweep ls')")
    p.add_argument("--json", action="store_true", help="print the trials as JSON")
    p.add_argument("--root", type=Path, help="the folder of sweeps (default ./sweeps)")
    p.set_defaults(func=status)

    p = sub.add_parser("best", help="the best trial's params and metrics")
    p.add_argument("name", help="the sweep's name (see 'sweep ls')")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.add_argument("--root", type=Path, help="the folder of sweeps (default ./sweeps)")
    p.set_defaults(func=best)


def ls(args: argparse.Namespace) -> int:
    from sweep.api import Sweep
    from sweep.records.layout import CONFIG_FILE, sweeps_root

    root = sweeps_root(args.root)
    names = sorted(p.parent.name for p in root.glob(f"*/{CONFIG_FILE}"))
    if not names:
        print(f"no sweeps in {root}")
        return 0
    print(f"{'sweep':<28} {'trials':>6} {'complete':>8} {'pruned':>6} {'failed':>6}  best")
    for name in names:
        try:
            sweep = Sweep.load(name, root=args.root)
            result = sweep.result()
        except Exception as exc:  # one odd sweep must not hide the others
            print(f"{name:<28} (cannot be read: {clip_message(str(exc) or type(exc).__name__)})")
            continue
        c = result.counts
        shown = f"{result.best.value:.4g}" if result.best else "-"
        warm = sweep.config.warm_start
        lineage = f"  (warm-started from {', '.join(warm.sweeps)})" if warm else ""
        print(
            f"{name:<28} {len(result.trials):>6} {c.get('complete', 0):>8} "
            f"{c.get('pruned', 0):>6} {c.get('failed', 0):>6}  {shown}{lineage}"
        )
    return 0


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def status(args: argparse.Namespace) -> int:
    from sweep.api import Sweep
    from sweep.records.trial_attrs import SPACE_CHANGES

    sweep = Sweep.load(args.name, root=args.root)
    result = sweep.result()
    frame = result.trials
    if args.json:
        rows = [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]
        print(json.dumps({"name": result.name, "trials": rows}, indent=2, default=str))
        return 0
    from reports.table import format_table

    params = [c for c in frame.columns if c.startswith("param_")]
    restarts = "restarts" in frame and bool(frame["restarts"].any())
    preempted = "preemptions" in frame and bool(frame["preemptions"].any())
    # A shared study (several coordinators on one database): who ran each trial.
    who = "coordinator" in frame and frame["coordinator"].nunique() > 1
    lineage = "lineage" in frame  # PBT: whose checkpoint each member copied, when
    goals = [o.primary_metric for o in sweep.config.goals]
    several = "values" in frame  # several objectives: a column each, and the front marked
    header = [
        "#",
        "state",
        *[p[len("param_") :] for p in params],
        *(goals if several else ["value"]),
        *(["front"] if several else []),
        "epochs",
        *(["restarts"] if restarts else []),
        *(["preempted"] if preempted else []),
        *(["coordinator"] if who else []),
        "lineage" if lineage else "reason",
    ]
    table = [
        [
            row["number"],
            row["state"],
            *[_clean(row[p]) for p in params],
            *(_values(row, len(goals)) if several else [_clean(row["value"])]),
            *([_front_mark(row)] if several else []),
            f"{row['epochs_run']}/{_clean(row['epochs_asked']) or '?'}",
            *([row["restarts"]] if restarts else []),
            *([row["preemptions"]] if preempted else []),
            *([row["coordinator"] or ""] if who else []),
            "; ".join(
                x
                for x in (
                    row.get("lineage"),
                    row["reason"],
                    f"ran on nodes {row['nodes']}" if row.get("nodes") else None,
                )
                if x
            ),
        ]
        for row in frame.to_dict("records")
    ]
    print("\n".join(format_table(header, table, left=(1, len(header) - 1), ragged_last=True)))
    for change in result.study.user_attrs.get(SPACE_CHANGES, []) if result.study else []:
        print(
            f"search space changed from trial {change['from_trial']} on "
            f"({', '.join(change['params'])}; sweep resume --space)"
        )
    if sweep.config.warm_start is not None:
        print(sweep.config.warm_start.lineage())
    return 0


def _values(row: dict[str, Any], count: int) -> list[Any]:
    values = row.get("values")
    return list(values) if isinstance(values, list) else [None] * count


def _front_mark(row: dict[str, Any]) -> str:
    if row.get("feasible") is False:
        return "infeasible"
    return "yes" if row.get("pareto") is True else ""


def _short(value: Any) -> str:
    value = _clean(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def best(args: argparse.Namespace) -> int:
    from sweep.api import Sweep

    result = Sweep.load(args.name, root=args.root).result()
    if result.best is None:
        print(f"sweep {args.name} has no completed trial yet")
        return 1
    b = result.best
    payload = {
        "trial": b.number,
        "value": b.value,
        "params": dict(b.params),
        "metrics": dict(b.metrics),
        "model_path": str(b.model_path) if b.model_path else None,
        **({"values": list(b.values)} if b.values else {}),
        **({"schedule": b.schedule} if b.schedule else {}),
    }
    if result.pareto_front:
        payload["pareto_front"] = [
            {"trial": m.number, "values": list(m.values), "params": dict(m.params)}
            for m in result.pareto_front
        ]
    if args.json:
        print(json.dumps(payload, indent=2, default=str))
        return 0
    print(
        f"best trial of {args.name}: #{b.number}, value {b.value:.6g}"
        + (
            " (the pick: best on the first objective among trials meeting every constraint)"
            if b.values
            else ""
        )
    )
    for k, v in b.params.items():
        print(f"  {k}: {_short(v)}")
    for k, v in b.metrics.items():
        print(f"  {k} = {_short(v)}")
    for step in (b.schedule or [])[1:]:  # PBT: how its params changed on the way
        changed = "  ".join(f"{k} {_short(v)}" for k, v in step["params"].items())
        print(f"  from epoch {step['epoch'] + 1}: copied trial {step['from']}, {changed}")
    if b.model_path:
        print(f"  model: {b.model_path}")
    if result.pareto_front:
        print(
            f"Pareto front ({len(result.pareto_front)} trials; register another with "
            f"'sweep register {args.name} --trial N'):"
        )
        for m in result.pareto_front:
            print(f"  #{m.number}: " + ", ".join(_short(v) for v in m.values))
    return 0
