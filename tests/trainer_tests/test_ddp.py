"""Data-parallel training with torch DDP on CPU (gloo): 2 processes equal 1 process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ARGS = [
    "-m",
    "trainer",
    "--data",
    "digits",
    "--image_size",
    "16",
    "--batch_size",
    "64",
    "--num_epochs",
    "2",
    "--learning_rate",
    "0.05",
    "--freeze",
    "backbone",
    "--seed",
    "3",
    "--threads",
    "1",
]


def _final_metrics(out) -> dict:
    return json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    single = subprocess.run(
        [sys.executable, *ARGS, "--output_dir", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            *ARGS,
            "--output_dir",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr
    one, two = _final_metrics(tmp_path / "one"), _final_metrics(tmp_path / "two")
    # Same global batches, same augmentation draws, same initial weights, gradients averaged
    # over ranks: only the order of float additions differs (all-reduce vs one sum), so the
    # metrics agree to float32 rounding. The frozen backbone keeps BatchNorm out of it, since
    # per-rank batch statistics (SyncBatchNorm is GPU-only) would differ by design.
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)
    assert abs(two["val_acc"] - one["val_acc"]) <= 1 / 359  # at most one image of 359 flips
    # Only rank 0 writes: one metrics line per epoch, one model.
    assert len((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()) == 2
    assert (tmp_path / "two" / "model.pt").is_file()
