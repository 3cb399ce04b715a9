"""Trainer throughput vs a plain tutorial-style loop, and ONNX Runtime vs PyTorch latency.

Both training paths use the same images (the digits set written out as PNG files), the same
model, batch size, image size and thread count, in one process run, one after the other:

- plain: torchvision's ImageFolder + PIL transforms + DataLoader, the transfer-learning
  tutorial's way (decodes and augments every image from disk every epoch);
- trainer: ``trainer.fit`` on the same folder (decoded once, in-memory, same augmentations);
  on a CPU with native bf16 (AMX, AVX512-BF16), once more with ``cpu_bf16``.

Usage: python benchmarks/trainer_throughput.py [--epochs 3] [--image-size 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision import transforms


def write_digits(root: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for i, (image, label) in enumerate(zip(bunch.images, bunch.target, strict=True)):
        split = "val" if i % 5 == 0 else "train"
        folder = root / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).convert("RGB").resize((32, 32)).save(folder / f"{i}.png")


def plain_loop(root: Path, epochs: int, image_size: int, batch: int, device: torch.device) -> float:
    """The tutorial's loop; returns training images per second over all epochs."""
    norm = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    train_tf = transforms.Compose(
        [
            transforms.RandomResizedCrop(image_size),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            norm,
        ]
    )
    val_tf = transforms.Compose(
        [
            transforms.Resize(int(image_size * 256 / 224)),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            norm,
        ]
    )
    train = torchvision.datasets.ImageFolder(str(root / "train"), train_tf)
    val = torchvision.datasets.ImageFolder(str(root / "val"), val_tf)
    loaders = {
        "train": torch.utils.data.DataLoader(train, batch_size=batch, shuffle=True),
        "val": torch.utils.data.DataLoader(val, batch_size=batch),
    }
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Linear(model.fc.in_features, len(train.classes))
    model = model.to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)
    seen, started = 0, time.perf_counter()
    for _ in range(epochs):
        for phase in ("train", "val"):
            model.train(phase == "train")
            for inputs, labels in loaders[phase]:
                inputs, labels = inputs.to(device), labels.to(device)
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                        seen += inputs.size(0)
        scheduler.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - started)


def trainer_fit(
    root: Path, epochs: int, image_size: int, batch: int, out: Path, cpu_bf16: bool = False
) -> float:
    from trainer.data import load_image_data
    from trainer.fit import fit
    from trainer.options import TrainConfig

    started = time.perf_counter()
    data = load_image_data(str(root), image_size)  # decoding is part of the cost
    seen = 0

    def count(epoch: int, metrics: dict[str, float]) -> bool:
        return False

    config = TrainConfig(
        data=str(root),
        image_size=image_size,
        batch_size=batch,
        num_epochs=epochs,
        learning_rate=0.01,
        output_dir=str(out),
        cpu_bf16="true" if cpu_bf16 else "false",
    )
    fit(config, count, data=data)
    seen = (len(data.train.labels) // batch) * batch * epochs
    return seen / (time.perf_counter() - started)


def latency(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1000


def onnx_vs_torch(model_dir: Path, image_size: int) -> list[tuple[int, float, float]]:
    import onnxruntime as ort

    from trainer.checkpoint import load_checkpoint
    from trainer.onnx_export import export_onnx

    report = export_onnx(model_dir, model_dir / "model.onnx")
    model, _ = load_checkpoint(model_dir)
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    rows = []
    for batch in (1, 32):
        x = torch.randn(batch, 3, image_size, image_size)
        xn = x.numpy()

        def run_torch(x: torch.Tensor = x) -> None:
            with torch.inference_mode():
                model(x)

        def run_ort(xn: np.ndarray = xn) -> None:
            session.run(None, {"image": xn})

        rows.append((batch, latency(run_torch, 30), latency(run_ort, 30)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "digits"
        write_digits(root)
        print(
            f"device {device}, threads {args.threads}, resnet18, image {args.image_size}, "
            f"batch {args.batch}, {args.epochs} epochs, 1437 training images"
        )
        plain = plain_loop(root, args.epochs, args.image_size, args.batch, device)
        ours = trainer_fit(root, args.epochs, args.image_size, args.batch, Path(tmp) / "out")
        print(f"plain tutorial loop : {plain:8.1f} images/s")
        print(f"trainer.fit         : {ours:8.1f} images/s   ({ours / plain:.2f}x)")
        from trainer.fit import cpu_has_bf16

        if device.type == "cpu" and cpu_has_bf16():
            bf16 = trainer_fit(
                root,
                args.epochs,
                args.image_size,
                args.batch,
                Path(tmp) / "out-bf16",
                cpu_bf16=True,
            )
            print(f"trainer.fit cpu_bf16: {bf16:8.1f} images/s   ({bf16 / plain:.2f}x)")
        for batch, torch_ms, ort_ms in onnx_vs_torch(Path(tmp) / "out", args.image_size):
            print(
                f"inference batch {batch:2d}: pytorch {torch_ms:7.2f} ms, onnxruntime "
                f"{ort_ms:7.2f} ms ({ort_ms / torch_ms:.2f}x)"
            )


if __name__ == "__main__":
    main()
