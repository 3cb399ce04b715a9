"""A script as Azure ML users write them: argparse flags, mlflow.log_metric per epoch.

Writes its pid (and its child's pid, with --child) to --pid_dir, so tests can check that a
pruned trial leaves no process behind.
"""

import argparse
import os
import subprocess
import sys
import time

import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--quality", type=float, required=True)
parser.add_argument("--epochs", type=int, default=6)
parser.add_argument("--sleep", type=float, default=0.3)
parser.add_argument("--pid_dir", default=None)
parser.add_argument("--child", action="store_true")
parser.add_argument("--output_dir", default="outputs")
parser.add_argument("--ignore_sigterm", action="store_true")
args = parser.parse_args()

if args.ignore_sigterm:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if args.pid_dir:
    os.makedirs(args.pid_dir, exist_ok=True)
    tag = f"{args.quality:.6f}"
    with open(os.path.join(args.pid_dir, f"{tag}.pid"), "w") as f:
        f.write(str(os.getpid()))
    if args.child:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(os.path.join(args.pid_dir, f"{tag}.child"), "w") as f:
            f.write(str(child.pid))
mlflow.log_param("quality", args.quality)
for epoch in range(args.epochs):
    mlflow.log_metric("acc", args.quality * (epoch + 1) / args.epochs, step=epoch)
    mlflow.log_metric("loss", 1 - args.quality, step=epoch)
    time.sleep(args.sleep)
os.makedirs(args.output_dir, exist_ok=True)
with open(os.path.join(args.output_dir, "weights.txt"), "w") as f:
    f.write(str(args.quality))
