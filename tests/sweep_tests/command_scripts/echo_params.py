import argparse
import json
import os

import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--model")
parser.add_argument("--lr", type=float)
parser.add_argument("--data")
parser.add_argument("--extra", default=None)
parser.add_argument("--out")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "args.json"), "w") as f:
    json.dump(
        {
            **vars(args),
            "data_text": open(args.data).read(),
            "env_lr": os.environ.get("AZUREML_SWEEP_lr"),
        },
        f,
    )
mlflow.log_metric("score", args.lr)
