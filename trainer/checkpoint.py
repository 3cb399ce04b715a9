"""``model.pt``: a state_dict plus what it takes to rebuild the model and preprocess images."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.errors import TrainerError
from trainer.images import IMAGENET_MEAN, IMAGENET_STD, resize_size
from trainer.model import build_model

FORMAT = "sweep.trainer.model/1"


@dataclass(frozen=True)
class ModelInfo:
    arch: str
    classes: list[str]
    image_size: int
    data: str
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    @property
    def resize_size(self) -> int:
        return resize_size(self.image_size)


def save_checkpoint(path: Path, model: nn.Module, info: ModelInfo) -> None:
    """Writes atomically: a reader never sees half a file, a crash leaves the old one."""
    payload: dict[str, Any] = {
        "format": FORMAT,
        "arch": info.arch,
        "classes": list(info.classes),
        "image_size": info.image_size,
        "data": info.data,
        "mean": list(info.mean),
        "std": list(info.std),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    tmp = path.with_suffix(".pt.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> tuple[nn.Module, ModelInfo]:
    """Rebuilds the model saved at ``path`` (a model.pt or the folder holding one), in eval mode."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise TrainerError(f"no model at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainerError(f"{path} is not a readable model file: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TrainerError(f"{path} is not a model.pt written by this trainer")
    info = ModelInfo(
        arch=payload["arch"], classes=list(payload["classes"]),
        image_size=int(payload["image_size"]), data=str(payload["data"]),
        mean=tuple(payload["mean"]), std=tuple(payload["std"]),
    )
    model = build_model(info.arch, len(info.classes))
    model.load_state_dict(payload["state_dict"])
    return model.eval(), info
