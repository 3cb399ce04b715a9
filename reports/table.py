"""Plain-text tables whose columns fit their widest cell, header included, so nothing drifts
or is cut, whatever the names and values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def cell(value: Any) -> str:
    """How one value reads in a table: floats to 4 significant digits, missing as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    left: Sequence[int] = (),
    gap: str = "  ",
    ragged_last: bool = False,
) -> list[str]:
    """Lines of a table; columns in ``left`` are left-aligned, the rest right-aligned.
    ``ragged_last``: the last column is written as it is (a long reason then pushes nothing)."""
    texts = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, (text, width) in enumerate(zip(cells, widths, strict=True)):
            if ragged_last and i == len(cells) - 1:
                parts.append(text)
            elif i in left:
                parts.append(text.ljust(width))
            else:
                parts.append(text.rjust(width))
        return gap.join(parts).rstrip()

    return [line(header), *(line(r) for r in texts)]
