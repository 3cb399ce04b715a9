"""Where a sweep keeps what it leaves (SPEC section 4): every name under ``sweeps/NAME/``, and
the reader of a trial's history. The one owner of these names; nothing else spells them.

    sweeps/NAME/
      sweep.yaml          the sweep as it was started (what resume reads)
      coordinator.lock    held by the one coordinator running the sweep
      study.journal       the Optuna study (the default storage); study.journal.flock its
                          write lock (``journal.FlockJournalLock``)
      .token              the running coordinator's token (``checkpoint_store.write_token``)
      code/               a command sweep's snapshot of trial.code
      trials/0007/        params.json, metrics.jsonl, result.json, outputs/, trial.log
      best/               the best model, its checked ONNX file, card.json
      registered/0007/    the same for a trial registered by hand (sweep register --trial)
      trials.csv, report.html
      azure/              what went to Azure ML (sweep-job.yaml, submitted.json)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CONFIG_FILE = "sweep.yaml"
JOURNAL = "study.journal"
LOCK = "coordinator.lock"
CODE = "code"
TRIALS = "trials"
BEST = "best"
REGISTERED = "registered"
AZURE = "azure"
TRIALS_CSV = "trials.csv"
CARD = "card.json"
"""In best/ and in every registered model version: where the model came from."""
MODEL = "model.pt"
"""The built-in trainer's model file (``trainer.checkpoint.MODEL_FILE``, the same name: the
trainer knows nothing of the sweep), in a trial's outputs/, best/ and a registered version."""
ONNX = "model.onnx"
"""The checked ONNX export beside it in best/ and a registered version."""
REPORT_HTML = "report.html"
AZURE_JOB = "sweep-job.yaml"
"""In azure/: the Azure ML job file written for the sweep (what ``az ml job create`` takes)."""
# In each trial's folder:
PARAMS = "params.json"
METRICS = "metrics.jsonl"
RESULT = "result.json"
OUTPUTS = "outputs"


def sweeps_root(root: str | Path | None = None) -> Path:
    """Where sweeps live: ``root``, else $SWEEP_ROOT, else ./sweeps."""
    return Path(root or os.environ.get("SWEEP_ROOT") or "sweeps")


def started(sweep_dir: Path) -> bool:
    """Whether a sweep already ran in this folder (a new run there is refused)."""
    return (Path(sweep_dir) / CONFIG_FILE).exists() or (Path(sweep_dir) / JOURNAL).exists()


def trial_dir(sweep_dir: Path, number: int) -> Path:
    return Path(sweep_dir) / TRIALS / f"{number:04d}"


def read_history(trial_folder: Path) -> list[dict[str, Any]]:
    """A trial's reports in order: one mapping per reported epoch (epoch and metrics).

    A last line cut short by a crash is left out (the trial ran again under a new number).
    """
    path = Path(trial_folder) / METRICS
    if not path.exists():
        return []
    history = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            history.append(record)
    return history


def histories(sweep_dir: Path) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Every trial's number and history, in trial order."""
    for path in sorted((Path(sweep_dir) / TRIALS).glob(f"*/{METRICS}")):
        yield int(path.parent.name), read_history(path.parent)
