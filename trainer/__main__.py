"""``python -m trainer``: one training run without a sweep (the Azure sample's flags work)."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields

from trainer.errors import TrainerError, TrainerInputError
from trainer.options import TrainConfig, build_arg_parser
from trainer.preemption import Preempted, listening


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
        in_sweep = not config.checkpoint_dir and bool(os.environ.get("SWEEP_CHECKPOINT_DIR"))
        if in_sweep:
            # Run as a sweep's command trial: the trial's checkpoint folder, a working copy
            # the sweep keeps durably (a folder given here may be the only copy).
            config = dataclasses.replace(config, checkpoint_dir=os.environ["SWEEP_CHECKPOINT_DIR"])
        from trainer.fit import fit

        def report(epoch: int, metrics: dict[str, float]) -> bool:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            print(f"epoch {epoch + 1}/{config.num_epochs}  {shown}", flush=True)
            return False

        with listening(pass_on=False):  # a notice ends in the message below instead
            result = fit(config, report, durable_state=not in_sweep)
    except TrainerInputError as exc:
        print(f"trainer: error: {exc}", file=sys.stderr)
        return 2
    except Preempted as exc:
        # SIGTERM's own exit code: a sweep (or a scheduler) sees a preempted run, not a
        # failed one, and runs it again with the same checkpoint_dir to go on.
        print(f"trainer: {exc}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except TrainerError as exc:
        print(f"trainer: failed: {exc}", file=sys.stderr)
        return 1
    print(f"best_val_acc {result['best_val_acc']:.4f}; model saved to {config.output_dir}/model.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
