"""Exports a trained model to ONNX and proves the file computes what PyTorch computes.

We use torch's default exporter in 2.14, the dynamo-based one (``torch.export`` + onnxscript):
the TorchScript exporter is deprecated, and the dynamo one gives a single self-contained file
with a symbolic batch dimension. The file is then run by onnxruntime on real validation
images and compared with PyTorch eager; above the tolerance the export fails loudly.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from search_spaces.atomic_files import atomic_path
from trainer.checkpoint import ModelInfo, load_checkpoint
from trainer.data import AugmentedImages, load_image_data
from trainer.errors import TrainerError
from trainer.export_lock import TORCH_STATE

logger = logging.getLogger(__name__)

OPSET = 18
# Logits of a ResNet in fp32 agree to ~1e-5 between the two runtimes; 1e-3 leaves headroom
# for other architectures while still catching a wrong graph (which is off by O(1)).
DEFAULT_TOLERANCE = 1e-3


class OnnxCheckError(TrainerError):
    """The ONNX file's outputs differ from PyTorch's by more than the tolerance."""


@dataclass(frozen=True)
class OnnxReport:
    path: Path
    opset: int
    max_abs_diff: float
    images_checked: int


def export_onnx(
    model_dir: str | Path,
    path: str | Path,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    images: torch.Tensor | None = None,
) -> OnnxReport:
    """Writes ``model_dir/model.pt`` as ONNX to ``path`` and checks it with onnxruntime.

    Args:
        images: normalised images to check on; by default up to 32 validation images of the
            data set the model was trained on.

    Example:
        >>> export_onnx("outputs", "outputs/model.onnx").max_abs_diff < 1e-3  # doctest: +SKIP
        True
    """
    model, info = load_checkpoint(Path(model_dir))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if images is None:
        images = validation_images(info)
    # torch.export keeps process-wide state: no other export and no training in this process
    # while it traces (trainer/export_lock.py says what breaks), nor while the check runs.
    with TORCH_STATE.exclusive():
        return _export_and_check(model, path, images, tolerance)


def _export_and_check(
    model: torch.nn.Module, path: Path, images: torch.Tensor, tolerance: float
) -> OnnxReport:
    example = images[:2]
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings(), _quiet_exporter(), atomic_path(path) as tmp:
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            dynamo=True,
            external_data=False,
            input_names=["image"],
            output_names=["logits"],
            opset_version=OPSET,
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    diff = check_onnx(path, model, images, tolerance)
    logger.info("exported %s (opset %d), max abs diff %.3g", path, OPSET, diff)
    return OnnxReport(path, OPSET, diff, len(images))


def check_onnx(
    path: Path, model: torch.nn.Module, images: torch.Tensor, tolerance: float = DEFAULT_TOLERANCE
) -> float:
    """Max abs difference of logits between onnxruntime and PyTorch; raises above tolerance."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        got = session.run(None, {name: images.numpy()})[0]
    except Exception as exc:
        raise OnnxCheckError(f"onnxruntime cannot run {path}: {exc}") from None
    with torch.inference_mode():
        expected = model.eval()(images).numpy()
    if got.shape != expected.shape:
        raise OnnxCheckError(f"{path} gives outputs of shape {got.shape}, PyTorch {expected.shape}")
    diff = float(np.max(np.abs(got - expected)))
    if not diff <= tolerance:
        raise OnnxCheckError(
            f"{path} disagrees with PyTorch: max abs difference {diff:.3g} > {tolerance:g}"
        )
    return diff


def validation_images(info: ModelInfo, limit: int = 32) -> torch.Tensor:
    """Up to ``limit`` preprocessed validation images of the data the model was trained on."""
    data = load_image_data(info.data, info.image_size)
    val = AugmentedImages(data.val, info.image_size, train=False, natural=data.natural_augment)
    step = max(len(val) // limit, 1)
    return torch.stack([val[i][0] for i in range(0, len(val), step)][:limit])


class _quiet_exporter:
    """The dynamo exporter prints progress to stdout; a sweep's log has no use for it."""

    def __enter__(self) -> None:
        self._level = logging.getLogger("torch.onnx").level
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("torch.onnx").setLevel(self._level)
