"""What Horovod's launcher gives each process: its rank and the world size."""

import os

import mlflow

rank, size = int(os.environ["HOROVOD_RANK"]), int(os.environ["HOROVOD_SIZE"])
if rank == 0:
    mlflow.log_metric("size", float(size))
