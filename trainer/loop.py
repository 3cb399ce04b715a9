"""One epoch of training and one evaluation pass, as plain functions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EpochStats:
    """Sums over one pass; sums (not means) so data-parallel ranks can add theirs up.

    The sums stay on the device until ``done``: reading one back every batch would make the
    CPU wait for the GPU at every step.
    """

    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    batches: int = 0
    """Batches taken (a pass stopped by a notice says where: see ``train_one_epoch``)."""
    stopped: bool = False
    _loss: torch.Tensor | None = None
    _right: torch.Tensor | None = None

    def add(self, loss_sum: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        loss = loss_sum.detach().float()
        right = (logits.argmax(1) == labels).sum()
        self._loss = loss if self._loss is None else self._loss + loss
        self._right = right if self._right is None else self._right + right
        self.count += labels.numel()
        self.batches += 1

    def done(self) -> EpochStats:
        if self._loss is not None and self._right is not None:
            self.loss_sum += float(self._loss)
            self.correct += int(self._right)
            self._loss = self._right = None
        return self

    def so_far(self) -> dict[str, float]:
        """The plain sums (a notice's checkpoint keeps them for the rest of the epoch)."""
        self.done()
        return {
            "loss_sum": self.loss_sum,
            "correct": self.correct,
            "count": self.count,
            "batches": self.batches,
        }

    @classmethod
    def resumed(cls, saved: dict[str, float] | None) -> EpochStats:
        """Sums a stopped pass had reached, to go on from (empty: a pass from the start)."""
        if not saved:
            return cls()
        return cls(
            float(saved["loss_sum"]),
            int(saved["correct"]),
            int(saved["count"]),
            int(saved["batches"]),
        )


@dataclass(frozen=True)
class Precision:
    """How to run the maths: autocast dtype (None: full fp32), a grad scaler for fp16."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False

    def autocast(self) -> AbstractContextManager[object]:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


def _to_device(
    images: torch.Tensor, labels: torch.Tensor, precision: Precision
) -> tuple[torch.Tensor, torch.Tensor]:
    fmt = torch.channels_last if precision.channels_last else torch.contiguous_format
    images = images.to(precision.device, non_blocking=True, memory_format=fmt)
    return images, labels.to(precision.device, non_blocking=True)


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    precision: Precision,
    scaler: torch.amp.GradScaler | None = None,
    *,
    stats: EpochStats | None = None,
    stop_when: Callable[[], bool] = lambda: False,
) -> EpochStats:
    """Trains over ``batches``, adding to ``stats`` (a pass continued mid-epoch). Stops
    after the batch in flight once ``stop_when()`` holds (a preemption notice): then the
    stats say ``stopped`` and how many batches the pass has taken in all."""
    model.train()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    stats = stats or EpochStats()
    for images, labels in batches:
        if stop_when():
            stats.stopped = True
            break
        images, labels = _to_device(images, labels, precision)
        with precision.autocast():
            logits = model(images)
            loss_sum = criterion(logits.float(), labels)
        optimizer.zero_grad()  # set_to_none by default; Horovod's wrapper takes no argument
        # Mean over the local batch; DDP then averages the gradients over ranks.
        loss = loss_sum / labels.numel()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        stats.add(loss_sum.detach(), logits.detach(), labels)
    return stats.done()


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    precision: Precision,
) -> EpochStats:
    model.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    stats = EpochStats()
    for images, labels in batches:
        images, labels = _to_device(images, labels, precision)
        with precision.autocast():
            logits = model(images).float()
        stats.add(criterion(logits, labels), logits, labels)
    return stats.done()
