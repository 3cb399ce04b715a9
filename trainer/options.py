"""The trainer's options: one dataclass, one argparse factory, no torch import.

The sweep imports this module to check a sweep file's ``trainer.args`` before it starts any
trial; the Azure sample's flags (``--data_dir``, ``--num_epochs``, ``--output_dir``,
``--learning_rate``, ``--momentum``) are accepted as they are.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainer.errors import TrainerInputError

MEASURES = ("latency_ms", "params_m")

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large")
ALIASES = {"data_dir": "data", "scheduler": "lr_schedule"}


@dataclass(frozen=True)
class TrainConfig:
    data: str = "digits"
    model: str = "resnet18"
    weights: str = "none"
    freeze: str = "none"
    num_epochs: int = 5
    batch_size: int = 32
    image_size: int = 224
    learning_rate: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    optimizer: str = "sgd"
    lr_schedule: str = "step"
    step_size: int = 7
    gamma: float = 0.1
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    cpu_bf16: str = "false"
    threads: int = 0
    distributed: str = "auto"
    output_dir: str = "outputs"
    checkpoint_dir: str = ""
    checkpoint_every: int = 1
    checkpoint_interval_s: float = 0.0
    checkpoint_at: str = ""
    """Epochs (counted as trained, comma-separated) after which the state is always saved."""
    measure: str = ""
    """Deployment costs measured at the end (``trainer.deploy_cost``): a comma-separated
    list of latency_ms, params_m (a sweep file may give a list)."""

    def __post_init__(self) -> None:
        checks = [
            (self.model in ARCHITECTURES, "model", f"one of {', '.join(ARCHITECTURES)}"),
            (self.freeze in ("none", "backbone"), "freeze", "none or backbone"),
            (self.optimizer in ("sgd", "adamw"), "optimizer", "sgd or adamw"),
            (self.lr_schedule in ("step", "cosine", "none"), "lr_schedule", "step, cosine or none"),
            (self.device in ("auto", "cpu", "cuda"), "device", "auto, cpu or cuda"),
            (self.cpu_bf16 in ("auto", "true", "false"), "cpu_bf16", "auto, true or false"),
            (self.distributed in ("auto", "horovod"), "distributed", "auto or horovod"),
            (self.num_epochs >= 1, "num_epochs", "1 or more"),
            (self.batch_size >= 1, "batch_size", "1 or more"),
            (self.image_size >= 16, "image_size", "16 or more"),
            (self.learning_rate > 0, "learning_rate", "greater than 0"),
            (0 <= self.momentum < 1, "momentum", "from 0 up to 1"),
            (self.step_size >= 1, "step_size", "1 or more"),
            (self.threads >= 0, "threads", "0 (torch's default) or more"),
            (self.checkpoint_every >= 1, "checkpoint_every", "1 or more"),
            (self.checkpoint_interval_s >= 0, "checkpoint_interval_s", "0 (none) or more"),
            (
                all(e.isdigit() for e in self._at_words),
                "checkpoint_at",
                "a comma-separated list of epochs",
            ),
            (
                all(m in MEASURES for m in self.measures),
                "measure",
                f"a list of {', '.join(MEASURES)}",
            ),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise TrainerInputError(f"{name}: expected {expected}, got {getattr(self, name)!r}")

    @property
    def _at_words(self) -> list[str]:
        return [e.strip() for e in self.checkpoint_at.split(",") if e.strip()]

    @property
    def checkpoint_epochs(self) -> frozenset[int]:
        """Epochs trained after which the state is always saved (rungs, PBT boundaries)."""
        return frozenset(int(e) for e in self._at_words)

    def saves_after(self, trained: int, since_save_s: float) -> bool:
        """Whether the state is saved after ``trained`` epochs, ``since_save_s`` seconds
        after the last save: at the last epoch, a boundary, every ``checkpoint_every``
        epochs, or when ``checkpoint_interval_s`` has passed."""
        return (
            trained >= self.num_epochs
            or trained in self.checkpoint_epochs
            or trained % self.checkpoint_every == 0
            or 0 < self.checkpoint_interval_s <= since_save_s
        )

    @property
    def measures(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.measure.split(",") if m.strip())

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainConfig:
        """Builds a config from a sweep's parameters, refusing unknown names and wrong types."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for raw_key, value in params.items():
            key = ALIASES.get(raw_key, raw_key)
            if key not in fields:
                raise TrainerInputError(
                    f"{raw_key}: not an option of the built-in trainer "
                    f"(options: {', '.join(sorted(fields))})"
                )
            values[key] = _coerce(key, value, type(getattr(cls(), key)))
        return cls(**values)


