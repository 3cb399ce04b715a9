"""The soak's command trial: a script as Azure ML users write them (argparse flags, one
``mlflow.log_metric`` per epoch) that keeps its progress in ``$SWEEP_CHECKPOINT_DIR`` and
notes every epoch it really ran in ``outputs/ran.jsonl``, so the soak can count the epochs
an interruption cost."""

import argparse
import json
import os
import time

import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--epochs", type=int, default=9)
parser.add_argument("--sleep", type=float, default=0.05)
args = parser.parse_args()

state_file = os.path.join(os.environ.get("SWEEP_CHECKPOINT_DIR", "checkpoint"), "state.json")
start = 0
if os.path.exists(state_file):
    with open(state_file) as f:
        start = json.load(f)["epoch"] + 1
os.makedirs("outputs", exist_ok=True)
for epoch in range(start, args.epochs):
    time.sleep(args.sleep)
    acc = 1 - (args.x - 0.3) ** 2 + 0.01 * epoch
    with open("outputs/ran.jsonl", "a") as f:
        f.write(json.dumps({"epoch": epoch}) + "\n")
    os.makedirs(os.path.dirname(state_file), exist_ok=True)
    with open(state_file + ".tmp", "w") as f:
        json.dump({"epoch": epoch}, f)
    os.replace(state_file + ".tmp", state_file)
    mlflow.log_metric("acc", acc, step=epoch)
