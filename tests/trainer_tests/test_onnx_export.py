from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from tests.threads import TRAIN_THREADS
from trainer.checkpoint import load_checkpoint
from trainer.fit import fit
from trainer.onnx_export import OnnxCheckError, check_onnx, export_onnx, validation_images
from trainer.options import TrainConfig


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    fit(
        TrainConfig(
            data="digits",
            image_size=16,
            batch_size=64,
            num_epochs=1,
            learning_rate=0.05,
            threads=TRAIN_THREADS,
            output_dir=str(out),
        )
    )
    return out


@pytest.mark.slow
def test_export_matches_pytorch_on_real_validation_images(model_dir):
    report = export_onnx(model_dir, model_dir / "model.onnx")
    assert report.max_abs_diff < 1e-3 and report.images_checked == 32
    assert report.opset == 18
    model = onnx.load(str(report.path))
    assert model.opset_import[0].version == 18
    # The batch axis is symbolic: one file serves batch 1 and batch 5.
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    torch_model, info = load_checkpoint(model_dir)
    images = validation_images(info, limit=5)
    for batch in (images[:1], images):
        got = session.run(None, {"image": batch.numpy()})[0]
        with torch.inference_mode():
            expected = torch_model(batch).numpy()
        assert np.max(np.abs(got - expected)) < 1e-3


@pytest.mark.slow
def test_a_tampered_file_fails_loudly(model_dir, tmp_path):
    report = export_onnx(model_dir, tmp_path / "model.onnx")
    model = onnx.load(str(report.path))
    weights = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    array = numpy_helper.to_array(weights).copy()
    array *= 1.5
    weights.CopyFrom(numpy_helper.from_array(array, weights.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(model, str(tampered))
    torch_model, info = load_checkpoint(model_dir)
    with pytest.raises(OnnxCheckError, match="disagrees with PyTorch"):
        check_onnx(tampered, torch_model, validation_images(info, limit=4))
