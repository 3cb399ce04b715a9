"""The report in a terminal: ranked trials, the best, counts by state, what pruning saved."""

from __future__ import annotations

import math
import os
import sys
from typing import Any, TextIO

import pandas as pd

from reports.compare import Comparison, SweepData
from reports.frames import pruning_saving
from reports.table import format_table

WIDTH = 100
_COLOURS = {"complete": "32", "pruned": "33", "failed": "31"}


def _cell(value: Any, width: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        text = "-"
    elif isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _seconds(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f}"


def use_colour(out: TextIO) -> bool:
    return out.isatty() and "NO_COLOR" not in os.environ


def ranked(data: SweepData) -> pd.DataFrame:
    """Completed trials best first, then pruned (by their last value), then the rest."""
    frame = data.trials.copy()
    order = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "failed": 4}
    frame["_state"] = frame["state"].map(order).fillna(5)
    value = pd.to_numeric(frame["value"], errors="coerce")
    frame["_value"] = -value if data.maximize else value
    return frame.sort_values(["_state", "_value"], na_position="last").drop(
        columns=["_state", "_value"]
    )


def render(data: SweepData, colour: bool = False) -> str:
    frame = ranked(data)
    params = data.params
    header = ["rank", "#", "state", data.metric, *params, "epochs", "time s"]
    records = frame.to_dict("records")
    rows = []
    for rank, row in enumerate(records, start=1):
        asked = row["epochs_asked"]
        epochs = f"{row['epochs_run']}/{_cell(int(asked) if pd.notna(asked) else None, 3)}"
        rows.append(
            [
                rank,
                row["number"],
                row["state"],
                row["value"],
                *[row[f"param_{p}"] for p in params],
                epochs,
                _seconds(row["duration_s"]),
            ]
        )
    table = format_table(header, rows, left=(2,), gap=" ")
    lines = [f"sweep {data.name}: {data.goal} {data.metric}", table[0]]
    for row, line in zip(records, table[1:], strict=True):
        if colour and row["state"] in _COLOURS:
            # Colour the padded state cell in place: widths stay those of the plain text.
            state = str(row["state"])
            at = line.index(state)  # rank and number come first, and they are digits
            line = f"{line[:at]}\033[{_COLOURS[state]}m{state}\033[0m{line[at + len(state) :]}"
        lines.append(line)
    counts = data.trials["state"].value_counts().to_dict()
    done = frame[frame["state"] == "complete"]
    if "feasible" in done:  # the pick meets every constraint
        done = done[done["feasible"] == True]  # noqa: E712 - a column of True/False/None
    if not done.empty:
        best = done.iloc[0]
        shown = ", ".join(f"{p}={_cell(best[f'param_{p}'], 12)}" for p in params)
        lines.append(
            f"best: trial {best['number']} {data.metric} {_cell(best['value'], 10)} ({shown})"[
                :WIDTH
            ]
        )
    else:
        lines.append("best: no trial completed")
    lines.append("trials: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    lines.append(pruning_saving(data.trials))
    if data.lineage:
        lines.append(data.lineage)
    lines.extend(front_table(data))
    return "\n".join(lines)


def front_table(data: SweepData) -> list[str]:
    """Several objectives: the Pareto front, best on the first objective first."""
    if not data.objectives or "pareto" not in data.trials:
        return []
    members = ranked(data)
    members = members[members["pareto"] == True]  # noqa: E712 - True/False/NaN
    names = [m for m, _ in data.objectives]
    rows = [
        [row["number"], *row["values"], *[row[f"param_{p}"] for p in data.params]]
        for row in members.to_dict("records")
    ]
    header = [
        "#",
        *[f"{m} ({'max' if g == 'maximize' else 'min'})" for m, g in data.objectives],
        *data.params,
    ]
    return [
        f"Pareto front: {len(rows)} trials ({', '.join(names)})",
        *format_table(header, rows, gap=" "),
    ]


def print_report(comparison: Comparison, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    colour = use_colour(out)
    print("\n\n".join(render(s, colour) for s in comparison.sweeps), file=out)
