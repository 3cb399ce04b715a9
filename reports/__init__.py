"""Trial comparison: frames, a terminal table, charts, and one offline HTML report.

It works on plain data (the trials frame ``sweep.records.trials_table`` reads from a study, curves)
and knows nothing of how a sweep ran; ``sweep.compare`` loads sweeps by name into a Comparison.

Example:
    >>> from reports import build_html
    >>> from sweep import compare
    >>> comparison = compare(["digits-resnet18"])          # doctest: +SKIP
    >>> comparison.trials                                   # doctest: +SKIP
    >>> build_html(comparison, "report.html")               # doctest: +SKIP
"""

from __future__ import annotations

from reports.compare import Comparison, SweepData, sweep_data
from reports.frames import curves_frame
from reports.html import build_html
from reports.terminal import print_report

__all__ = ["Comparison", "SweepData", "build_html", "curves_frame", "print_report", "sweep_data"]
