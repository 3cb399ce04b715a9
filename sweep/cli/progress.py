"""The live view of ``sweep run``: a line per trial event, and a summary at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from reports.frames import pruning_saving
from sweep.records import layout
from sweep.result import SweepResult
from sweep.scheduling.verdicts import planned_epochs


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class ProgressView:
    """Prints trial starts, epochs, prunes, completions and failures as they happen."""

    def __init__(
        self, metric: str, goal: str, out: TextIO | None = None, planned: int | None = None
    ) -> None:
        """``planned``: the epochs every trial runs when the file says so outside the
        search space (a job file's ``num_epochs`` input)."""
        self.planned = planned
        self.metric, self.maximize = metric, goal == "maximize"
        self.out = out or sys.stdout
        self.best: tuple[int, float] | None = None
        self.started = time.monotonic()
        self.epochs: dict[int, Any] = {}

    def _print(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.0f}s] {text}", file=self.out, flush=True)

    def trial_started(self, number: int, params: Mapping[str, Any]) -> None:
        self.epochs[number] = planned_epochs(params, self.planned) or "?"
        shown = "  ".join(f"{k}={_fmt(v)}" for k, v in params.items())
        self._print(f"trial {number:<3} started    {shown}")

    def trial_continued(self, number: int, epoch: int, why: str) -> None:
        self._print(f"trial {number:<3} continues  from epoch {epoch + 1} ({why})")

    def trial_reported(self, number: int, epoch: int, value: float | None) -> None:
        shown = f"{self.metric} {_fmt(value)}" if value is not None else ""
        planned = self.epochs.get(number, "?")
        of = f"/{planned}" if planned != "?" else ""  # a command trial's script decides
        self._print(f"trial {number:<3} epoch {epoch + 1}{of}  {shown}")

    def trial_ended(self, number: int, state: str, value: float | None, reason: str) -> None:
        if state == "COMPLETE" and value is not None:
            better = self.best is None or (
                value > self.best[1] if self.maximize else value < self.best[1]
            )
            if better:
                self.best = (number, value)
            assert self.best is not None
            self._print(
                f"trial {number:<3} complete   {self.metric} {_fmt(value)}   "
                f"(best so far: trial {self.best[0]}, {_fmt(self.best[1])})"
            )
        elif state == "PRUNED":
            self._print(f"trial {number:<3} pruned     {reason}")
        else:
            self._print(f"trial {number:<3} failed     {reason}")


def summary(result: SweepResult, metric: str) -> str:
    counts = result.counts
    lines = []
    if result.best is not None:
        best = result.best
        if best.values and result.pareto_front:  # several objectives: the pick, the front
            others = ", ".join(_fmt(v) for v in best.values[1:])
            lines.append(
                f"best: trial {best.number}  {metric} {_fmt(best.value)} (then "
                f"{others}): the pick, best on {metric} among trials meeting "
                f"every constraint; the Pareto front has {len(result.pareto_front)} "
                f"trials (sweep best {result.name} lists them)"
            )
        else:
            lines.append(f"best: trial {best.number}  {metric} {_fmt(best.value)}")
        lines.append("  " + "  ".join(f"{k} {_fmt(v)}" for k, v in best.params.items()))
        if best.model_path:
            lines.append(f"  model: {best.model_path}")
    else:
        lines.append("no trial completed")
    lines.append(
        f"trials: {counts.get('complete', 0)} complete, {counts.get('pruned', 0)} pruned, "
        f"{counts.get('failed', 0)} failed; {pruning_saving(result.trials)}"
    )
    lines.append(
        f"files: {result.sweep_dir}"
        + (
            f" (report and best model written in {result.finish_s:.1f} s)"
            if result.finish_s is not None
            else ""
        )
    )
    best_dir = result.best_dir
    if best_dir is not None and (best_dir / layout.MODEL).exists():
        lines.append(f"best model: {best_dir}/model.pt, checked ONNX: {best_dir}/model.onnx")
    elif best_dir is not None:
        onnx = (
            "model.onnx (the script's own, unchecked)"
            if (best_dir / layout.ONNX).exists()
            else "no ONNX file (see card.json)"
        )
        lines.append(f"best trial's outputs: {best_dir}/outputs; {onnx}")
    if result.registered:
        predict = best_dir is not None and (best_dir / layout.MODEL).exists()
        lines.append(
            f"registered: {result.registered}"
            + (
                f"; try it with: sweep models predict {result.registered} IMAGE.png"
                if predict
                else ""
            )
        )
    return "\n".join(lines)


def azure_summary(result: SweepResult) -> str:
    """The end of a sweep that ran on Azure ML: its best trial as it came back."""
    lines = [f"files: {result.sweep_dir}"]
    if result.best is not None:
        lines.insert(
            0, "best: " + "  ".join(f"{k} {_fmt(v)}" for k, v in result.best.params.items())
        )
    if result.best_dir is not None:
        lines.append(
            f"best model: {result.best_dir}/model.pt, checked ONNX: {result.best_dir}/model.onnx"
        )
    if result.outputs is not None:
        lines.append(f"the best trial's outputs: {result.outputs}")
    if result.workspace_model:
        lines.append(f"workspace model: {result.workspace_model}")
    if result.registered:
        lines.append(f"registered: {result.registered}")
    return "\n".join(lines)
