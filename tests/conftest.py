from __future__ import annotations

import os

# Tests run on 2 CPUs: keep each torch process on one thread so parallel trials don't fight.
os.environ.setdefault("OMP_NUM_THREADS", "1")
