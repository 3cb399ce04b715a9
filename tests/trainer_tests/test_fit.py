from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
import torch

from tests.conftest import make_image_folder
from tests.threads import TRAIN_THREADS
from trainer import preemption
from trainer.checkpoint import load_checkpoint
from trainer.fit import fit
from trainer.metrics import EPOCH_METRICS
from trainer.options import TrainConfig

FAST = {
    "data": "digits",
    "image_size": 16,
    "batch_size": 64,
    "learning_rate": 0.05,
    "threads": TRAIN_THREADS,
    "model": "resnet18",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """FAST on an image folder of 192 training images (3 batches of 64) instead of digits'
    22 batches: what a run saves, restores and decides needs epochs, not data (an epoch in
    0.6 s here against digits' 4.3 s, 2026-12-07)."""
    return {
        **FAST,
        "data": str(make_image_folder(tmp_path_factory.mktemp("small"), per_class=(96, 16))),
    }


@pytest.mark.slow
def test_fit_reports_every_epoch_and_writes_its_outputs(tmp_path):
    seen = []
    result = fit(
        TrainConfig(**FAST, num_epochs=2, output_dir=str(tmp_path)),
        lambda epoch, m: seen.append((epoch, m)) or False,
    )
    assert [e for e, _ in seen] == [0, 1]
    # Exactly the names trainer.metrics gives the rest of the project (the Azure check).
    assert tuple(seen[0][1]) == EPOCH_METRICS
    assert result["best_val_acc"] == max(m["val_acc"] for _, m in seen)
    assert result["epochs_run"] == 2 and result["pruned"] is False
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]
    assert json.loads((tmp_path / "params.json").read_text())["num_epochs"] == 2
    model, info = load_checkpoint(tmp_path)
    assert info.classes == [str(i) for i in range(10)] and info.image_size == 16


@pytest.mark.slow
def test_a_true_report_stops_at_once_and_leaves_a_consistent_folder(small, tmp_path):
    calls = []

    def prune_after_first(epoch, metrics):
        calls.append(epoch)
        return True

    result = fit(TrainConfig(**small, num_epochs=5, output_dir=str(tmp_path)), prune_after_first)
    assert calls == [0]
    assert result["pruned"] is True and result["epochs_run"] == 1
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
    load_checkpoint(tmp_path)  # the model file is complete and loads


@pytest.mark.slow
def test_same_seed_same_metrics_on_cpu(small, tmp_path):
    runs = [
        fit(TrainConfig(**small, num_epochs=1, seed=5, output_dir=str(tmp_path / str(i))))
        for i in range(2)
    ]
    other = fit(TrainConfig(**small, num_epochs=1, seed=6, output_dir=str(tmp_path / "o")))
    assert runs[0]["train_loss"] == runs[1]["train_loss"]
    assert runs[0]["val_acc"] == runs[1]["val_acc"]
    assert other["train_loss"] != runs[0]["train_loss"]


def test_image_folder_trains_with_a_frozen_backbone(tmp_path, image_folder):
    result = fit(
        TrainConfig(
            data=str(image_folder),
            image_size=16,
            batch_size=8,
            num_epochs=2,
            freeze="backbone",
            learning_rate=0.01,
            output_dir=str(tmp_path / "out"),
            threads=1,
        )
    )
    assert 0 <= result["best_val_acc"] <= 1
    model, _ = load_checkpoint(tmp_path / "out")
    assert model.fc.out_features == 2


def test_frozen_backbone_keeps_its_batchnorm_statistics():
    from trainer.model import build_model

    model = build_model("resnet18", 3, freeze="backbone")
    before = model.bn1.running_mean.clone()
    model.train()
    assert not model.bn1.training and model.fc.training
    model(torch.randn(4, 3, 32, 32))
    assert torch.equal(before, model.bn1.running_mean)


@pytest.mark.slow
def test_weights_file_is_loaded_with_weights_only(tmp_path):
    import torchvision

    path = tmp_path / "w.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    result = fit(
        TrainConfig(
            **{**FAST, "weights": str(path)}, num_epochs=1, output_dir=str(tmp_path / "out")
        )
    )
    assert result["epochs_run"] == 1


