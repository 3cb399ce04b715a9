"""torchvision models by name, with a new head and weights that never come from the network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from trainer.errors import TrainerInputError

_WEIGHTS_ENUM = {
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
    "mobilenet_v3_small": "MobileNet_V3_Small_Weights",
    "mobilenet_v3_large": "MobileNet_V3_Large_Weights",
}


def imagenet_weights_file(arch: str) -> tuple[Path, str]:
    """Where torchvision's cache keeps ``arch``'s ImageNet weights, and where they come from."""
    enum = getattr(torchvision.models, _WEIGHTS_ENUM[arch])
    url: str = enum.DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise TrainerInputError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which file, not torch's guts
        raise TrainerInputError(f"weights file {path} is not a state_dict: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        kind = type(state).__name__
        raise TrainerInputError(f"weights file {path} holds a {kind}, not a state_dict")
    return state


def build_model(
    arch: str, num_classes: int, weights: str = "none", freeze: str = "none"
) -> nn.Module:
    """A torchvision ``arch`` with its classifier replaced by a ``num_classes`` head.

    Args:
        weights: ``none``; ``imagenet`` (from torchvision's local cache only: a missing file is
            an error naming where to put it); or the path of a state_dict for the whole
            original model, loaded with ``weights_only=True``.
        freeze: ``backbone`` trains only the new head (a fixed feature extractor).
    """
    if arch not in _WEIGHTS_ENUM:
        raise TrainerInputError(f"model: unknown architecture {arch!r}")
    model: nn.Module = getattr(torchvision.models, arch)(weights=None)
    if weights == "imagenet":
        path, url = imagenet_weights_file(arch)
        if not path.is_file():
            raise TrainerInputError(
                f"ImageNet weights for {arch} are not in torchvision's local cache: download "
                f"{url} once and put it at {path} (nothing is downloaded at run time)"
            )
        model.load_state_dict(load_state_dict_file(path))
    elif weights != "none":
        try:
            model.load_state_dict(load_state_dict_file(Path(weights)))
        except RuntimeError as exc:
            raise TrainerInputError(f"weights file {weights} does not fit {arch}: {exc}") from None
    head = _replace_head(model, num_classes)
    if freeze == "backbone":
        for param in model.parameters():
            param.requires_grad = False
        for param in head.parameters():
            param.requires_grad = True
        _keep_backbone_in_eval_mode(model, head)
    return model


def _keep_backbone_in_eval_mode(model: nn.Module, head: nn.Module) -> None:
    # A frozen feature extractor must also keep its BatchNorm statistics: in train mode they
    # would follow each batch (and each data-parallel rank's half batch). So train() on this
    # model puts only the head in train mode; eval() is unchanged.
    def train(mode: bool = True) -> nn.Module:
        nn.Module.train(model, False)
        head.train(mode)
        return model

    model.train = train  # type: ignore[method-assign]


def _replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    head: nn.Linear
    fc = getattr(model, "fc", None)
    if isinstance(fc, nn.Linear):
        head = nn.Linear(fc.in_features, num_classes)
        model.fc = head
    else:
        classifier: Any = model.classifier
        head = nn.Linear(classifier[-1].in_features, num_classes)
        classifier[-1] = head
    return head
