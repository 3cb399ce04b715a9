"""Where a replay's curves come from: a finished sweep's own trials, a bank of recorded
curves (``benchmarks/curves/*.jsonl.gz``), or a synthetic family (the multi-fidelity
Hartmann functions).

A bank file is gzipped JSON lines: a header ``{"bank": NAME, "metric": …, "goal": …,
"about": …}``, then one curve a line ``{"values": [...], "epoch_s": [...], "planned": N,
"start_s": s, "params": {...}}``; a line marked ``"diverged": REASON`` (a run whose loss
became NaN) is left out of replays. To add your own: replay a sweep of yours by name, or write
its curves with :func:`save_bank` (``sweep replay`` takes a bank file's path too).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from sweep.errors import SweepInputError
from sweep.records.layout import read_history, trial_dir
from sweep.replay.simulator import Curve


@dataclass(frozen=True)
class Bank:
    """Curves of one metric, and which way is better."""

    name: str
    metric: str
    maximize: bool
    curves: tuple[Curve, ...]
    about: str = ""


def curves_of_sweep(
    sweep_dir: Path, trials: Sequence[FrozenTrial], metric: str, epochs: int | None
) -> list[Curve]:
    """A finished sweep's trials as curves, in trial order: the primary metric at each
    reported epoch, each epoch's time (``epoch_s`` where the trainer reports it, else the
    trial's time spread evenly), and the epochs it asked for (``num_epochs``)."""
    curves = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            continue
        history = read_history(trial_dir(sweep_dir, t.number))
        values = [
            float(h[metric])
            for h in history
            if isinstance(h.get(metric), int | float) and math.isfinite(h[metric])
        ]
        if not values or len(values) != len(history):
            continue
        wall = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else float(len(values))
        )
        given = [h.get("epoch_s") for h in history]
        if all(isinstance(s, int | float) and s >= 0 for s in given):
            epoch_s = [float(s) for s in given]  # type: ignore[arg-type]
        else:
            epoch_s = [max(wall, 1e-3) / len(values)] * len(values)
        asked = t.params.get("num_epochs", epochs)
        planned = (
            int(asked)
            if isinstance(asked, int | float) and not isinstance(asked, bool)
            else len(values)
        )
        if t.state == TrialState.COMPLETE:
            planned = len(values)  # it ran to its end, whatever it asked
        curves.append(
            Curve(
                tuple(values),
                tuple(epoch_s),
                max(planned, len(values)),
                max(0.0, wall - sum(epoch_s)),
                f"trial {t.number}",
                dict(t.params),
            )
        )
    return curves


def load_bank(path: Path) -> Bank:
    """A bank file (see the module's docstring)."""
    try:
        with gzip.open(path, "rt") as f:
            lines = [json.loads(line) for line in f if line.strip()]
        head, rows = lines[0], lines[1:]
        curves = tuple(
            Curve(
                tuple(map(float, r["values"])),
                tuple(map(float, r["epoch_s"])),
                int(r["planned"]),
                float(r.get("start_s", 0.0)),
                str(r.get("label") or json.dumps(r.get("params", {}), sort_keys=True)),
                dict(r.get("params") or {}),
            )
            for r in rows
            if not r.get("diverged")  # a sweep fails it at once, whatever the policy
        )
        return Bank(
            str(head["bank"]),
            str(head["metric"]),
            head["goal"] == "maximize",
            curves,
            str(head.get("about", "")),
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError) as exc:
        raise SweepInputError(
            f"{path}: not a curve bank ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


def save_bank(path: Path, bank: Bank, params: Iterable[Mapping[str, Any]] | None = None) -> None:
    params = list(params) if params is not None else [c.params for c in bank.curves]
    with gzip.open(path, "wt") as f:
        f.write(
            json.dumps(
                {
                    "bank": bank.name,
                    "metric": bank.metric,
                    "goal": "maximize" if bank.maximize else "minimize",
                    "about": bank.about,
                }
            )
            + "\n"
        )
        for curve, p in zip(bank.curves, params, strict=True):
            f.write(
                json.dumps(
                    {
                        "values": [round(v, 6) for v in curve.values],
                        "epoch_s": [round(s, 4) for s in curve.epoch_s],
                        "planned": curve.planned,
                        "start_s": round(curve.start_s, 4),
                        "label": curve.label,
                        "params": dict(p),
                    }
                )
                + "\n"
            )


# -- the multi-fidelity Hartmann functions as curve families ---------------------------------

_H3 = (
    np.array([1.0, 1.2, 3.0, 3.2]),
    np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]),
    1e-4
    * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]),
)
_H6 = (
    np.array([1.0, 1.2, 3.0, 3.2]),
    np.array(
        [
            [10, 3, 17, 3.5, 1.7, 8],
            [0.05, 10, 17, 0.1, 8, 14],
            [3, 3.5, 1.7, 10, 17, 8],
            [17, 8, 0.05, 10, 0.1, 14],
        ]
    ),
    1e-4
    * np.array(
        [
            [1312, 1696, 5569, 124, 8283, 5886],
            [2329, 4135, 8307, 3736, 1004, 9991],
            [2348, 1451, 3522, 2883, 3047, 6650],
            [4047, 8828, 8732, 5743, 1091, 381],
        ]
    ),
)


