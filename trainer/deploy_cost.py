"""What a trained model costs to deploy, measured once at the end of a run (``measure:``):
``latency_ms``, the median batch-1 latency of its ONNX export under ONNX Runtime on this
machine's CPU with one thread (what a CPU server or an edge box runs, and the figure that
does not move with the other trials sharing the machine), and ``params_m``, its parameter
count in millions. ONNX Runtime rather than torch: the exported file is what gets deployed,
and it is checked against PyTorch on the way (``export_onnx``)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

WARMUP, REPEATS = 5, 30


def measure(model_dir: Path, names: Iterable[str]) -> dict[str, float]:
    """The asked measures of ``model_dir/model.pt``."""
    from trainer.checkpoint import load_checkpoint

    wanted = set(names)
    model, info = load_checkpoint(model_dir)
    out: dict[str, float] = {}
    if "params_m" in wanted:
        out["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
    if "latency_ms" in wanted:
        out["latency_ms"] = onnx_latency_ms(model_dir, info.image_size)
    return out


def onnx_latency_ms(model_dir: Path, image_size: int) -> float:
    import onnxruntime as ort

    from trainer.onnx_export import export_onnx

    example = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        report = export_onnx(model_dir, Path(tmp) / "model.onnx", images=example)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(report.path), options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        image = example[:1].numpy()
        for _ in range(WARMUP):
            session.run(None, {name: image})
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            session.run(None, {name: image})
            times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1000
