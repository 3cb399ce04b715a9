"""Image data sets decoded once into memory, with per-sample augmentation that is reproducible.

Two sources: an image folder (``train/`` and ``val/`` with one sub-folder per class, the Azure
sample's fowl_data layout) and the built-in ``digits`` set (scikit-learn's bundled 8x8 scans of
handwritten digits, so no download is ever needed). Small data sets are decoded and resized
once; epochs after the first never touch the disk.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from trainer.digits import digits_arrays
from trainer.errors import DataError
from trainer.images import IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD, read_image, resize_size

logger = logging.getLogger(__name__)

BUILTIN_DATASETS = ("digits",)


@dataclass(frozen=True)
class Split:
    """Decoded images (uint8, C x H x W, already at the resize size) and their labels."""

    images: list[torch.Tensor]
    labels: list[int]


@dataclass(frozen=True)
class ImageData:
    train: Split
    val: Split
    classes: list[str]
    source: str
    # Mirrors and narrow crops change what a digit means; photos don't mind them.
    natural_augment: bool


def load_image_data(data: str, image_size: int, base_dir: Path | None = None) -> ImageData:
    """Loads ``data`` (a built-in name or a folder) and decodes it at the right size."""
    if data in BUILTIN_DATASETS:
        return _digits(image_size)
    root = Path(data)
    if not root.is_absolute() and base_dir is not None:
        root = base_dir / root
    return _folder(root, image_size)


def _digits(image_size: int) -> ImageData:
    images, targets = digits_arrays()
    size = resize_size(image_size)
    # 0..16 grey levels -> 0..255, three channels, upsampled once to the working size.
    pixels = torch.as_tensor(images, dtype=torch.float32).mul_(255 / 16).unsqueeze(1)
    pixels = torch.nn.functional.interpolate(pixels, size=(size, size), mode="bilinear")
    pixels = pixels.clamp_(0, 255).round_().to(torch.uint8).expand(-1, 3, -1, -1)
    labels = [int(t) for t in targets]
    # A fixed, stratified 80/20 split: every fifth image of each class goes to val.
    seen: dict[int, int] = {}
    train, val = Split([], []), Split([], [])
    for image, label in zip(pixels, labels, strict=True):
        seen[label] = seen.get(label, 0) + 1
        split = val if seen[label] % 5 == 0 else train
        split.images.append(image.contiguous())
        split.labels.append(label)
    return ImageData(train, val, [str(i) for i in range(10)], "digits", natural_augment=False)


def _folder(root: Path, image_size: int) -> ImageData:
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    splits = {}
    for name in ("train", "val"):
        if not (root / name).is_dir():
            raise DataError(f"data folder {root} has no {name}/ folder of class sub-folders")
        splits[name] = sorted(p.name for p in (root / name).iterdir() if p.is_dir())
    classes = splits["train"]
    if len(classes) < 2:
        raise DataError(f"{root / 'train'} needs at least 2 class sub-folders, found {classes}")
    if splits["val"] != classes:
        raise DataError(
            f"{root / 'val'} has classes {splits['val']} but {root / 'train'} has {classes}"
        )
    size = resize_size(image_size)
    decoded = {name: _decode_split(root / name, classes, size) for name in ("train", "val")}
    return ImageData(decoded["train"], decoded["val"], classes, str(root), natural_augment=True)


def decode_image(path: Path, size: int) -> torch.Tensor:
    """An image file as uint8 C x H x W, its short side resized to ``size`` (see
    :func:`trainer.images.read_image`). Raises DataError when the file is not a readable image.
    """
    return torch.from_numpy(read_image(path, size).copy()).permute(2, 0, 1).contiguous()


def eval_transform(
    image_size: int, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> v2.Compose:
    """Centre crop and normalise a decoded image, as validation (and prediction) see it."""
    return v2.Compose(
        [
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def _decode_split(folder: Path, classes: Sequence[str], size: int) -> Split:
    split = Split([], [])
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        kept = 0
        for path in files:
            try:
                image = decode_image(path, size)
            except DataError as exc:
                # One bad file should not cost a whole sweep: skip it, say so, go on.
                logger.warning("skipping %s", exc)
                continue
            split.images.append(image)
            split.labels.append(label)
            kept += 1
        if kept == 0:
            raise DataError(f"class folder {folder / name} has no readable images")
    return split


class AugmentedImages(Dataset[tuple[torch.Tensor, int]]):
    """In-memory images with train or eval transforms.

    Augmentation draws from a generator seeded by (seed, epoch, index), so the same seed gives
    the same crops whatever the number of loader workers or data-parallel ranks.
    """

    def __init__(
        self, split: Split, image_size: int, *, train: bool, natural: bool, seed: int = 0
    ) -> None:
        self.split = split
        self.image_size = image_size
        self.train = train
        self.seed = seed
        self.epoch = 0
        scale = (0.08, 1.0) if natural else (0.6, 1.0)
        ratio = (3 / 4, 4 / 3) if natural else (0.9, 1.1)
        self.crop = v2.RandomResizedCrop(image_size, scale=scale, ratio=ratio, antialias=True)
        self.flip = natural
        self.evaluate = eval_transform(image_size)
        self.normalize = v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.split.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.split.images[index]
        if self.train:
            rng = random.Random(hash((self.seed, self.epoch, index)))
            top, left, h, w = self.crop_box(image.shape[-2], image.shape[-1], rng)
            image = v2.functional.resized_crop(
                image, top, left, h, w, [self.crop.size[0], self.crop.size[1]], antialias=True
            )
            if self.flip and rng.random() < 0.5:
                image = v2.functional.horizontal_flip(image)
            return self.normalize(image), self.split.labels[index]
        return self.evaluate(image), self.split.labels[index]

    def crop_box(self, height: int, width: int, rng: random.Random) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a training crop of an image of that size."""
        # RandomResizedCrop.get_params, drawing from our own generator, not torch's global one.
        area = height * width
        lo, hi = (math.log(r) for r in self.crop.ratio)
        for _ in range(10):
            target = area * rng.uniform(*self.crop.scale)
            aspect = math.exp(rng.uniform(lo, hi))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                return rng.randint(0, height - h), rng.randint(0, width - w), h, w
        side = min(height, width)
        return (height - side) // 2, (width - side) // 2, side, side
