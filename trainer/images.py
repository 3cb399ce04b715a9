"""Image files to arrays, without torch: what training, validation and prediction all see.

The trainer decodes each file once with this (then keeps a uint8 tensor), and
``sweep models predict`` uses it with ONNX Runtime alone, so a prediction sees exactly the
pixels validation saw, and classifying one image does not import torch (6 s, 1 GB).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainer.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def resize_size(image_size: int) -> int:
    """The short side images are resized to before the centre crop (256 for 224, as ImageNet)."""
    return math.ceil(image_size * 256 / 224)


MAX_RESIZED_PIXELS = 4096 * 4096
"""The most pixels an image may have once resized (48 MB as RGB): a 1 x 60000 strip, 196
bytes as a PNG, would otherwise ask for 12 GB when its short side is scaled up."""


def resized_shape(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after the short side is resized to ``short_side``, by torchvision's
    rule for a one-number size: the long side is truncated, not rounded."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


def read_image(path: Path, short_side: int) -> np.ndarray:
    """An image file as uint8 H x W x 3 (RGB), its short side resized to ``short_side`` with
    antialiased bilinear filtering. Raises DataError when the file is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        # Past PIL's pixel limit (89 M) a file is a decompression bomb, not a photo: refused
        # instead of decoded into gigabytes (PIL itself only warns below twice that).
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size  # known before anything is decoded
                new_w, new_h = resized_shape(max(width, 1), max(height, 1), short_side)
                if new_w * new_h > MAX_RESIZED_PIXELS:
                    raise DataError(
                        f"{path} is not a usable image: {width} x {height} pixels would be "
                        f"{new_w} x {new_h} once resized (more than {MAX_RESIZED_PIXELS} "
                        "pixels; an extreme aspect ratio)"
                    )
                rgb = img.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(
            f"{path} is not a readable image: more than "
            f"{Image.MAX_IMAGE_PIXELS} pixels (a decompression bomb?)"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable image: {exc}") from None
    size = resized_shape(*rgb.size, short_side)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.Resampling.BILINEAR)  # PIL antialiases when shrinking
    return np.asarray(rgb, dtype=np.uint8)


def eval_array(
    image: np.ndarray,
    image_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """A decoded H x W x 3 uint8 image as the model's float32 3 x S x S input: centre crop
    (torchvision's rounding) and normalisation, as validation sees it."""
    height, width = image.shape[:2]
    top = int(round((height - image_size) / 2.0))
    left = int(round((width - image_size) / 2.0))
    crop = image[top : top + image_size, left : left + image_size]
    scaled = crop.astype(np.float32) / np.float32(255)
    out = (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(out.transpose(2, 0, 1))
