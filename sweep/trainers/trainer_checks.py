"""The checks a trainer function's sweep makes before it runs: the entry imports; the built-in
trainer knows every option and has its weights (no torch import but to locate ImageNet's)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from search_spaces import SweepConfig
from sweep.errors import SweepInputError
from sweep.trials import TrainFn


def check_trainer(config: SweepConfig, entry: str | TrainFn) -> None:
    """A trainer function's: its entry imports; the built-in trainer's options and weights."""
    if isinstance(entry, str) and entry != "trainer":
        from sweep.errors import TrialFailed
        from sweep.trainers.runner import resolve_entry

        try:
            resolve_entry(entry)
        except TrialFailed as exc:
            raise SweepInputError(str(exc)) from None
        return
    if entry == "trainer":
        _check_builtin_trainer(config)


def _check_builtin_trainer(config: SweepConfig) -> None:
    """Unknown options and missing weights of the built-in trainer."""
    from trainer.errors import TrainerInputError
    from trainer.options import ALIASES, TrainConfig

    known = {f.name for f in dataclasses.fields(TrainConfig)} | set(ALIASES)
    for key in config.search_space:
        if key not in known:
            raise SweepInputError(
                f"search_space.{key}: the built-in trainer has no such option "
                f"(options: {', '.join(sorted(known))})"
            )
    try:
        args = TrainConfig.from_params(config.trainer.args)
    except TrainerInputError as exc:
        raise SweepInputError(f"trainer.args.{exc}") from None
    if "weights" in config.search_space or "model" in config.search_space:
        return
    if args.weights == "imagenet":
        from trainer.model import imagenet_weights_file

        path, url = imagenet_weights_file(args.model)
        if not path.is_file():
            raise SweepInputError(
                f"trainer.args.weights: ImageNet weights for {args.model} are not in "
                f"torchvision's local cache; download {url} once and put it at {path}"
            )
    elif args.weights != "none" and not Path(args.weights).is_file():
        raise SweepInputError(f"trainer.args.weights: {args.weights} does not exist")
