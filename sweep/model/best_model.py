"""The sweep's product: the best trial's model kept in ``best/``, checked as ONNX, registered.

``best/`` holds ``model.pt`` (the trainer's checkpoint), ``model.onnx`` (checked against
PyTorch on real validation images by onnxruntime) and ``card.json`` (where it came from).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import platform
import shutil
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from search_spaces import SweepConfig
from sweep.model.registry import ModelRegistry, ModelVersion
from sweep.records import layout
from sweep.result import SweepResult

logger = logging.getLogger(__name__)

PACKAGES = ("sweep", "torch", "torchvision", "optuna", "ray", "onnx", "onnxruntime")


def package_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def folder_fingerprint(root: Path) -> str:
    """sha256 over a folder's file names and bytes: which data, or which code, it was."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"sha256:{digest.hexdigest()}"


def data_fingerprint(source: str) -> str:
    """sha256 over the data's content: a folder's files, or the built-in digits' pixels."""
    if source != "digits":
        return folder_fingerprint(Path(source))
    from trainer.digits import digits_arrays

    return f"sha256:{hashlib.sha256(digits_arrays()[0].tobytes()).hexdigest()}"


def trial_lineage(
    config: SweepConfig,
    sweep: str,
    trial: int | str | None,
    value: Any,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    history: list[dict[str, Any]],
    schedule: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What every card opens with, wherever its trial ran (here or on Azure ML): sweep,
    trial, objective, params, final metrics, the per-epoch history (and a PBT member's
    params over epochs); the trial kind adds how it trained (``trainer`` or ``command``),
    and :func:`_write_card` when and with what packages."""
    return {
        "sweep": sweep,
        "trial": trial,
        "objective": {
            "primary_metric": config.objective.primary_metric,
            "goal": config.objective.goal,
            "value": value,
        },
        "params": dict(params),
        "metrics": dict(metrics),
        "history": history,
        **({"schedule": schedule} if schedule else {}),
        **(
            {
                "objectives": [
                    {
                        "primary_metric": o.primary_metric,
                        "goal": o.goal,
                        "value": metrics.get(o.primary_metric),
                    }
                    for o in config.goals
                ]
            }
            if config.multi_objective
            else {}
        ),
        **({"constraints": [str(c) for c in config.constraints]} if config.constraints else {}),
    }


def _lineage(config: SweepConfig, result: SweepResult, trial_folder: Path) -> dict[str, Any]:
    best = result.best
    assert best is not None
    return trial_lineage(
        config,
        result.name,
        best.number,
        best.value,
        best.params,
        best.metrics,
        layout.read_history(trial_folder),
        best.schedule,
    )


def trainer_lineage(config: SweepConfig) -> dict[str, Any]:
    return {"trainer": {"entry": config.trainer.entry, "args": dict(config.trainer.args)}}


def _write_card(staging: Path, card: dict[str, Any], folder: Path) -> Path:
    """Stamps the card, writes it, and puts the staged folder in place of ``folder``."""
    card = {
        **card,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": package_versions(),
    }
    (staging / layout.CARD).write_text(json.dumps(card, indent=2, default=str) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def keep_best(config: SweepConfig, result: SweepResult, folder: Path | None = None) -> Path | None:
    """Copies the best model to ``best/``, exports and checks ONNX, writes the card.

    Returns the ``best/`` folder, or None when no trial completed or the best trial left no
    model in the trainer's format (a custom trainer may save its own). Nothing is redone when
    ``best/`` already holds this trial's model.
    """
    best = result.best
    if best is None or best.model_path is None:
        return None
    folder = folder or result.sweep_dir / layout.BEST
    card_file = folder / layout.CARD
    if card_file.exists() and (folder / layout.ONNX).exists():
        if json.loads(card_file.read_text()).get("trial") == best.number:
            return folder
    return export_best(
        best.model_path,
        folder,
        {**_lineage(config, result, best.model_path.parent.parent), **trainer_lineage(config)},
    )


def export_best(
    model_pt: Path, folder: Path, lineage: dict[str, Any], data: str | None = None
) -> Path | None:
    """Fills ``folder`` with model.pt, a checked model.onnx and card.json, atomically.

    ``lineage`` (sweep, trial, objective, params, metrics…) opens the card; the model, data,
    ONNX check and package versions are added here. ``data`` names the data set here when
    the model was trained elsewhere (Azure ML). None when ``model_pt`` is not a model of the
    built-in trainer.
    """
    from trainer.checkpoint import load_checkpoint
    from trainer.errors import TrainerError
    from trainer.onnx_export import export_onnx, validation_images

    try:
        _, info = load_checkpoint(model_pt)
    except TrainerError as exc:
        logger.info("not exporting %s: %s", model_pt, exc)
        return None
    if data is not None:
        info = dataclasses.replace(info, data=data)
    staging = folder.with_name(f".{folder.name}-staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copy2(model_pt, staging / layout.MODEL)
    report = export_onnx(staging, staging / layout.ONNX, images=validation_images(info))
    return _write_card(
        staging,
        {
            **lineage,
            "model": {
                "arch": info.arch,
                "image_size": info.image_size,
                "mean": list(info.mean),
                "std": list(info.std),
                "classes": info.classes,
            },
            "data": {
                "source": info.data,
                "classes": info.classes,
                "fingerprint": data_fingerprint(info.data),
            },
            "onnx": {
                "file": layout.ONNX,
                "opset": report.opset,
                "max_abs_diff": report.max_abs_diff,
                "images_checked": report.images_checked,
            },
        },
        folder,
    )


def keep_best_outputs(
    config: SweepConfig, result: SweepResult, folder: Path | None = None
) -> Path | None:
    """A command sweep's ``best/``: the best trial's whole ``outputs/`` folder, its card (the
    command, the code snapshot's fingerprint, params, metrics), and, when the outputs hold a
    ``model.pt`` of the built-in trainer, that model with a checked ONNX file; an ``.onnx``
    file the script wrote is kept as ``model.onnx``. The card says why when neither is there.
    """
    best = result.best
    if best is None or best.number is None:
        return None
    folder = folder or result.sweep_dir / layout.BEST
    card_file = folder / layout.CARD
    if card_file.exists() and json.loads(card_file.read_text()).get("trial") == best.number:
        return folder
    trial = layout.trial_dir(result.sweep_dir, best.number)
    outputs = trial / layout.OUTPUTS
    snapshot = result.sweep_dir / layout.CODE
    command = (
        (trial / "command.txt").read_text().strip() if (trial / "command.txt").exists() else None
    )
    card: dict[str, Any] = {
        **_lineage(config, result, trial),
        "command": command,
        "code": {"fingerprint": folder_fingerprint(snapshot)} if snapshot.is_dir() else None,
    }
    models = sorted(outputs.rglob(layout.MODEL)) if outputs.is_dir() else []
    exported = None
    for model_pt in models:
        exported = export_best(model_pt, folder, card)
        if exported is not None:
            break
    if exported is None:
        staging = folder.with_name(f".{folder.name}-staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        onnx_files = sorted(outputs.rglob("*.onnx")) if outputs.is_dir() else []
        if onnx_files:
            shutil.copy2(onnx_files[0], staging / layout.ONNX)
            card["onnx"] = {
                "file": layout.ONNX,
                "from": str(onnx_files[0].relative_to(outputs)),
                "checked": "written by the script; not compared with PyTorch",
            }
        else:
            card["onnx"] = {
                "file": None,
                "why": "the best trial's outputs hold neither a "
                "model.pt of the built-in trainer nor an .onnx file",
            }
        _write_card(staging, card, folder)
    if outputs.is_dir():
        shutil.copytree(outputs, folder / "outputs", symlinks=True, dirs_exist_ok=True)
    return folder


def register_best(config: SweepConfig, best_dir: Path) -> ModelVersion | None:
    """Registers ``best/`` under the sweep's ``register.model_name``, once per sweep and trial."""
    if config.register is None:
        return None
    registry = ModelRegistry(config.register.root)
    name = config.register.model_name
    card = json.loads((best_dir / layout.CARD).read_text())
    for existing in registry.versions(name):
        theirs = existing.card
        if theirs.get("sweep") == card["sweep"] and theirs.get("trial") == card["trial"]:
            return existing  # a resumed sweep whose best did not change
    files = {
        n: best_dir / n for n in (layout.MODEL, layout.ONNX, "outputs") if (best_dir / n).exists()
    }
    return registry.register(name, files, {**card, "model_name": name})
