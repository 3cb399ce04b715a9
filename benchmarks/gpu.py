"""The GPU benchmark, one command: trainer throughput, trials packed on one card, ONNX Runtime.

1. Training images/s of ``trainer.fit`` against the plain tutorial loop (ResNet-18, 224 px,
   batch 128; the trainer with its GPU defaults: bf16 autocast, channels_last, images
   decoded once and kept on the GPU, augmented there), both from
   benchmarks/trainer_throughput.py, in this one process.
2. Trials per hour on one GPU: the same 16 small trials (``python -m trainer`` on the digits
   set) one at a time (``gpus_per_trial: 1``) and four at a time (``gpus_per_trial: 0.25``:
   what Ray does with fractional GPUs is set CUDA_VISIBLE_DEVICES and start them together;
   that placement is tested on CPU in tests/sweep_tests/test_gpu_packing.py).
3. Inference latency of the exported model: PyTorch on the GPU against ONNX Runtime with its
   CUDA provider where the installed onnxruntime has one (else its CPU provider, said so).

Needs only torch, torchvision, numpy, Pillow, scikit-learn and onnxruntime (no Ray, no
Optuna), so it runs on a bare GPU image. About 4 minutes on one H100.
Usage: python benchmarks/gpu.py [--trials 16] [--smoke]   (--smoke: tiny sizes, CPU is fine)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch  # noqa: E402
from trainer_throughput import latency, plain_loop, trainer_fit, write_digits  # noqa: E402


def throughput(root: Path, image_size: int, batch: int, epochs: int, out: Path) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    plain = plain_loop(root, epochs, image_size, batch, device)
    ours = trainer_fit(root, epochs, image_size, batch, out)
    print(f"1. training, resnet18 {image_size} px, batch {batch}, {epochs} epochs, {device}:")
    print(f"   plain tutorial loop  {plain:9.1f} images/s")
    print(f"   trainer.fit          {ours:9.1f} images/s  ({ours / plain:.2f}x)", flush=True)


def trials_per_hour(trials: int, at_once: int, args: list[str], threads: int) -> float:
    """Runs ``trials`` trainer processes, ``at_once`` at a time on the same card(s)."""
    started = time.perf_counter()
    pending = list(range(trials))
    running: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        while pending or running:
            while pending and len(running) < at_once:
                i = pending.pop(0)
                lr = 0.01 * (1 + i % 4)
                running.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "trainer",
                            *args,
                            "--learning_rate",
                            str(lr),
                            "--threads",
                            str(threads),
                            "--output_dir",
                            f"{tmp}/t{i}",
                        ],
                        cwd=ROOT,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )
                )
            time.sleep(0.05)
            for proc in [p for p in running if p.poll() is not None]:
                running.remove(proc)
                if proc.returncode:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise SystemExit(f"a trial failed: {err[-2000:]}")
    return trials / (time.perf_counter() - started) * 3600


def packing(trials: int, image_size: int, epochs: int) -> None:
    args = [
        "--data",
        "digits",
        "--image_size",
        str(image_size),
        "--num_epochs",
        str(epochs),
        "--batch_size",
        "64",
    ]
    cores = os.cpu_count() or 2
    one = trials_per_hour(trials, 1, args, threads=max(cores // 2, 1))
    four = trials_per_hour(trials, 4, args, threads=max(cores // 4, 1))
    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"2. {trials} trials (digits, {image_size} px, {epochs} epochs) on {where}:")
    print(f"   gpus_per_trial 1     {one:9.0f} trials/hour")
    print(f"   gpus_per_trial 0.25  {four:9.0f} trials/hour  ({four / one:.2f}x)", flush=True)


def inference(model_dir: Path, image_size: int) -> None:
    import numpy as np
    import onnxruntime as ort

    from trainer.checkpoint import load_checkpoint
    from trainer.onnx_export import export_onnx

    report = export_onnx(model_dir, model_dir / "model.onnx")
    model, _ = load_checkpoint(model_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    providers = ["CUDAExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(report.path), providers=providers)
    print(
        f"3. inference, resnet18 {image_size} px: PyTorch on {device}, ONNX Runtime "
        f"{ort.__version__} with {providers[0]}"
        + ("" if cuda else " (this onnxruntime has no CUDA provider)")
    )
    for batch in (1, 64):
        x = torch.randn(batch, 3, image_size, image_size)
        xd, xn = x.to(device), x.numpy()

        def run_torch(xd: torch.Tensor = xd) -> None:
            with torch.inference_mode():
                model(xd)
            if device.type == "cuda":
                torch.cuda.synchronize()

        def run_ort(xn: np.ndarray = xn) -> None:
            session.run(None, {"image": xn})

        t_ms, o_ms = latency(run_torch, 20), latency(run_ort, 20)
        print(
            f"   batch {batch:3d}: pytorch {t_ms:8.2f} ms, onnxruntime {o_ms:8.2f} ms "
            f"({o_ms / t_ms:.2f}x)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument(
        "--parts",
        type=int,
        nargs="*",
        default=[1, 2, 3],
        help="which of the three to run (3 needs 1's model)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes: checks the script end to end (CPU is fine)",
    )
    args = parser.parse_args()
    image_size, batch, epochs = (32, 32, 1) if args.smoke else (224, 128, 2)
    trials = 4 if args.smoke else args.trials
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "digits"
        write_digits(root)
        if 1 in args.parts:
            throughput(root, image_size, batch, epochs, Path(tmp) / "out")
        if 2 in args.parts:
            packing(trials, 16 if args.smoke else 64, 1 if args.smoke else 3)
        if 3 in args.parts and 1 in args.parts:
            inference(Path(tmp) / "out", image_size)
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