def hartmann_curves(dims: int, n: int, epochs: int = 27, seed: int = 0) -> Bank:
    """``n`` configurations of the multi-fidelity Hartmann function in 3 or 6 dimensions
    (Kandasamy et al. 2017, as in HPOBench and mfhpo-simulator: alpha moves by 0.1·(1 - z)
    at fidelity z), each a curve over ``epochs`` epochs with z = epoch / epochs: its value
    at the last epoch is the true Hartmann value, to maximise. Low fidelities rank the
    configurations differently, so curves cross as real ones do. Each epoch costs 1 s."""
    alpha, a, p = {3: _H3, 6: _H6}[dims]
    rng = np.random.default_rng(seed)
    x = rng.random((n, dims))
    curves = []
    for point in x:
        values = []
        for epoch in range(1, epochs + 1):
            z = epoch / epochs
            shifted = alpha - 0.1 * (1 - z)
            values.append(float(shifted @ np.exp(-(a * (point - p) ** 2).sum(axis=1))))
        curves.append(
            Curve(
                tuple(values),
                (1.0,) * epochs,
                epochs,
                0.0,
                json.dumps([round(float(v), 4) for v in point]),
                {f"x{i + 1}": float(v) for i, v in enumerate(point)},
            )
        )
    return Bank(
        f"hartmann{dims}",
        "value",
        True,
        tuple(curves),
        f"multi-fidelity Hartmann-{dims}, {n} points, {epochs} epochs, seed {seed}",
    )


def crossing_curves(n: int, epochs: int = 9, seed: int = 0) -> Bank:
    """A family of learning curves that cross, as a learning rate's do: a configuration with
    a higher ceiling starts slower (ceiling 0.6 + 0.35 u, rate 0.15 + 1.6 (1 - u)^1.5 per
    epoch, u uniform), with noise of 0.004 and the running best reported (a best_val_acc).
    Rung-ranking policies stop the slow starters; the best of them is the winner."""
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(n):
        u = rng.random()
        ceiling, rate = 0.6 + 0.35 * u, 0.15 + 1.6 * (1 - u) ** 1.5
        t = np.arange(1, epochs + 1)
        noisy = ceiling * (1 - np.exp(-rate * t)) + rng.normal(0, 0.004, epochs)
        running = np.maximum.accumulate(noisy)
        curves.append(
            Curve(
                tuple(float(v) for v in running),
                (1.0,) * epochs,
                epochs,
                0.0,
                f"u={u:.4f}",
                {"u": float(u)},
            )
        )
    return Bank(
        "crossing",
        "best_val_acc",
        True,
        tuple(curves),
        f"crossing learning curves, {n} configurations, {epochs} epochs, seed {seed}",
    )
