"""Batches made where the model runs: images kept on the GPU, augmented there.

On a GPU the DataLoader path is bound by the CPU: it crops, resizes and normalises every
image in Python (an H100 trained ResNet-18 at 224 px at ~450 images/s that way). Here the
decoded uint8 images go to the device once; each batch's crops come from the same seeded
draws as ``AugmentedImages`` (so a trial sees the same crops on either path), and are
resized, flipped and normalised on the device.
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
    return sum(t.numel() for t in dataset.split.images) <= MAX_DEVICE_BYTES


class DeviceBatches:
    """(images, labels) batches on ``device`` for the index batches ``sampler`` yields
    (the training sampler), or in order for evaluation (``sampler`` None)."""

    def __init__(self, dataset: AugmentedImages, device: torch.device,
                 sampler: Iterable[list[int]] | None = None, batch_size: int = 64,
                 indices: list[int] | None = None) -> None:
        self.dataset, self.device, self.sampler = dataset, device, sampler
        self.batch_size = batch_size
        self.indices = indices if indices is not None else list(range(len(dataset)))
        self.images = [t.to(device, non_blocking=True) for t in dataset.split.images]
        self.labels = torch.tensor(dataset.split.labels, device=device)
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(shape) * 255
        self.std = torch.tensor(IMAGENET_STD, device=device).view(shape) * 255

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.sampler is not None:
            batches: Iterable[list[int]] = self.sampler
        else:
            batches = (self.indices[i:i + self.batch_size]
                       for i in range(0, len(self.indices), self.batch_size))
        for batch in batches:
            images = torch.stack([self._one(i) for i in batch])
            yield (images - self.mean) / self.std, self.labels[batch]

    def __len__(self) -> int:
        if self.sampler is not None:
            return len(self.sampler)  # type: ignore[arg-type]
        return -(-len(self.indices) // self.batch_size)

    def _one(self, index: int) -> torch.Tensor:
        """One image as float 3 x S x S (0-255): the dataset's crop for this epoch."""
        data, image = self.dataset, self.images[index]
        size = data.image_size
        if not data.train:
            height, width = image.shape[-2:]
            top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
            return image[:, top:top + size, left:left + size].float()
        rng = random.Random(hash((data.seed, data.epoch, index)))
        top, left, h, w = data._crop_box(image, rng)
        crop = image[:, top:top + h, left:left + w].float()[None]
        out = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True,
                            align_corners=False)[0]
        if data.flip and rng.random() < 0.5:
            out = out.flip(-1)
        return out
