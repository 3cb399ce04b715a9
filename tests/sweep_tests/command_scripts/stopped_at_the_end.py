"""A script whose preemption notice lands after its last epoch was logged, before it exits.

It saves its epoch count to $SWEEP_CHECKPOINT_DIR before each log; the first run sends itself
SIGTERM once its last epoch is logged (as a spot node's notice could); the run that continues
finds every epoch done, logs nothing and exits 0.
"""

import argparse
import os
import signal
import time
from pathlib import Path

import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--quality", type=float, required=True)
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()

state = Path(os.environ["SWEEP_CHECKPOINT_DIR"]) / "epochs_done"
done = int(state.read_text()) if state.exists() else 0
resumed = done > 0
for epoch in range(done, args.epochs):
    state.write_text(str(epoch + 1))
    mlflow.log_metric("acc", args.quality * (epoch + 1) / args.epochs, step=epoch)
    time.sleep(0.4)  # the sweep reads each log, and the state beside it, before the next
if not resumed:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
print(f"resumed with {done} of {args.epochs} epochs done")
