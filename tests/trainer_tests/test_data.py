from __future__ import annotations

import logging

import pytest
import torch

from tests.conftest import make_image_folder
from trainer.data import AugmentedImages, load_image_data
from trainer.errors import DataError


def test_folder_is_decoded_once_at_the_resize_size(image_folder):
    data = load_image_data(str(image_folder), image_size=16)
    assert data.classes == ["chickens", "turkeys"]
    assert len(data.train.labels) == 24 and len(data.val.labels) == 8
    # Short side resized to ceil(16 * 256 / 224) = 19, kept in memory as uint8.
    assert all(img.dtype == torch.uint8 and min(img.shape[1:]) == 19 for img in data.train.images)


def test_digits_are_built_in_and_stratified():
    data = load_image_data("digits", image_size=16)
    assert data.classes == [str(i) for i in range(10)]
    assert len(data.train.labels) + len(data.val.labels) == 1797
    assert set(data.val.labels) == set(range(10))
    assert 0.18 < len(data.val.labels) / 1797 < 0.22


def test_digits_are_scikit_learns_own_read_without_importing_it():
    """What ``load_digits`` gives, bit for bit (the model card's data fingerprint hashes
    them), from a process that never imports scikit-learn (2.6 s of every trial's start)."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from trainer.digits import digits_arrays

    images, targets = digits_arrays()
    bunch = load_digits()
    assert images.dtype == bunch.images.dtype and images.tobytes() == bunch.images.tobytes()
    assert targets.tolist() == bunch.target.tolist()
    code = (
        "import sys; from trainer.data import load_image_data; load_image_data('digits', 16); "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_augmentation_is_reproducible_and_varies_by_epoch():
    data = load_image_data("digits", image_size=16)
    ds = AugmentedImages(data.train, 16, train=True, natural=True, seed=3)
    first = ds[0][0]
    assert torch.equal(first, ds[0][0])
    assert first.shape == (3, 16, 16)
    ds.set_epoch(1)
    assert not torch.equal(first, ds[0][0])


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_data(str(tmp_path / "nope"), 16)


def test_missing_val_split(tmp_path):
    make_image_folder(tmp_path / "d")
    import shutil

    shutil.rmtree(tmp_path / "d" / "val")
    with pytest.raises(DataError, match="no val/ folder"):
        load_image_data(str(tmp_path / "d"), 16)


def test_one_class_is_not_enough(tmp_path):
    make_image_folder(tmp_path / "d", classes=("only",))
    with pytest.raises(DataError, match="at least 2 class"):
        load_image_data(str(tmp_path / "d"), 16)


def test_val_classes_must_match(tmp_path):
    root = make_image_folder(tmp_path / "d")
    (root / "val" / "ducks").mkdir()
    with pytest.raises(DataError, match="has classes"):
        load_image_data(str(root), 16)


def test_corrupt_image_is_skipped_and_logged(image_folder, caplog):
    bad = image_folder / "train" / "chickens" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with caplog.at_level(logging.WARNING, logger="trainer.data"):
        data = load_image_data(str(image_folder), 16)
    assert len(data.train.labels) == 24
    assert str(bad) in caplog.text


def test_class_with_only_corrupt_images_is_an_error(image_folder):
    for path in (image_folder / "val" / "turkeys").iterdir():
        path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="turkeys has no readable images"):
        load_image_data(str(image_folder), 16)


def test_prediction_sees_exactly_the_pixels_validation_sees(tmp_path):
    """trainer.images (numpy, used by `models predict`) against the trainer's torch path."""
    import numpy as np
    from PIL import Image

    from trainer.data import decode_image, eval_transform
    from trainer.images import eval_array, read_image, resize_size

    rng = np.random.default_rng(0)
    for width, height, size in ((640, 480, 224), (50, 70, 16), (8, 8, 32), (123, 457, 64)):
        path = tmp_path / f"{width}x{height}.png"
        Image.fromarray((rng.random((height, width, 3)) * 255).astype("uint8")).save(path)
        torch_path = eval_transform(size)(decode_image(path, resize_size(size))).numpy()
        numpy_path = eval_array(read_image(path, resize_size(size)), size)
        assert numpy_path.shape == torch_path.shape == (3, size, size)
        assert np.abs(numpy_path - torch_path).max() < 1e-6