@pytest.mark.slow
def test_cli_accepts_the_azure_sample_flags(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trainer",
            "--data_dir",
            "digits",
            "--num_epochs",
            "1",
            "--image_size",
            "16",
            "--learning_rate",
            "0.05",
            "--momentum",
            "0.9",
            "--output_dir",
            str(tmp_path),
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/1" in proc.stdout
    assert (tmp_path / "model.pt").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data_dir", "/no/such/folder"], "data folder /no/such/folder does not exist"),
        (["--momentum", "1.5"], "momentum: expected"),
        (["--model", "vgg99"], "model: expected one of"),
    ],
)
@pytest.mark.slow
def test_cli_user_errors_are_one_line_and_exit_2(tmp_path, argv, message):
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", *argv, "--output_dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_cli_help_lists_every_option():
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "--help"], capture_output=True, text=True, timeout=60
    )
    for flag in (
        "--data_dir",
        "--num_epochs",
        "--output_dir",
        "--learning_rate",
        "--momentum",
        "--image_size",
        "--weights",
        "--freeze",
        "--seed",
    ):
        assert flag in proc.stdout


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_a_run_interrupted_after_epoch_k_and_continued_equals_one_never_stopped(small, tmp_path):
    """CPU, fp32: model, optimizer, scheduler, random state, data order and best-so-far all
    come back, so every per-epoch metric matches an uninterrupted run to 1e-6."""
    # Cosine: the learning rate changes every epoch, so a scheduler not restored shows.
    # 3 epochs cut after the second: 6 trained in all (the suite's time; 5 and 2 said no more).
    config = {**small, "num_epochs": 3, "lr_schedule": "cosine", "device": "cpu"}
    whole: list[dict] = []
    full = fit(
        TrainConfig(**config, output_dir=str(tmp_path / "whole")),
        lambda epoch, m: whole.append(m) or False,
    )

    parts: list[dict] = []
    ckpt = str(tmp_path / "checkpoint")

    def stop_after_epoch_1(epoch, metrics):  # a crash right after the report of epoch 1
        parts.append(metrics)
        if epoch == 1:
            raise _Interrupt
        return False

    with pytest.raises(_Interrupt):
        fit(
            TrainConfig(**config, output_dir=str(tmp_path / "cut"), checkpoint_dir=ckpt),
            stop_after_epoch_1,
        )
    epochs = []
    continued = fit(
        TrainConfig(**config, output_dir=str(tmp_path / "cut"), checkpoint_dir=ckpt),
        lambda epoch, m: epochs.append(epoch) or parts.append(m) or False,
    )
    assert epochs == [2]
    assert len(parts) == len(whole) == 3
    for a, b in zip(whole, parts, strict=True):
        for key in ("train_loss", "val_loss", "val_acc", "best_val_acc", "lr"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
    assert continued["best_val_acc"] == pytest.approx(full["best_val_acc"], abs=1e-6)
    assert continued["epochs_run"] == 3
    # The saved best model is the same weights.
    a, _ = load_checkpoint(tmp_path / "whole")
    b, _ = load_checkpoint(tmp_path / "cut")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(x.float(), y.float(), atol=1e-6), name

    # A preemption notice 2 batches into epoch 1 (of 3): the state is saved there, and the
    # run continued from it trains the third and epoch 2 as one never stopped.
    notice = _NoticeAfter(3 + 2)
    preemption.NOTICE, real = notice, preemption.NOTICE
    ckpt = str(tmp_path / "noticed")
    again: list[dict] = []
    try:  # this test handles the notice itself: it is not passed on to pytest's process
        with (
            preemption.listening(pass_on=False),
            pytest.raises(preemption.Preempted, match="epoch 2, batch 2; its state is saved"),
        ):
            fit(
                TrainConfig(**config, output_dir=str(tmp_path / "notice"), checkpoint_dir=ckpt),
                lambda epoch, m: again.append(m) or False,
            )
    finally:
        preemption.NOTICE = real
    assert len(again) == 1
    ran = fit(
        TrainConfig(**config, output_dir=str(tmp_path / "notice"), checkpoint_dir=ckpt),
        lambda epoch, m: again.append(m) or False,
    )
    assert len(again) == 3
    for a_, b_ in zip(whole, again, strict=True):
        for key in ("train_loss", "val_loss", "val_acc", "best_val_acc", "lr"):
            assert a_[key] == pytest.approx(b_[key], abs=1e-6), key
    assert ran["best_val_acc"] == pytest.approx(full["best_val_acc"], abs=1e-6)
    c, _ = load_checkpoint(tmp_path / "notice")
    for (name, x), y in zip(a.state_dict().items(), c.state_dict().values(), strict=True):
        assert torch.allclose(x.float(), y.float(), atol=1e-6), name


class _NoticeAfter(threading.Event):
    """A notice that arrives before batch ``n + 1`` counted over the run (the loop asks once
    a batch): the same place every run, which a real signal's timing is not."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.asked = n, 0

    def is_set(self) -> bool:
        self.asked += 1
        return self.asked > self.n or super().is_set()


def test_sigterm_while_listening_is_a_notice_passed_on_when_nobody_else_handles_it():
    before = signal.getsignal(signal.SIGTERM)
    with preemption.listening(pass_on=False) as listens:
        assert listens and not preemption.NOTICE.is_set()
        os.kill(os.getpid(), signal.SIGTERM)  # the process lives on: the run saves and stops
        assert preemption.NOTICE.wait(5)
    assert signal.getsignal(signal.SIGTERM) is before
    # A script that calls fit itself: once the run has saved, the process ends by SIGTERM,
    # as it would have without the notice (what a scheduler reads as "preempted").
    script = (
        "import os, signal\n"
        "from trainer import preemption\n"
        "with preemption.listening():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    preemption.NOTICE.wait(5)\n"
        "    print('saved', flush=True)\n"
        "print('not reached')\n"
    )
    ended = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert ended.returncode == -signal.SIGTERM and ended.stdout == "saved\n", ended.stderr


@pytest.mark.slow
def test_a_finished_run_continued_trains_nothing_and_returns_its_result(small, tmp_path):
    ckpt = str(tmp_path / "checkpoint")
    first = fit(TrainConfig(**small, num_epochs=1, output_dir=str(tmp_path), checkpoint_dir=ckpt))
    calls = []
    again = fit(
        TrainConfig(**small, num_epochs=1, output_dir=str(tmp_path), checkpoint_dir=ckpt),
        lambda epoch, m: calls.append(epoch) or False,
    )
    assert calls == [] and again["best_val_acc"] == first["best_val_acc"]
    assert again["epochs_run"] == 1


@pytest.mark.parametrize("schedule", ["none", "step"])
@pytest.mark.slow
def test_a_continued_run_trains_with_the_rates_it_is_given_now(small, tmp_path, schedule):
    """PBT changes learning_rate and momentum between generations: the continued run uses
    them, not its checkpoint's; a step schedule keeps its position, rescaled."""
    ckpt = str(tmp_path / "checkpoint")
    base = {
        **small,
        "image_size": 16,
        "lr_schedule": schedule,
        "step_size": 1,
        "gamma": 0.5,
        "output_dir": str(tmp_path),
        "checkpoint_dir": ckpt,
    }
    fit(TrainConfig(**{**base, "learning_rate": 0.04, "momentum": 0.9}, num_epochs=1))
    seen: list[dict] = []
    fit(
        TrainConfig(**{**base, "learning_rate": 0.01, "momentum": 0.5}, num_epochs=2),
        lambda epoch, m: seen.append(m) or False,
    )
    # none: the new rate; step (halved each epoch): the new rate after 1 halving.
    assert seen[0]["lr"] == pytest.approx(0.01 if schedule == "none" else 0.005)
    state = torch.load(tmp_path / "checkpoint" / "state.pt", weights_only=True)
    assert state["states"]["optimizer"]["param_groups"][0]["momentum"] == 0.5


@pytest.mark.slow
def test_the_state_is_saved_only_where_the_checkpoint_policy_says(small, tmp_path):
    """checkpoint.every 5 over 2 epochs: nothing saved after the first, the last saved."""
    ckpt = tmp_path / "checkpoint"
    saved: list[int] = []

    def watch(epoch: int, metrics: dict) -> bool:
        state = ckpt / "state.pt"
        saved.append(torch.load(state, weights_only=True)["epoch"] if state.exists() else -1)
        return False

    config = {**small, "num_epochs": 2, "output_dir": str(tmp_path), "checkpoint_dir": str(ckpt)}
    fit(TrainConfig(**config, checkpoint_every=5), watch)
    assert saved == [-1, 1]  # at each report: the epoch (from 0) of the state on disk


def test_the_checkpoint_policy_saves_at_boundaries_every_n_the_last_epoch_and_on_time():
    policy = TrainConfig(**FAST, num_epochs=9, checkpoint_every=4, checkpoint_at="1,3")
    saved = [e for e in range(1, 10) if policy.saves_after(e, since_save_s=0.0)]
    assert saved == [1, 3, 4, 8, 9]
    timed = TrainConfig(**FAST, num_epochs=9, checkpoint_every=4, checkpoint_interval_s=60.0)
    assert timed.saves_after(2, since_save_s=61.0) and not timed.saves_after(2, since_save_s=59.0)
    with pytest.raises(Exception, match="checkpoint_at"):
        TrainConfig(**FAST, checkpoint_at="1,x")
