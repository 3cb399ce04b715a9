"""How many torch threads a test that trains may use: every core when the suite runs in one
process, a share each when it runs in several (scripts/test.sh runs two). Two processes
each spinning two OpenMP threads on two cores train 4x slower than one alone, not 2x
(measured: 56 s against 14 s for the same run); one thread each, 1.4x."""

from __future__ import annotations

import os

WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
TRAIN_THREADS = max(1, (os.cpu_count() or 1) // WORKERS)
