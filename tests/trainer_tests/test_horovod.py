"""The trainer's Horovod mode under a real ``horovodrun -np 2 --gloo``: 2 processes equal 1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def _horovodrun() -> str | None:
    found = Path(sys.executable).with_name("horovodrun")
    return str(found) if found.exists() else shutil.which("horovodrun")


def _final(out: Path) -> dict:
    return json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.mark.slow
def test_horovod_two_processes_match_one(tmp_path):
    runner = _horovodrun()
    if runner is None:
        if os.environ.get("CI"):
            pytest.fail("horovod is missing: scripts/test.sh builds it with build_horovod.sh")
        pytest.skip("horovod is not installed (bash scripts/build_horovod.sh)")
    single = subprocess.run(
        [sys.executable, *ARGS, "--output_dir", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    hvd = subprocess.run(
        [
            runner,
            "-np",
            "2",
            "--gloo",
            "-H",
            "localhost:2",
            sys.executable,
            *ARGS,
            "--distributed",
            "horovod",
            "--output_dir",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert hvd.returncode == 0, hvd.stdout[-3000:] + hvd.stderr[-3000:]
    assert "[1]<stdout>" in hvd.stdout  # a second rank really ran
    one, two = _final(tmp_path / "one"), _final(tmp_path / "two")
    # As for DDP: same global batches and augmentation, gradients averaged over ranks, the
    # frozen backbone's BatchNorm out of it; only the order of float additions differs.
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)
    assert abs(two["val_acc"] - one["val_acc"]) <= 1 / 359
    assert len((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_horovod_mode_without_horovod_names_the_script(tmp_path):
    # Hide Horovod (installed or not) from this one process: its import then fails.
    script = (
        "import sys; sys.modules['horovod'] = None; sys.modules['horovod.torch'] = None; "
        "from trainer.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = [a for a in ARGS if a not in ("-m", "trainer")]
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            *argv,
            "--distributed",
            "horovod",
            "--output_dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "scripts/build_horovod.sh" in proc.stderr and "Traceback" not in proc.stderr
