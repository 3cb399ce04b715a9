"""Batches made where the model runs: images kept on the GPU, augmented there.

On a GPU the DataLoader path is bound by the CPU: it crops, resizes and normalises every
image in Python (an H100 trained ResNet-18 at 224 px at ~450 images/s that way). Here the
decoded uint8 images go to the device once, in one padded tensor; each batch's crop boxes
come from the same seeded draws as ``AugmentedImages`` (so a trial sees the same crops and
flips on either path), and the whole batch is cropped, resized and flipped by one
``affine_grid`` and one ``grid_sample`` (bilinear, the sample positions of
``interpolate(align_corners=False)``), then normalised: a handful of kernels per batch
where the per-image loop launched four or five per image. Not antialiased: the images are
stored with their short side at the model's input size, so a crop is at most 4/3 of the
output (its long side), where a bilinear resize barely aliases. On a CPU tensor this is
slower than the loop (benchmarks/augment_batch.py: 0.55x at 224 px); it is the GPU path.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

import torch
from torch.nn import functional as F

from trainer.data import AugmentedImages
from trainer.images import IMAGENET_MEAN, IMAGENET_STD

# Above this, the images stay in host memory and go through the DataLoader instead.
MAX_DEVICE_BYTES = 4 * 2**30


def fits_on_device(dataset: AugmentedImages) -> bool:
    """Whether the split, padded to its largest image, fits the device budget."""
    images = dataset.split.images
    if not images:
        return True
    height = max(t.shape[-2] for t in images)
    width = max(t.shape[-1] for t in images)
    return len(images) * images[0].shape[0] * height * width <= MAX_DEVICE_BYTES


class DeviceBatches:
    """(images, labels) batches on ``device`` for the index batches ``sampler`` yields
    (the training sampler), or in order for evaluation (``sampler`` None)."""

    def __init__(
        self,
        dataset: AugmentedImages,
        device: torch.device,
        sampler: Iterable[list[int]] | None = None,
        batch_size: int = 64,
        indices: list[int] | None = None,
    ) -> None:
        self.dataset, self.device, self.sampler = dataset, device, sampler
        self.batch_size = batch_size
        self.indices = indices if indices is not None else list(range(len(dataset)))
        self.sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in dataset.split.images]
        self.images = _padded(dataset.split.images).to(device, non_blocking=True)
        self.labels = torch.tensor(dataset.split.labels, device=device)
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(shape) * 255
        self.std = torch.tensor(IMAGENET_STD, device=device).view(shape) * 255

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.sampler is not None:
            batches: Iterable[list[int]] = self.sampler
        else:
            batches = (
                self.indices[i : i + self.batch_size]
                for i in range(0, len(self.indices), self.batch_size)
            )
        for batch in batches:
            images = self._crops(batch) if self.dataset.train else self._centre(batch)
            yield (images - self.mean) / self.std, self.labels[batch]

    def __len__(self) -> int:
        if self.sampler is not None:
            return len(self.sampler)  # type: ignore[arg-type]
        return -(-len(self.indices) // self.batch_size)

    def _centre(self, batch: list[int]) -> torch.Tensor:
        """Evaluation: each image's centre square (the images are resized so their short
        side is the model's input already), as float 0-255."""
        size = self.dataset.image_size
        out = torch.empty((len(batch), self.images.shape[1], size, size), device=self.device)
        for k, index in enumerate(batch):
            height, width = self.sizes[index]
            top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
            out[k] = self.images[index, :, top : top + size, left : left + size]
        return out

    def _crops(self, batch: list[int]) -> torch.Tensor:
        """Training: the dataset's crop of this epoch for every image, resized to the
        model's input and flipped as its draws say, as float 0-255, in one kernel each."""
        data = self.dataset
        boxes, flips = [], []
        for k, index in enumerate(batch):
            rng = random.Random(hash((data.seed, data.epoch, index)))
            height, width = self.sizes[index]
            top, left, h, w = data.crop_box(height, width, rng)
            boxes.append((k, left, top, left + w, top + h))
            flips.append(bool(data.flip and rng.random() < 0.5))
        size = data.image_size
        height, width = self.images.shape[-2:]
        # Output pixel j's centre comes from left + (j + 0.5) * w / size - 0.5, as
        # interpolate(align_corners=False) of the crop alone places it; as an affine map of
        # grid_sample's normalised coordinates, a flip is its x scale negated.
        theta = torch.tensor(
            [
                [
                    [(-w if flipped else w) / width, 0.0, (2 * left + w) / width - 1],
                    [0.0, h / height, (2 * top + h) / height - 1],
                ]
                for (_, left, top, right, bottom), flipped in zip(boxes, flips, strict=True)
                for w, h in [(right - left, bottom - top)]
            ],
            dtype=torch.float32,
            device=self.device,
        )
        grid = F.affine_grid(theta, [len(batch), 3, size, size], align_corners=False)
        return F.grid_sample(
            self.images[batch].float(),
            grid,
            mode="bilinear",
            padding_mode="border",
            align_corners=False,
        )


def _padded(images: list[torch.Tensor]) -> torch.Tensor:
    """The images in one uint8 tensor, each at the top left of its slot, its last row and
    column repeated into the rest (a crop at its edge then reads what a resize of the image
    alone would, not black)."""
    if not images:
        return torch.zeros((0, 3, 1, 1), dtype=torch.uint8)
    height = max(t.shape[-2] for t in images)
    width = max(t.shape[-1] for t in images)
    if all(t.shape[-2:] == (height, width) for t in images):
        return torch.stack(images)
    out = torch.zeros((len(images), images[0].shape[0], height, width), dtype=torch.uint8)
    for k, image in enumerate(images):
        h, w = image.shape[-2:]
        out[k, :, :h, :w] = image
        out[k, :, :h, w:] = image[:, :, -1:]
        out[k, :, h:, :] = out[k, :, h - 1 : h, :]
    return out
