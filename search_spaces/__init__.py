"""The search-space model: sweep files, expressions, and their Optuna / Azure ML / W&B forms.

Example:
    >>> from search_spaces import read_sweep_file, to_optuna
    >>> config = read_sweep_file("space.yaml")            # doctest: +SKIP
    >>> to_optuna(config.search_space).distributions()    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from search_spaces._errors import SearchSpaceError, abbreviate, clip_message
from search_spaces.azure_form import check_azure_compatible, to_azure_sweep
from search_spaces.config import (
    EarlyTermination,
    Limits,
    Objective,
    Register,
    Resources,
    SamplingAlgorithm,
    SweepConfig,
    TrainerSpec,
)
from search_spaces.expressions import EXPRESSION_TYPES, Expression
from search_spaces.reader import (
    SAFE_NAME,
    SearchSpaceWarning,
    parse_expression,
    parse_search_space,
    parse_sweep,
    read_sweep_file,
)
from search_spaces.wandb_form import from_wandb
from search_spaces.writer import to_dict

if TYPE_CHECKING:
    from search_spaces.optuna_form import OptunaSpace


def example_path(name: str) -> Path:
    """The path of a shipped example sweep file (``digits``, ``fowl``)."""
    path = Path(str(files("search_spaces") / "examples" / f"{name}.yaml"))
    if not path.is_file():
        raise SearchSpaceError("example", f"no example named {name!r}")
    return path


def to_optuna(space: Mapping[str, Expression]) -> OptunaSpace:
    """See :func:`search_spaces.optuna_form.to_optuna` (imported lazily: it needs Optuna)."""
    from search_spaces.optuna_form import to_optuna as convert

    return convert(space)


__all__ = [
    "EXPRESSION_TYPES",
    "SAFE_NAME",
    "EarlyTermination",
    "Expression",
    "Limits",
    "Objective",
    "Register",
    "Resources",
    "SamplingAlgorithm",
    "SearchSpaceError",
    "SearchSpaceWarning",
    "abbreviate",
    "clip_message",
    "SweepConfig",
    "TrainerSpec",
    "check_azure_compatible",
    "example_path",
    "from_wandb",
    "parse_expression",
    "parse_search_space",
    "parse_sweep",
    "read_sweep_file",
    "to_azure_sweep",
    "to_dict",
    "to_optuna",
]
