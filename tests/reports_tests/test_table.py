from __future__ import annotations

from reports.table import format_table


def test_columns_fit_their_widest_cell_header_included():
    lines = format_table(
        ["#", "state", "learning_rate", "best_val_acc", "reason"],
        [
            [0, "complete", 0.0123456, 0.9, ""],
            [12, "pruned", 0.5, 0.123456789, "interval 2: worse than median"],
        ],
        left=(1, 4),
        ragged_last=True,
    )
    header = lines[0]
    assert "learning_rate" in header and "best_val_acc" in header  # never cut
    # Right-aligned columns end where their header ends, on every line.
    for name in ("learning_rate", "best_val_acc"):
        end = header.index(name) + len(name)
        for line in lines[1:]:
            assert line[end - 1] != " " and (len(line) == end or line[end] == " "), line
    assert lines[2].endswith("interval 2: worse than median")
    assert lines[1].index("complete") == header.index("state")  # left-aligned column
