"""Data-parallel plumbing: who am I, which samples are mine, and adding up across ranks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from trainer.errors import TrainerError, TrainerInputError


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    backend: str = "none"
    """none, ddp (torch.distributed) or horovod."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


HOROVOD_HINT = "bash scripts/build_horovod.sh builds and installs it"


def start(device: torch.device, mode: str = "auto") -> Ranks:
    """Joins the process group when a launcher (torchrun, our Ray backend) set WORLD_SIZE > 1,
    or Horovod's when ``mode`` is horovod (under horovodrun)."""
    if mode == "horovod":
        return _start_horovod(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Ranks()
    rank = int(os.environ.get("RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        except Exception as exc:
            raise TrainerError(f"could not join the {backend} process group: {exc}") from None
    return Ranks(rank, world_size, "ddp")


def _horovod() -> Any:
    try:
        import horovod.torch as hvd
    except ImportError:
        raise TrainerInputError(f"distributed: horovod is not installed; {HOROVOD_HINT}") from None
    return hvd


def _start_horovod(device: torch.device) -> Ranks:
    hvd = _horovod()
    hvd.init()
    if device.type == "cuda":
        torch.cuda.set_device(hvd.local_rank())
    return Ranks(hvd.rank(), hvd.size(), "horovod")


def stop(ranks: Ranks) -> None:
    if ranks.backend == "ddp" and dist.is_initialized():
        dist.destroy_process_group()


def sum_across(ranks: Ranks, *values: float, device: torch.device) -> list[float]:
    if not ranks.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    if ranks.backend == "horovod":
        hvd = _horovod()
        return list(hvd.allreduce(tensor, op=hvd.Sum, name="metric_sums").tolist())
    dist.all_reduce(tensor)
    return list(tensor.tolist())


def agree_to_stop(ranks: Ranks, stop_here: bool, device: torch.device) -> bool:
    """Rank 0's decision (it alone talks to the sweep), shared with every rank."""
    if not ranks.distributed:
        return stop_here
    flag = torch.tensor([1 if stop_here else 0], device=device)
    if ranks.backend == "horovod":
        return bool(_horovod().broadcast(flag, root_rank=0, name="stop").item())
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def wrap_for_training(
    ranks: Ranks, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The model to train and the optimizer to step, for this kind of data parallelism.

    DDP wraps the model; Horovod wraps the optimizer and broadcasts rank 0's starting point.
    Either way gradients are averaged over ranks.
    """
    if ranks.backend == "ddp":
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids), optimizer
    if ranks.backend == "horovod":
        hvd = _horovod()
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=named)
        hvd.broadcast_parameters(model.state_dict(), root_rank=0)
        hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    return model, optimizer


class GlobalBatchSampler:
    """Batches cut from one seeded permutation of the whole set; each rank takes its slice.

    With W ranks and a global batch B, rank r gets samples [r*B/W, (r+1)*B/W) of every global
    batch, so a 1-process run and a W-process run see the same global batches in the same order.
    """

    def __init__(self, size: int, batch_size: int, ranks: Ranks, seed: int) -> None:
        if batch_size % ranks.world_size:
            raise TrainerError(
                f"batch_size {batch_size} must divide evenly over {ranks.world_size} workers"
            )
        self.size, self.batch_size, self.ranks, self.seed = size, batch_size, ranks, seed
        self.epoch = self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """The epoch's order; ``skip``: the batches of it already trained (a run continued
        from a preemption notice's checkpoint goes on with the next one)."""
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[list[int]]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=gen).tolist()
        share = self.batch_size // self.ranks.world_size
        # Drop the ragged last batch: it would not split evenly over ranks.
        first = self.skip * self.batch_size
        for start in range(first, self.size - self.batch_size + 1, self.batch_size):
            lo = start + self.ranks.rank * share
            yield order[lo : lo + share]

    def __len__(self) -> int:
        return self.size // self.batch_size


def shard(size: int, ranks: Ranks) -> list[int]:
    """Evaluation indices for this rank: every world_size-th sample."""
    return list(range(ranks.rank, size, ranks.world_size))
