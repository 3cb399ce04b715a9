"""Start-up cost of the command line, beside a bare interpreter, measured in one run.

Each command runs as a fresh process, interleaved, REPS times; the median wall time is
printed with the bare ``python -c pass`` next to it. Run from the repository root:
    .venv/bin/python benchmarks/cli_latency.py [REPS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = [sys.executable, "-m", "sweep.cli"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "sweep --help": [*SWEEP, "--help"],
    "sweep validate digits.yaml": [*SWEEP, "validate", "search_spaces/examples/digits.yaml"],
    "sweep validate azure_job/job.yml": [*SWEEP, "validate",
                                         "search_spaces/examples/azure_job/job.yml"],
}


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(reps):
        for name, argv in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c pass"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:36} median {median * 1000:6.0f} ms  (+{(median - base) * 1000:5.0f} ms "
              f"over the bare interpreter), {reps} runs")


if __name__ == "__main__":
    main()
