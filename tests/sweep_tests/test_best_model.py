"""The end of a sweep: best/ with a checked ONNX file and a card, registered, predicting."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.cli import main
from sweep.model.predict import load_model
from sweep.model.registry import ModelRegistry
from trainer.checkpoint import load_checkpoint
from trainer.data import AugmentedImages, load_image_data

pytestmark = pytest.mark.slow  # trains a small sweep to the end once for the whole module


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from tests.conftest import make_image_folder

    tmp = tmp_path_factory.mktemp("best")
    data = make_image_folder(tmp / "fowl_data")
    sweep = Sweep(
        name="fowl",
        root=tmp / "sweeps",
        backend=InProcessBackend(),
        search_space={"learning_rate": {"type": "choice", "values": [0.01, 0.05]}},
        trainer_args={
            "data": str(data),
            "image_size": 16,
            "batch_size": 8,
            "num_epochs": 2,
            "threads": 1,
            "freeze": "backbone",
        },
        sampling_algorithm="grid",
        limits={"max_total_trials": 2, "max_concurrent_trials": 1},
        register={"model_name": "pt-dnn", "root": str(tmp / "models")},
    )
    return tmp, data, sweep, sweep.run()


def test_best_folder_holds_model_checked_onnx_and_card(finished):
    tmp, data, _, result = finished
    best = result.best_dir
    assert best == result.sweep_dir / "best"
    assert {p.name for p in best.iterdir()} == {"model.pt", "model.onnx", "card.json"}
    card = json.loads((best / "card.json").read_text())
    assert card["sweep"] == "fowl" and card["trial"] == result.best.number
    assert card["objective"]["value"] == result.best.value
    assert card["params"] == dict(result.best.params)
    assert [h["epoch"] for h in card["history"]] == [0, 1]
    assert card["data"]["source"] == str(data)
    assert card["data"]["classes"] == ["chickens", "turkeys"]
    assert card["data"]["fingerprint"].startswith("sha256:")
    assert card["onnx"]["max_abs_diff"] < 1e-3
    assert {"torch", "optuna", "onnxruntime", "python"} <= set(card["versions"])
    assert (result.sweep_dir / "trials.csv").read_text().startswith("number,state")


def test_registered_once_even_when_resumed(finished):
    tmp, _, sweep, result = finished
    assert result.registered == "pt-dnn:1"
    again = sweep.resume()
    assert again.registered == "pt-dnn:1"
    assert [v.version for v in ModelRegistry(tmp / "models").versions("pt-dnn")] == [1]


def test_predict_agrees_with_pytorch_on_real_validation_images(finished):
    tmp, data, _, result = finished
    images = sorted((data / "val").rglob("*.*"))
    predictions = load_model("pt-dnn", tmp / "models").predict(images)
    model, info = load_checkpoint(result.best_dir)
    decoded = load_image_data(str(data), info.image_size)
    val = AugmentedImages(decoded.val, info.image_size, train=False, natural=True)
    with torch.inference_mode():
        probs = torch.softmax(model(torch.stack([val[i][0] for i in range(len(val))])), 1)
    # load_image_data walks classes then sorted files: the same order as `images`.
    for prediction, expected in zip(predictions, probs.numpy(), strict=True):
        assert prediction.label == info.classes[int(expected.argmax())]
        assert prediction.probability == pytest.approx(float(expected.max()), abs=1e-4)
    assert np.isfinite([p.probability for p in predictions]).all()


def test_models_cli_lists_shows_downloads_and_predicts(finished, capsys, tmp_path):
    tmp, data, _, _ = finished
    registry = str(tmp / "models")
    assert main(["models", "list", "--registry", registry]) == 0
    assert "pt-dnn" in capsys.readouterr().out
    assert main(["models", "show", "pt-dnn:1", "--registry", registry]) == 0
    out = capsys.readouterr().out
    assert "from sweep fowl" in out and "learning_rate" in out
    assert main(["models", "download", "pt-dnn", str(tmp_path / "dl"), "--registry", registry]) == 0
    assert (tmp_path / "dl" / "model.onnx").is_file()
    capsys.readouterr()
    image = next((data / "val" / "turkeys").iterdir())
    assert main(["models", "predict", "pt-dnn", str(image), "--registry", registry]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}: ") and line.endswith("%)")
    assert (
        main(["models", "predict", "pt-dnn", str(tmp_path / "nope.png"), "--registry", registry])
        == 2
    )


def test_export_command_writes_a_checked_onnx(finished, capsys, tmp_path):
    tmp, _, _, _ = finished
    out = tmp_path / "exported.onnx"
    assert main(["export", "fowl", "--onnx", str(out), "--root", str(tmp / "sweeps")]) == 0
    assert out.is_file() and "max abs diff" in capsys.readouterr().out


def test_predict_imports_no_torch(finished):
    import subprocess
    import sys
    from pathlib import Path

    tmp, data, _, _ = finished
    image = next((data / "val" / "turkeys").iterdir())
    probe = (
        f"from sweep.cli import main; code = main(['models', 'predict', 'pt-dnn', "
        f"{str(image)!r}, '--registry', {str(tmp / 'models')!r}])\n"
        "import sys; print('LOADED:' + ' '.join(m for m in ('torch', 'torchvision', "
        "'optuna', 'pandas', 'ray') if m in sys.modules), code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    ).stdout
    assert out.splitlines()[-1] == "LOADED: 0", out
