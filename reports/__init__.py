"""Trial comparison: frames of trials and curves (more reports build on these)."""

from __future__ import annotations

from reports.frames import curves_frame, trials_frame

__all__ = ["curves_frame", "trials_frame"]
