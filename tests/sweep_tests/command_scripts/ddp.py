"""A torch.distributed script as Azure ML's PyTorch distribution runs it: env:// rendezvous."""

import os

import mlflow
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)
if rank == 0:
    mlflow.log_metric("ranks_sum", value.item())
    mlflow.log_metric("world", float(world))
    mlflow.log_metric("local_rank_env", float(os.environ["LOCAL_RANK"]))
dist.destroy_process_group()
