"""``model.pt``: a state_dict plus what it takes to rebuild the model and preprocess images;
``state.pt``: what it takes to continue a training run (``save_state`` / ``load_state``)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from search_spaces.atomic_files import atomic_path
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
    save_atomically(payload, path)


MODEL_FILE = "model.pt"
"""What ``fit`` saves its best model as, in its output_dir."""


def load_checkpoint(path: Path) -> tuple[nn.Module, ModelInfo]:
    """Rebuilds the model saved at ``path`` (a model.pt or the folder holding one), in eval mode."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise TrainerError(f"no model at {path}")
    payload = _load_tagged(path, FORMAT, "model file", "a model.pt written by this trainer")
    info = ModelInfo(
        arch=payload["arch"],
        classes=list(payload["classes"]),
        image_size=int(payload["image_size"]),
        data=str(payload["data"]),
        mean=tuple(payload["mean"]),
        std=tuple(payload["std"]),
    )
    model = build_model(info.arch, len(info.classes))
    model.load_state_dict(payload["state_dict"])
    return model.eval(), info


# -- training state: what it takes to continue a run where it stopped --------------------------

STATE_FORMAT = "sweep.trainer.state/1"
STATE_FILE = "state.pt"


def save_state(
    folder: str | Path,
    epoch: int,
    *,
    extra: dict[str, Any] | None = None,
    durable: bool = False,
    **objects: Any,
) -> None:
    """Saves a run's state after ``epoch`` into ``folder``, atomically.

    ``objects`` are anything with ``state_dict()`` (model, optimizer, scheduler, grad
    scaler); torch's and Python's random states are saved too, and ``extra`` holds plain
    values (best so far, …). Call it before reporting the epoch: a sweep keeps what the
    folder holds when the report is made. The file is not flushed to disk (the sweep's copy
    is the durable one, and a flush of a model's size costs the epoch a tenth of a second
    or more); ``durable=True`` flushes it, for a folder that is the only copy.

    Example:
        >>> save_state(params["checkpoint_dir"], epoch, model=model, optimizer=opt,
        ...            extra={"best": best})                           # doctest: +SKIP
    """
    payload: dict[str, Any] = {
        "format": STATE_FORMAT,
        "epoch": int(epoch),
        "states": {name: obj.state_dict() for name, obj in objects.items()},
        "rng": _rng_state(),
        "extra": dict(extra or {}),
    }
    save_atomically(payload, Path(folder) / STATE_FILE, durable=durable)


def load_state(folder: str | Path | None, **objects: Any) -> tuple[int, dict[str, Any]]:
    """Restores what :func:`save_state` saved into ``objects``; returns the epoch to run
    next and ``extra``. ``(0, {})`` when the folder holds no state: start afresh.

    Example:
        >>> start, extra = load_state(params.get("checkpoint_dir"), model=model,
        ...                           optimizer=opt)                     # doctest: +SKIP
        >>> for epoch in range(start, params["num_epochs"]): ...         # doctest: +SKIP
    """
    path = Path(folder) / STATE_FILE if folder else None
    if path is None or not path.is_file():
        return 0, {}
    payload = _load_tagged(
        path, STATE_FORMAT, "training state", "a training state written by save_state"
    )
    for name, obj in objects.items():
        if name not in payload["states"]:
            raise TrainerError(
                f"{path} has no state for {name!r} (it has: {', '.join(payload['states'])})"
            )
        obj.load_state_dict(payload["states"][name])
    _set_rng_state(payload["rng"])
    return int(payload["epoch"]) + 1, dict(payload["extra"])


def _load_tagged(path: Path, tag: str, kind: str, expected: str) -> dict[str, Any]:
    """A dict saved by torch, read tensors-only, whose ``format`` is ``tag``."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainerError(f"{path} is not a readable {kind}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != tag:
        raise TrainerError(f"{path} is not {expected}")
    return payload


def save_atomically(payload: Any, path: Path, *, durable: bool = True) -> None:
    """torch.save to ``path`` through a temporary file and a rename: a reader (or a sweep
    copying the folder) never sees half a file; ``durable``: flushed to disk first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, durable=durable) as tmp, _without_crc32():
        torch.save(payload, tmp)


_CRC32_OPTION = threading.Lock()


@contextlib.contextmanager
def _without_crc32() -> Iterator[None]:
    """torch.save computes a CRC-32 of every tensor's bytes (a fifth of saving ResNet-18's
    90 MB training state: 0.02-0.03 s on an idle 2-CPU machine, 0.07-0.15 s while the
    other core is busy, every epoch), and torch.load never checks it: a flipped byte loads
    silently with or without one. Our saves skip it; the process's own setting is put back
    (under a lock: it is process-wide)."""
    with _CRC32_OPTION:
        before = torch.serialization.get_crc32_options()
        torch.serialization.set_crc32_options(False)
        try:
            yield
        finally:
            torch.serialization.set_crc32_options(before)


def _rng_state() -> dict[str, Any]:
    import random

    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _plain(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import random

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if (
        "cuda" in state
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: Any) -> Any:
    # weights_only loading takes lists, not tuples nested as Python's random state has them.
    return [_plain(v) for v in value] if isinstance(value, tuple) else value
