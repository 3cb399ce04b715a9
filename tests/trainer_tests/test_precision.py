"""bf16 on CPU: when asked (``auto``: where the CPU has AMX), never emulated."""

from __future__ import annotations

import pytest
import torch

from trainer import fit as fit_module
from trainer.errors import TrainerError
from trainer.options import TrainConfig

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("amx", "setting", "bf16"),
    [
        (True, "auto", True),
        (False, "auto", False),
        (True, "false", False),
    ],
)
def test_cpu_bf16_auto_where_the_cpu_has_amx(monkeypatch, amx, setting, bf16) -> None:
    monkeypatch.setattr(fit_module, "cpu_has_amx", lambda: amx)
    monkeypatch.setattr(fit_module, "cpu_has_bf16", lambda: amx)
    precision, scaler = fit_module._precision(TrainConfig(cpu_bf16=setting), CPU)
    assert (precision.autocast_dtype == torch.bfloat16) == bf16 and scaler is None


def test_cpu_bf16_autocasts_where_the_cpu_has_it(monkeypatch) -> None:
    monkeypatch.setattr(fit_module, "cpu_has_bf16", lambda: True)
    precision, _ = fit_module._precision(TrainConfig(cpu_bf16="true"), CPU)
    assert precision.autocast_dtype == torch.bfloat16
    with precision.autocast():
        out = torch.nn.Linear(4, 2)(torch.ones(1, 4))
    assert out.dtype == torch.bfloat16


def test_cpu_bf16_is_refused_where_it_would_be_emulated(monkeypatch) -> None:
    monkeypatch.setattr(fit_module, "cpu_has_bf16", lambda: False)
    with pytest.raises(TrainerError, match="cpu_bf16: this CPU has no native bf16"):
        fit_module._precision(TrainConfig(cpu_bf16="true"), CPU)


def test_cpu_training_stays_fp32_unless_asked() -> None:
    precision, scaler = fit_module._precision(TrainConfig(), CPU)
    assert precision.autocast_dtype is None and scaler is None


def test_a_sweep_file_s_true_and_false_are_read(tmp_path) -> None:
    assert TrainConfig.from_params({"cpu_bf16": True}).cpu_bf16 == "true"
    assert TrainConfig.from_params({"cpu_bf16": False}).cpu_bf16 == "false"


def test_fp32_cpu_uses_channels_last_on_large_images_only() -> None:
    small, _ = fit_module._precision(TrainConfig(image_size=64, cpu_bf16="false"), CPU)
    large, _ = fit_module._precision(TrainConfig(image_size=224, cpu_bf16="false"), CPU)
    assert not small.channels_last and large.channels_last
