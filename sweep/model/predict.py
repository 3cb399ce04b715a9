"""Classifies image files with a registered model's ONNX file (no PyTorch model needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.errors import SweepInputError
from sweep.model.registry import ModelRegistry
from sweep.records import layout


@dataclass(frozen=True)
class Prediction:
    path: Path
    label: str
    probability: float


class OnnxClassifier:
    """A model folder (model.onnx + card.json) ready to classify images.

    Example:
        >>> clf = load_model("digits-resnet18")                 # doctest: +SKIP
        >>> clf.predict(["seven.png"])[0].label                 # doctest: +SKIP
        '7'
    """

    def __init__(self, folder: Path) -> None:
        import onnxruntime as ort

        card_file, onnx_file = folder / layout.CARD, folder / layout.ONNX
        if not card_file.exists() or not onnx_file.exists():
            raise SweepInputError(f"{folder} has no model.onnx and card.json")
        try:
            model = json.loads(card_file.read_text())["model"]
            self.classes: list[str] = [str(c) for c in model["classes"]]
            self.image_size = int(model["image_size"])
            self.mean = [float(v) for v in model["mean"]]
            self.std = [float(v) for v in model["std"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise SweepInputError(
                f"{card_file} is damaged: it is not a model card with "
                f"classes, image_size, mean and std ({type(exc).__name__}: "
                f"{exc})"
            ) from None
        try:
            self.session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own error types, one per kind of damage
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SweepInputError(
                f"{onnx_file} is damaged: onnxruntime cannot load it ({first})"
            ) from None

    def preprocess(self, paths: list[Path]) -> np.ndarray:
        """The model's input batch: the pixels validation saw (trainer.images), no torch."""
        from trainer.errors import DataError
        from trainer.images import eval_array, read_image, resize_size

        images = []
        for path in paths:
            if not path.is_file():
                raise SweepInputError(f"{path}: no such image file")
            try:
                decoded = read_image(path, resize_size(self.image_size))
            except DataError as exc:
                raise SweepInputError(str(exc)) from None
            images.append(eval_array(decoded, self.image_size, self.mean, self.std))
        return np.stack(images)

    def predict(self, paths: list[str | Path]) -> list[Prediction]:
        files = [Path(p) for p in paths]
        logits = self.session.run(
            None, {self.session.get_inputs()[0].name: self.preprocess(files)}
        )[0]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
        return [
            Prediction(path, self.classes[int(p.argmax())], float(p.max()))
            for path, p in zip(files, probs, strict=True)
        ]


def load_model(ref: str, registry_root: str | Path | None = None) -> OnnxClassifier:
    """A registered model (``NAME`` or ``NAME:VERSION``) or a model folder, ready to predict."""
    if Path(ref).is_dir():
        return OnnxClassifier(Path(ref))
    return OnnxClassifier(ModelRegistry(registry_root).get(ref).path)
