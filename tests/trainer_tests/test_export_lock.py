"""A trial that exports while another trains in the same process (the in-process backend's
threads): neither breaks the other (trainer/export_lock.py)."""

from __future__ import annotations

import threading

import pytest

from trainer.export_lock import SharedExclusiveLock
from trainer.fit import fit
from trainer.onnx_export import export_onnx
from trainer.options import TrainConfig


def _in_thread(target) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_an_exclusive_holder_waits_for_sharers_and_sharers_wait_for_it():
    lock, order = SharedExclusiveLock(), []
    shared_in, let_go = threading.Event(), threading.Event()

    def sharer() -> None:
        with lock.shared():
            shared_in.set()
            let_go.wait(5)
            order.append("shared done")

    def alone() -> None:
        with lock.exclusive():
            order.append("alone")

    first, _ = _in_thread(sharer)
    assert shared_in.wait(5)
    second, _ = _in_thread(alone)
    # A new sharer arriving while the export waits goes after it (no starving the export).
    late_asked = threading.Event()

    def late() -> None:
        late_asked.set()
        with lock.shared():
            order.append("late shared")

    while not lock._waiting_alone:
        threading.Event().wait(0.01)
    third, _ = _in_thread(late)
    assert late_asked.wait(5)
    threading.Event().wait(0.1)
    assert order == []
    let_go.set()
    for thread in (first, second, third):
        thread.join(5)
    assert order == ["shared done", "alone", "late shared"]


def test_set_aside_lets_an_export_in_and_an_export_inside_training_is_refused():
    lock = SharedExclusiveLock()
    with lock.shared():
        with lock.set_aside():
            with lock.exclusive():
                pass
        with pytest.raises(RuntimeError, match="set_aside"):
            with lock.exclusive():
                pass


@pytest.mark.slow
def test_exports_while_another_thread_trains(tmp_path):
    """Without the lock this fails most runs: ``KeyError: 'custom'`` in the trainer's
    ``optimizer.zero_grad`` or "Failed to decompose the FX graph" in the export."""
    config = dict(data="digits", image_size=16, batch_size=16, threads=1, learning_rate=0.05)
    fit(TrainConfig(**config, num_epochs=1, output_dir=str(tmp_path / "first")))
    training, result = threading.Event(), {}

    def report(epoch: int, metrics: dict) -> bool:
        training.set()
        return False

    def train() -> None:
        second = TrainConfig(**config, num_epochs=3, output_dir=str(tmp_path / "second"))
        result.update(fit(second, report))

    trainer, errors = _in_thread(train)
    assert training.wait(120)
    for n in range(2):
        export_onnx(tmp_path / "first", tmp_path / f"model{n}.onnx")
    trainer.join(300)
    assert not errors, errors
    assert result["epochs_run"] == 3 and (tmp_path / "model1.onnx").is_file()
