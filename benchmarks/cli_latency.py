"""Start-up cost of the command line, beside a bare interpreter, measured in one run.

Each command runs as a fresh process, interleaved, REPS times; the median wall time and the
largest peak memory (max RSS) are printed with the bare ``python -c pass`` next to them.
``sweep models predict`` runs on a model folder (best/ of a one-trial digits sweep made
first, about 20 s) with one image and with 100. Run from the repository root:
    .venv/bin/python benchmarks/cli_latency.py [REPS]
Targets (issue 12): --help <= 0.3 s, validate <= 0.4 s, predict one image <= 0.8 s and
<= 250 MB, 100 images <= 2x one.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = [sys.executable, "-m", "sweep.cli"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "sweep --help": [*SWEEP, "--help"],
    "sweep validate digits.yaml": [*SWEEP, "validate", "search_spaces/examples/digits.yaml"],
    "sweep validate azure_job/job.yml": [
        *SWEEP,
        "validate",
        "search_spaces/examples/azure_job/job.yml",
    ],
}


_MAKE_MODEL = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from benchmarks.cli_latency import _model_and_images
_model_and_images(Path(sys.argv[2]))
"""


def _model_and_images(folder: Path) -> tuple[Path, list[Path]]:
    """A trained model folder (model.onnx + card.json) and 100 digit images to classify."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    from sweep import Sweep
    from sweep.backends import InProcessBackend

    result = Sweep(
        name="bench",
        root=folder,
        backend=InProcessBackend(),
        search_space={"learning_rate": {"type": "choice", "values": [0.05]}},
        trainer_args={"data": "digits", "image_size": 32, "num_epochs": 1},
        limits={"max_total_trials": 1},
    ).run()
    assert result.best_dir is not None
    images = []
    for i, pixels in enumerate(load_digits().images[:100]):
        path = folder / f"digit{i}.png"
        Image.fromarray((pixels * 15).astype(np.uint8)).save(path)
        images.append(path)
    return result.best_dir, images


def _run(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    with tempfile.TemporaryDirectory() as tmp:
        # In a child: a parent that imported torch would lend its peak memory to every
        # process it forks (Linux counts the forked image in the child's max RSS).
        subprocess.run(
            [sys.executable, "-c", _MAKE_MODEL, str(ROOT), tmp], check=True, capture_output=True
        )
        model = Path(tmp) / "bench" / "best"
        images = [Path(tmp) / f"digit{i}.png" for i in range(100)]
        commands = {
            **COMMANDS,
            "sweep models predict (1 image)": [
                *SWEEP,
                "models",
                "predict",
                str(model),
                str(images[0]),
            ],
            "sweep models predict (100 images)": [
                *SWEEP,
                "models",
                "predict",
                str(model),
                *map(str, images),
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        peaks: dict[str, float] = dict.fromkeys(commands, 0.0)
        for _ in range(reps):
            for name, argv in commands.items():
                elapsed, peak = _run(argv)
                times[name].append(elapsed)
                peaks[name] = max(peaks[name], peak)
    base = statistics.median(times["python -c pass"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:36} median {median * 1000:6.0f} ms  (+{(median - base) * 1000:5.0f} ms "
            f"over the bare interpreter), peak {peaks[name]:4.0f} MB, {reps} runs"
        )


if __name__ == "__main__":
    main()
