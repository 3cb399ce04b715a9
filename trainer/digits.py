"""scikit-learn's bundled digits, read without importing scikit-learn (or torch): the trainer's
built-in data set and the model card's data fingerprint both start from these arrays."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``load_digits`` gives them (images: 1797 x 8 x 8 float64 grey
    levels 0..16; targets), read from the file scikit-learn ships without importing it:
    ``import sklearn`` pulls in SciPy's stats, 2.6 s of a busy 2-CPU machine in every trial
    process, export and prediction that reads the built-in data."""
    spec = importlib.util.find_spec("sklearn")  # finds the package; runs none of it
    folders = list(spec.submodule_search_locations or ()) if spec else []
    csv = Path(folders[0], "datasets", "data", "digits.csv.gz") if folders else None
    if csv is None or not csv.is_file():  # another layout: the slower, public way
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(csv, "rt", encoding="utf-8") as text:
        data = np.loadtxt(text, delimiter=",")  # what load_digits does with it
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int, copy=False)
