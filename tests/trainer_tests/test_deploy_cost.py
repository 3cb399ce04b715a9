"""``measure: [latency_ms, params_m]``: the built-in trainer reports what its model costs to
deploy, measured on the ONNX file ONNX Runtime runs."""

from __future__ import annotations

import pytest

from tests.threads import TRAIN_THREADS
from trainer.checkpoint import load_checkpoint
from trainer.errors import TrainerInputError
from trainer.fit import fit
from trainer.options import TrainConfig

TINY = {
    "data": "digits",
    "image_size": 16,
    "batch_size": 64,
    "num_epochs": 1,
    "threads": TRAIN_THREADS,
    "device": "cpu",
}


@pytest.mark.slow
def test_the_trainer_measures_latency_and_parameters_of_its_model(tmp_path):
    config = TrainConfig.from_params(
        {
            **TINY,
            "model": "mobilenet_v3_small",
            "measure": ["latency_ms", "params_m"],
            "output_dir": str(tmp_path),
        }
    )
    result = fit(config)
    model, _ = load_checkpoint(tmp_path)
    assert result["params_m"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)
    assert 0 < result["latency_ms"] < 1000
    assert not list(tmp_path.glob("*.onnx"))  # measured on a temporary export


def test_an_unknown_measure_is_refused_naming_it():
    with pytest.raises(TrainerInputError, match="measure: expected a list of latency_ms, params_m"):
        TrainConfig.from_params({**TINY, "measure": ["latency_ms", "flops"]})
