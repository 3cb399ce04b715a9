"""``fit``: data, model, optimiser and the epoch loop, reporting after every epoch."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from trainer import distributed, preemption
from trainer.checkpoint import (
    MODEL_FILE,
    ModelInfo,
    load_state,
    save_atomically,
    save_checkpoint,
    save_state,
)
from trainer.data import AugmentedImages, ImageData, load_image_data
from trainer.device_batches import DeviceBatches, fits_on_device
from trainer.errors import DataError, TrainerError
from trainer.export_lock import TORCH_STATE
from trainer.loop import EpochStats, Precision, evaluate, train_one_epoch
from trainer.model import build_model
from trainer.options import TrainConfig

logger = logging.getLogger(__name__)

Report = Callable[[int, dict[str, float]], bool]
"""``report(epoch, metrics) -> stop``: True means the trial was pruned; stop now."""


def fit(
    config: TrainConfig,
    report: Report | None = None,
    *,
    data: ImageData | None = None,
    durable_state: bool = True,
) -> dict[str, Any]:
    """Trains ``config.model`` on ``config.data`` and writes model.pt, metrics.jsonl, params.json.

    ``durable_state=False``: the state in ``config.checkpoint_dir`` is not flushed to disk
    at each save, for a sweep's working copy (the sweep keeps the durable one).

    Example:
        >>> fit(TrainConfig(data="digits", num_epochs=3, output_dir="out"))  # doctest: +SKIP
        {'best_val_acc': 0.93, 'val_acc': 0.93, ..., 'epochs_run': 3, 'pruned': False}

    Returns:
        The final metrics, ``best_val_acc`` first; ``pruned`` says whether ``report`` stopped it.
    """
    device = _device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    ranks = distributed.start(device, config.distributed)
    # A notice reaches one process; ranks that stopped on their own would hang the others.
    notice = contextlib.nullcontext(False) if ranks.distributed else preemption.listening()
    try:
        with TORCH_STATE.shared(), notice as listens:
            return _fit(config, report, device, ranks, data, listens, durable_state)
    finally:
        distributed.stop(ranks)


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainerError("device: cuda was asked for but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _precision(config: TrainConfig, device: torch.device) -> tuple[Precision, Any]:
    # channels_last: cuDNN's tensor-core kernels want it, and so do oneDNN's bf16 ones on CPU
    # (ResNet-18 at 128 px: 442 ms a step in bf16 channels_last, 576 contiguous). Horovod
    # needs contiguous tensors.
    nhwc = config.distributed != "horovod"
    if device.type == "cpu" and (
        config.cpu_bf16 == "true" or (config.cpu_bf16 == "auto" and cpu_has_amx())
    ):
        if not cpu_has_bf16():
            raise TrainerError(
                "cpu_bf16: this CPU has no native bf16 (AMX or AVX512-BF16); "
                "emulated bf16 would be slower than fp32"
            )
        return Precision(device, torch.bfloat16, channels_last=nhwc), None
    if device.type != "cuda" or not config.amp:
        # fp32 on CPU: oneDNN's channels_last kernels win on large images only (ResNet-18,
        # batch 32: 1459 vs 1593 ms a step at 224 px, but 211 vs 183 ms at 64 px).
        wide = device.type != "cpu" or config.image_size >= 128
        return Precision(device, channels_last=nhwc and wide), None
    if torch.cuda.is_bf16_supported():
        return Precision(device, torch.bfloat16, channels_last=nhwc), None
    return Precision(device, torch.float16, channels_last=nhwc), torch.amp.GradScaler("cuda")


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles: where bf16 is the default (``cpu_bf16: auto``)."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check()) if callable(check) else False


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AMX or AVX512-BF16)."""
    return any(
        bool(getattr(torch.cpu, check, lambda: False)())
        for check in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    )


