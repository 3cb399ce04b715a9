"""Trial comparison: frames, a terminal table, charts, and one offline HTML report.

Example:
    >>> from reports import build_html, compare
    >>> comparison = compare(["digits-resnet18"])          # doctest: +SKIP
    >>> comparison.trials                                   # doctest: +SKIP
    >>> build_html(comparison, "report.html")               # doctest: +SKIP
"""

from __future__ import annotations

from reports.compare import Comparison, SweepData, compare
from reports.frames import curves_frame, trials_frame
from reports.html import build_html
from reports.terminal import print_report

__all__ = ["Comparison", "SweepData", "build_html", "compare", "curves_frame", "print_report",
           "trials_frame"]
