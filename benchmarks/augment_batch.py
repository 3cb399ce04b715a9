"""The training augmentation step of the GPU path (crop, resize, flip a batch of images kept
on the device), measured on CPU tensors: per image, as it was (a crop, an antialiased
``interpolate`` and a flip for each image: a few small kernels per image), beside the batch
as ``DeviceBatches`` does it now (one ``affine_grid`` and one ``grid_sample`` a batch). Same
boxes, same flips. On a GPU the per-image loop is bound by kernel launches, so the gap
there is larger than here; ``benchmarks/gpu.py`` measures the whole trainer on one.

Usage: python benchmarks/augment_batch.py [--size 224] [--batch 128] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from trainer.data import AugmentedImages, Split  # noqa: E402
from trainer.device_batches import DeviceBatches  # noqa: E402


def per_image(batches: DeviceBatches, batch: list[int]) -> torch.Tensor:
    """The step before: one crop, one interpolate and maybe one flip per image."""
    data, out = batches.dataset, []
    for index in batch:
        height, width = batches.sizes[index]
        rng = random.Random(hash((data.seed, data.epoch, index)))
        top, left, h, w = data.crop_box(height, width, rng)
        crop = batches.images[index, :, top : top + h, left : left + w].float()[None]
        one = F.interpolate(
            crop,
            size=(data.image_size, data.image_size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )[0]
        if data.flip and rng.random() < 0.5:
            one = one.flip(-1)
        out.append(one)
    return torch.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    # Photos resized so their short side is the input size (what the trainer keeps).
    shapes = [(args.size, args.size * 4 // 3), (args.size * 4 // 3, args.size)]
    images = [
        torch.randint(0, 256, (3, *shapes[i % 2]), dtype=torch.uint8) for i in range(args.batch * 2)
    ]
    dataset = AugmentedImages(
        Split(images, [0] * len(images)), args.size, train=True, natural=True, seed=1
    )
    batches = DeviceBatches(dataset, torch.device("cpu"), sampler=[])
    batch = list(range(args.batch))
    times: dict[str, list[float]] = {"per image (before)": [], "one batch (now)": []}
    for _ in range(args.repeat):
        for name, step in (
            ("per image (before)", lambda: per_image(batches, batch)),
            ("one batch (now)", lambda: batches._crops(batch)),
        ):
            started = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - started)
    print(
        f"crop + resize + flip of {args.batch} images to {args.size} px on "
        f"{torch.get_num_threads()} CPU threads, median of {args.repeat}:"
    )
    base = statistics.median(times["per image (before)"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:<20} {median * 1000:8.1f} ms a batch  "
            f"{args.batch / median:8.0f} images/s  ({base / median:.2f}x)"
        )


if __name__ == "__main__":
    main()