def _fit(
    config: TrainConfig,
    report: Report | None,
    device: torch.device,
    ranks: distributed.Ranks,
    data: ImageData | None,
    listens: bool = False,
    durable_state: bool = True,
) -> dict[str, Any]:
    torch.manual_seed(config.seed)
    data = data or load_image_data(config.data, config.image_size)
    if len(data.train.labels) < config.batch_size:
        raise DataError(
            f"batch_size {config.batch_size} is larger than the training set "
            f"({len(data.train.labels)} images)"
        )
    train_set = AugmentedImages(
        data.train, config.image_size, train=True, natural=data.natural_augment, seed=config.seed
    )
    val_set = AugmentedImages(
        data.val, config.image_size, train=False, natural=data.natural_augment
    )
    sampler = distributed.GlobalBatchSampler(len(train_set), config.batch_size, ranks, config.seed)
    val_indices = distributed.shard(len(val_set), ranks)
    val_batch = max(config.batch_size, 64)
    train_loader: Iterable[tuple[torch.Tensor, torch.Tensor]]
    val_loader: Iterable[tuple[torch.Tensor, torch.Tensor]]
    if device.type == "cuda" and fits_on_device(train_set) and fits_on_device(val_set):
        train_loader = DeviceBatches(train_set, device, sampler)
        val_loader = DeviceBatches(val_set, device, batch_size=val_batch, indices=val_indices)
    else:
        train_loader = DataLoader(
            train_set, batch_sampler=sampler, pin_memory=device.type == "cuda"
        )
        val_loader = DataLoader(
            Subset(val_set, val_indices), batch_size=val_batch, pin_memory=device.type == "cuda"
        )

    model = build_model(config.model, len(data.classes), config.weights, config.freeze)
    precision, scaler = _precision(config, device)
    model = model.to(device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ranks.distributed:
        logger.info(
            "data-parallel (%s): rank %d of %d", ranks.backend, ranks.rank, ranks.world_size
        )
    trained, optimizer = distributed.wrap_for_training(
        ranks, model, _optimizer(config, model), device
    )
    scheduler = _scheduler(config, optimizer)

    out = Path(config.output_dir)
    info = ModelInfo(config.model, data.classes, config.image_size, data.source)
    resume = _Resume(config.checkpoint_dir, model, optimizer, scheduler, durable=durable_state)
    if resume.start:
        _take_rates(config, optimizer, scheduler)
    if ranks.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "params.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
        if resume.start == 0:
            (out / "metrics.jsonl").write_text("")

    best_acc, best_state, metrics = resume.best_acc, resume.best_state, resume.metrics
    pruned, epoch = False, resume.start - 1
    costs: dict[str, float] = {}
    stop_when = preemption.NOTICE.is_set if listens else (lambda: False)
    for epoch in range(resume.start, config.num_epochs):
        # Continued from a notice's checkpoint: the epoch goes on after its last batch.
        part, resume.notice = resume.notice, {}
        started = time.perf_counter() - float(part.get("seconds", 0.0))
        sampler.set_epoch(epoch, skip=int(part.get("batches", 0)))
        train_set.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        train = train_one_epoch(
            trained,
            train_loader,
            optimizer,
            precision,
            scaler,
            stats=EpochStats.resumed(part),
            stop_when=stop_when,
        )
        if train.stopped:
            if ranks.is_main:
                resume.save_notice(
                    epoch, train, best_acc, best_state, metrics, time.perf_counter() - started
                )
            raise preemption.Preempted(epoch, train.batches, saved=resume.folder is not None)
        val = evaluate(model, val_loader, precision)
        if scheduler is not None:
            scheduler.step()
        sums = distributed.sum_across(
            ranks,
            train.loss_sum,
            train.count,
            val.loss_sum,
            val.correct,
            val.count,
            device=device,
        )
        train_loss, val_loss, val_acc = sums[0] / sums[1], sums[2] / sums[4], sums[3] / sums[4]
        if val_acc > best_acc:
            best_acc, resume.best_epoch = val_acc, epoch
            best_state = copy.deepcopy(model.state_dict())
        metrics = {
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "best_val_acc": best_acc,
            "lr": lr,
            "epoch_s": time.perf_counter() - started,
            "images_per_s": sums[1] / (time.perf_counter() - started),
        }
        if ranks.is_main and config.measures and not costs:
            # Deployment costs depend on the architecture, not the weights: measured once,
            # after the first epoch, and reported with every epoch, so a sweep of several
            # objectives can rank its trials on them at every rung.
            costs = _measure(model, info, config.measures)
        metrics.update(costs)
        stop = False
        if ranks.is_main:
            if config.saves_after(epoch + 1, time.perf_counter() - resume.saved_at):
                resume.save(
                    epoch, best_acc, best_state, metrics
                )  # before the report: see save_state
            with (out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps({"epoch": epoch, **metrics}) + "\n")
            logger.info("epoch %d: %s", epoch, metrics)
            if report is not None:
                with TORCH_STATE.set_aside():
                    stop = bool(report(epoch, dict(metrics)))
        if not math.isfinite(train_loss):
            raise TrainerError(f"training diverged: train_loss is {train_loss} at epoch {epoch}")
        if distributed.agree_to_stop(ranks, stop, device):
            pruned = True
            break

    if ranks.is_main:
        model.load_state_dict(best_state)
        save_checkpoint(out / MODEL_FILE, model, info)
        if config.measures and not costs:  # no epoch ran here: a finished run continued
            costs = _measure(model, info, config.measures)
    return {**metrics, "best_val_acc": best_acc, "epochs_run": epoch + 1, "pruned": pruned, **costs}


def _measure(model: nn.Module, info: ModelInfo, names: Sequence[str]) -> dict[str, float]:
    """The deployment costs ``names`` of ``model`` as it stands (trainer.deploy_cost)."""
    from trainer.deploy_cost import measure

    measured = time.perf_counter()
    with TORCH_STATE.set_aside(), tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(Path(tmp) / MODEL_FILE, model, info)
        costs = measure(Path(tmp), names)
    logger.info("deployment costs %s, measured in %.1f s", costs, time.perf_counter() - measured)
    return costs


class _Resume:
    """The run's state in ``checkpoint_dir`` (none when empty): loaded once, saved per epoch.

    ``state.pt`` holds model, optimizer, scheduler and random states; the best epoch's
    weights go to ``best.pt`` only when they are not the current ones (an improving run
    writes no second copy of its weights).
    """

    def __init__(
        self,
        folder: str,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        *,
        durable: bool = True,
    ) -> None:
        self.folder = Path(folder) if folder else None
        self.durable = durable
        self.model = model
        self.objects: dict[str, Any] = {"model": model, "optimizer": optimizer}
        if scheduler is not None:
            self.objects["scheduler"] = scheduler
        self.start, extra = load_state(self.folder, **self.objects)
        self.best_acc = float(extra.get("best_acc", -1.0))
        self.best_epoch = int(extra.get("best_epoch", -1))
        self.metrics: dict[str, Any] = dict(extra.get("metrics", {}))
        self.notice: dict[str, float] = dict(extra.get("notice", {}))
        """Where a preemption notice stopped epoch ``start``: its batches and sums so far."""
        self.best_state = copy.deepcopy(model.state_dict())
        self.saved_at = time.perf_counter()
        """When the state was last saved (or loaded): ``checkpoint_interval_s`` counts from it."""
        self._best_file = -1
        # Saved mid-epoch, the weights are never the best epoch's: those are in best.pt.
        older = self.best_epoch < self.start - 1 or bool(self.notice)
        if self.folder is not None and 0 <= self.best_epoch and older:
            saved = torch.load(self.folder / "best.pt", map_location="cpu", weights_only=True)
            self.best_state, self._best_file = saved["state_dict"], int(saved["epoch"])
        if self.start or self.notice:
            batch = f", batch {int(self.notice['batches'])}" if self.notice else ""
            logger.info("continuing from %s at epoch %d%s", self.folder, self.start, batch)

    def save(
        self, epoch: int, best_acc: float, best_state: dict[str, Any], metrics: dict[str, Any]
    ) -> None:
        if self.folder is None:
            return
        if self.best_epoch != epoch and self._best_file != self.best_epoch:
            save_atomically(
                {"epoch": self.best_epoch, "state_dict": best_state},
                self.folder / "best.pt",
                durable=self.durable,
            )
            self._best_file = self.best_epoch
        save_state(
            self.folder,
            epoch,
            **self.objects,
            extra={"best_acc": best_acc, "best_epoch": self.best_epoch, "metrics": metrics},
            durable=self.durable,
        )
        self.saved_at = time.perf_counter()

    def save_notice(
        self,
        epoch: int,
        train: EpochStats,
        best_acc: float,
        best_state: dict[str, Any],
        metrics: dict[str, Any],
        seconds: float,
    ) -> None:
        """The state where a preemption notice stopped ``epoch``: after its epochs before
        and ``train.batches`` of it, with the pass's sums so far, so a run continued from it
        finishes the epoch as one never stopped would."""
        if self.folder is None:
            return
        if self.best_epoch >= 0 and self._best_file != self.best_epoch:
            save_atomically(
                {"epoch": self.best_epoch, "state_dict": best_state},
                self.folder / "best.pt",
                durable=self.durable,
            )
            self._best_file = self.best_epoch
        save_state(
            self.folder,
            epoch - 1,
            **self.objects,
            extra={
                "best_acc": best_acc,
                "best_epoch": self.best_epoch,
                "metrics": metrics,
                "notice": {**train.so_far(), "seconds": seconds},
            },
            durable=self.durable,
        )
        logger.info("preemption notice: state saved at epoch %d, batch %d", epoch, train.batches)


def _take_rates(config: TrainConfig, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
    """A run that continues trains with the learning rate and momentum it is given now, not
    those in its checkpoint (PBT changes them between generations); a schedule keeps its
    position and is rescaled to the new base rate. Unchanged params change nothing."""
    for group in optimizer.param_groups:
        base = group.get("initial_lr", group["lr"])
        group["lr"] *= config.learning_rate / base
        if "initial_lr" in group:
            group["initial_lr"] = config.learning_rate
        if "momentum" in group:
            group["momentum"] = config.momentum
    if scheduler is not None:
        scheduler.base_lrs = [config.learning_rate] * len(scheduler.base_lrs)


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
    )


def _scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if config.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.num_epochs)
    return None


def fit_params(params: Mapping[str, Any], report: Report | None = None) -> dict[str, Any]:
    """The built-in trainer in the sweep's ``fn(params, report) -> dict`` form: its
    checkpoint folder is the sweep's working copy, not flushed to disk at every save."""
    return fit(TrainConfig.from_params(params), report, durable_state=False)
