"""``sweep report NAME [OTHER …]``: the comparison of trials, in the terminal or as files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="compare trials (and sweeps): table, or --html / --csv / --json files",
        description="A ranked table of trials (best first), the best trial, counts by state and "
        "the epochs pruning saved. --html writes one self-contained file with learning curves "
        "(pruned trials marked where they stopped, the reason on hover), optimisation history, "
        "parallel coordinates, parameter importances and a slice per parameter.",
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="one or more sweeps")
    p.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report")
    p.add_argument("--csv", type=Path, metavar="FILE", help="write the trials as CSV")
    p.add_argument(
        "--curves-csv",
        type=Path,
        metavar="FILE",
        help="write the per-epoch curves as CSV (long format)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write trials and curves as JSON")
    p.add_argument("--root", type=Path, help="the folder of sweeps (default ./sweeps)")
    p.set_defaults(func=report)


def report(args: argparse.Namespace) -> int:
    from reports import build_html, print_report
    from search_spaces.atomic_files import write_atomic
    from sweep.api import compare
    from sweep.model.output_paths import check_output_path

    for option in ("html", "csv", "curves_csv", "json"):
        if getattr(args, option):
            check_output_path(getattr(args, option), f"--{option.replace('_', '-')}")
    comparison = compare(args.names, args.root)
    wrote = []
    if args.csv:
        write_atomic(args.csv, comparison.trials.to_csv(index=False))
        wrote.append(args.csv)
    if args.curves_csv:
        write_atomic(args.curves_csv, comparison.curves.to_csv(index=False))
        wrote.append(args.curves_csv)
    if args.json:
        payload = {
            "trials": json.loads(comparison.trials.to_json(orient="records", date_format="iso")),
            "curves": json.loads(comparison.curves.to_json(orient="records")),
        }
        write_atomic(args.json, json.dumps(payload, indent=2))
        wrote.append(args.json)
    if args.html:
        build_html(comparison, args.html)
        wrote.append(args.html)
    if not wrote:
        print_report(comparison)
    for path in wrote:
        print(f"wrote {path}")
    return 0
