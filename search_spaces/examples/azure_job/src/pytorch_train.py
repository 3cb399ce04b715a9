"""Transfer learning of a torchvision ResNet, in the shape of Azure ML's pytorch_train.py sample.

Run alone:   python pytorch_train.py --data_dir digits --num_epochs 3 --output_dir outputs
In a sweep:  the job file next to this folder passes the sampled --learning_rate and
             --momentum; every epoch's metrics go to MLflow, which Azure ML (or sweep, locally)
             reads to rank and stop trials. The model lands in --output_dir/model.pt.
Checkpoints: the training state is saved to $SWEEP_CHECKPOINT_DIR (or --checkpoint_dir)
             after every epoch, before its metrics are logged; a trial that is stopped (a
             crash, a lost node, a preempted low-priority VM) continues from it.
"""

import argparse
import os

import mlflow

from trainer.fit import fit
from trainer.options import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data_dir",
        type=str,
        default="digits",
        help="a folder with train/ and val/ class sub-folders, or 'digits'",
    )
    parser.add_argument("--num_epochs", type=int, default=4)
    parser.add_argument("--learning_rate", type=float, default=0.01)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--output_dir", type=str, default="outputs")
    parser.add_argument("--model", type=str, default="resnet18")
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument(
        "--checkpoint_dir",
        type=str,
        default="",
        help="where the training state goes after every epoch "
        "(default: $SWEEP_CHECKPOINT_DIR, which a sweep sets)",
    )
    args = parser.parse_args()
    checkpoint_dir = args.checkpoint_dir or os.environ.get("SWEEP_CHECKPOINT_DIR", "")

    config = TrainConfig(
        data=args.data_dir,
        num_epochs=args.num_epochs,
        learning_rate=args.learning_rate,
        momentum=args.momentum,
        output_dir=args.output_dir,
        model=args.model,
        weights="none",
        image_size=args.image_size,
        batch_size=args.batch_size,
        checkpoint_dir=checkpoint_dir,
    )
    mlflow.log_params({"learning_rate": args.learning_rate, "momentum": args.momentum})

    def log_epoch(epoch: int, metrics: dict) -> bool:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=epoch)
        print(f"epoch {epoch + 1}/{args.num_epochs}: val_acc {metrics['val_acc']:.4f}", flush=True)
        return False  # Azure ML (and sweep) end a terminated trial's process themselves

    result = fit(config, log_epoch)
    print(f"best_val_acc {result['best_val_acc']:.4f}; model saved to {args.output_dir}")


if __name__ == "__main__":
    main()