def _coerce(key: str, value: Any, kind: type) -> Any:
    if key == "cpu_bf16" and isinstance(value, bool):  # the file's true/false
        return "true" if value else "false"
    if (
        key == "measure"
        and isinstance(value, list | tuple)
        and all(isinstance(v, str) for v in value)
    ):
        return ",".join(value)
    if key == "checkpoint_at" and isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if key == "checkpoint_at" and value == "":
        return value  # no boundary: a sweep without rungs or PBT says so
    # Sweeps hand over floats for integer options (Azure's quniform gives 8.0): accept whole ones.
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
    elif kind is int and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if number.is_integer():
                    return int(number)
    elif kind is float and not isinstance(value, bool):
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str and isinstance(value, str) and value:
        return value
    raise TrainerInputError(f"{key}: expected {kind.__name__}, got {value!r}")


def build_arg_parser(prog: str = "python -m trainer") -> argparse.ArgumentParser:
    """The stand-alone trainer's flags, one per TrainConfig field (other launchers reuse it)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Transfer learning of a torchvision model on an image folder (train/ and "
        "val/ with one sub-folder per class) or on the built-in 'digits' data set. Writes "
        "model.pt, metrics.jsonl and params.json to --output_dir.",
    )
    helps = {
        "data": "built-in data set name (digits) or a folder with train/ and val/",
        "model": f"torchvision architecture: {', '.join(ARCHITECTURES)}",
        "weights": "none, imagenet (torchvision's local cache only), or a state_dict .pth path",
        "freeze": "none (fine-tune everything) or backbone (train the new head only)",
        "image_size": "side of the square image the model sees",
        "optimizer": "sgd or adamw",
        "lr_schedule": "step (StepLR(step_size, gamma)), cosine, or none (the learning_rate "
        "throughout). A run that continues from a checkpoint takes learning_rate and momentum "
        "as given now (PBT changes them), a schedule rescaled to the new rate",
        "device": "auto (CUDA when available), cpu or cuda",
        "amp": "mixed precision on CUDA (true/false)",
        "cpu_bf16": "bf16 mixed precision on the CPU: true (with AMX or AVX512-BF16), auto "
        "(where the CPU has AMX) or false. ResNet-18 trains 1.4x (64 px) to 2.6x (128 px) "
        "faster, but a run may diverge where fp32 trains (it depends on the process's thread "
        "setup, not only the seed)",
        "threads": "torch CPU threads; 0 keeps torch's default",
        "seed": "same seed, same data order, same metrics on CPU",
        "distributed": "auto: torch DDP when launched by torchrun (WORLD_SIZE > 1); "
        "horovod: Horovod, under horovodrun",
        "measure": "deployment costs to measure at the end, comma-separated: latency_ms "
        "(median batch-1 latency of the ONNX export, ONNX Runtime, 1 CPU thread), params_m "
        "(parameters, millions); they join the returned metrics",
        "checkpoint_dir": "a folder for the training state after every epoch; a run that "
        "finds one there continues from it with the same results as a run never stopped "
        "(a sweep sets it; $SWEEP_CHECKPOINT_DIR when empty)",
        "checkpoint_every": "save the state every N epochs (a sweep's checkpoint.every)",
        "checkpoint_interval_s": "also save when this many seconds passed since the last "
        "save; 0: never for that reason (a sweep's checkpoint.interval)",
        "checkpoint_at": "epochs trained after which the state is always saved, "
        "comma-separated (a sweep sets its rungs and PBT boundaries); the last epoch always",
    }
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        default = getattr(defaults, f.name)
        flags = [f"--{f.name}"] + [f"--{old}" for old, new in ALIASES.items() if new == f.name]
        kind = type(default)
        parser.add_argument(
            *flags,
            dest=f.name,
            default=default,
            type=(lambda s: _coerce("amp", s, bool)) if kind is bool else kind,
            help=f"{helps.get(f.name, '')} (default: {default})".strip(),
        )
    return parser
