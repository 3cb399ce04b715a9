"""bf16 on CPU only when asked for, and only where the CPU has it natively."""

from __future__ import annotations

import pytest
import torch

from trainer import fit as fit_module
from trainer.errors import TrainerError
from trainer.options import TrainConfig

CPU = torch.device("cpu")


def test_cpu_training_stays_fp32_unless_asked() -> None:
    precision, scaler = fit_module._precision(TrainConfig(), CPU)
    assert precision.autocast_dtype is None and scaler is None


def test_cpu_bf16_autocasts_where_the_cpu_has_it(monkeypatch) -> None:
    monkeypatch.setattr(fit_module, "cpu_has_bf16", lambda: True)
    precision, _ = fit_module._precision(TrainConfig(cpu_bf16=True), CPU)
    assert precision.autocast_dtype == torch.bfloat16
    with precision.autocast():
        out = torch.nn.Linear(4, 2)(torch.ones(1, 4))
    assert out.dtype == torch.bfloat16


def test_cpu_bf16_is_refused_where_it_would_be_emulated(monkeypatch) -> None:
    monkeypatch.setattr(fit_module, "cpu_has_bf16", lambda: False)
    with pytest.raises(TrainerError, match="cpu_bf16: this CPU has no native bf16"):
        fit_module._precision(TrainConfig(cpu_bf16=True), CPU)


def test_fp32_cpu_uses_channels_last_on_large_images_only() -> None:
    small, _ = fit_module._precision(TrainConfig(image_size=64), CPU)
    large, _ = fit_module._precision(TrainConfig(image_size=224), CPU)
    assert not small.channels_last and large.channels_last
