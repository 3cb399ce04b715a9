"""``python -m trainer``: one training run without a sweep (the Azure sample's flags work)."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import fields

from trainer.errors import TrainerError, TrainerInputError
from trainer.options import TrainConfig, build_arg_parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
        if not config.checkpoint_dir and os.environ.get("SWEEP_CHECKPOINT_DIR"):
            # Run as a sweep's command trial: the trial's checkpoint folder.
            config = dataclasses.replace(config, checkpoint_dir=os.environ["SWEEP_CHECKPOINT_DIR"])
        from trainer.fit import fit

        def report(epoch: int, metrics: dict[str, float]) -> bool:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            print(f"epoch {epoch + 1}/{config.num_epochs}  {shown}", flush=True)
            return False

        result = fit(config, report)
    except TrainerInputError as exc:
        print(f"trainer: error: {exc}", file=sys.stderr)
        return 2
    except TrainerError as exc:
        print(f"trainer: failed: {exc}", file=sys.stderr)
        return 1
    print(f"best_val_acc {result['best_val_acc']:.4f}; model saved to {config.output_dir}/model.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