@pytest.mark.parametrize("train", [True, False])
def test_device_batches_are_the_dataloaders_batches(train):
    """The GPU path (images kept on the device, augmented there) sees the same crops, flips
    and labels as the DataLoader path; run here on the CPU device."""
    from trainer.device_batches import DeviceBatches

    data = load_image_data("digits", 32)
    split = data.train if train else data.val
    dataset = AugmentedImages(split, 32, train=train, natural=True, seed=3)
    dataset.set_epoch(2)
    chosen = [5, 0, 17, 3, 40, 41]
    expected = torch.stack([dataset[i][0] for i in chosen])
    batches = DeviceBatches(
        dataset,
        torch.device("cpu"),
        sampler=[chosen] if train else None,
        batch_size=len(chosen),
        indices=None if train else chosen,
    )
    images, labels = next(iter(batches))
    assert labels.tolist() == [dataset[i][1] for i in chosen]
    assert images.shape == expected.shape == (len(chosen), 3, 32, 32)
    if not train:  # the centre crop: exact
        assert (images - expected).abs().max() < 1e-5
        return
    # Train: the same boxes and flips, resized by one grid_sample for the batch rather than
    # per image (its samples at a crop's border read just outside it): per image, a mean
    # difference under 0.05, where another crop or a flip differs by 0.35 or more.
    per_image = (images - expected).abs().mean(dim=(1, 2, 3))
    assert per_image.max() < 0.05, per_image
    assert (images.flip(-1) - expected).abs().mean(dim=(1, 2, 3)).min() > 0.2


def test_an_image_that_resizes_to_gigabytes_is_skipped_before_it_is_allocated(image_folder, caplog):
    """A 1 x 60000 PNG (196 bytes) passes the pixel limit, but its short side scaled to the
    model's input would take 12 GB; it is skipped like a corrupt file."""
    from PIL import Image

    strip = image_folder / "train" / "chickens" / "strip.png"
    Image.new("L", (1, 60000)).save(strip)
    assert strip.stat().st_size < 1000
    with caplog.at_level(logging.WARNING, logger="trainer.data"):
        data = load_image_data(str(image_folder), 224)
    assert len(data.train.labels) == 24
    assert str(strip) in caplog.text and "extreme aspect ratio" in caplog.text


@pytest.mark.parametrize("train", [True, False])
def test_device_batches_of_images_of_different_sizes(train):
    """Photos of several sizes share one padded tensor on the device: each is still cropped
    from its own pixels (a crop at its right or bottom edge reads its edge, not padding)."""
    from torch.nn import functional as F

    from trainer.data import Split
    from trainer.device_batches import DeviceBatches

    gen = torch.Generator().manual_seed(0)
    shapes = [(64, 80), (72, 64), (64, 64), (100, 64)]
    # Photo-like (smooth): noise at 8 x 8, enlarged; per-pixel noise is no photo.
    images = [
        (
            F.interpolate(
                torch.rand((1, 3, 8, 8), generator=gen), size=s, mode="bicubic", align_corners=False
            )[0].clamp(0, 1)
            * 255
        ).to(torch.uint8)
        for s in shapes
    ]
    dataset = AugmentedImages(Split(images, [0, 1, 0, 1]), 64, train=train, natural=True, seed=5)
    chosen = [3, 1, 0, 2]
    expected = torch.stack([dataset[i][0] for i in chosen])
    batches = DeviceBatches(
        dataset,
        torch.device("cpu"),
        sampler=[chosen] if train else None,
        batch_size=4,
        indices=None if train else chosen,
    )
    got, labels = next(iter(batches))
    assert labels.tolist() == [1, 1, 0, 0]
    per_image = (got - expected).abs().mean(dim=(1, 2, 3))
    assert per_image.max() < (0.05 if train else 1e-5), per_image
