"""Reads a sweep file into a :class:`SweepConfig`, checking every key before anything runs."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from search_spaces import _checks as c
from search_spaces._errors import SearchSpaceError
from search_spaces.config import (
    BUILTIN_DATASETS,
    Resources,
    SweepConfig,
    TrainerSpec,
)
from search_spaces.env_vars import check_env
from search_spaces.sections import (
    SAFE_NAME,
    SHARED_KEYS,
    parse_compute,
    parse_resources,
    sweep_name,
    sweep_sections,
)
from search_spaces.space_reader import SearchSpaceWarning, parse_expression, parse_search_space
from search_spaces.yaml_file import load_yaml

_ENTRY = re.compile(r"^(trainer|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")

TOP_KEYS = {
    "$schema",
    "type",
    "name",
    "trainer",
    "search_space",
    "objective",
    "sampling_algorithm",
    "early_termination",
    "limits",
    "resources",
    "local_resources",
    "compute",
    "constraints",
    *SHARED_KEYS,
}


def read_sweep_file(
    path: str | Path, overrides: Sequence[str] = (), trainer: str | None = None
) -> SweepConfig:
    """Reads and validates a sweep file.

    Args:
        overrides: ``KEY=VALUE`` items set on the file before it is checked (``--set``).
        trainer: the trainer entry for a W&B sweep config (``--trainer``).

    Example:
        >>> config = read_sweep_file("space.yaml")  # doctest: +SKIP
        >>> sorted(config.search_space)             # doctest: +SKIP
        ['learning_rate', 'momentum', 'num_epochs']
    """
    from search_spaces.overrides import apply_overrides

    path = Path(path)
    data = apply_overrides(load_yaml(path), overrides)
    if trainer is not None and "trial" not in data:
        section = data.get("trainer")
        data["trainer"] = {**(section if isinstance(section, Mapping) else {}), "entry": trainer}
    return parse_sweep(data, default_name=path.stem, base_dir=path.parent)


def parse_sweep(
    data: Mapping[str, Any], *, default_name: str = "sweep", base_dir: Path | None = None
) -> SweepConfig:
    """Builds a SweepConfig from a sweep file's mapping (see SPEC section 1).

    Three kinds of file are sweep files: ours, an Azure ML v2 sweep job as written (it has a
    ``trial``), and a W&B sweep config (``method`` and ``parameters``; it needs ``trainer``).
    Every problem of the file is reported at once, one line each.
    """
    data = c.mapping(data, "")
    base_dir = Path(base_dir) if base_dir is not None else Path(".")
    _refuse_other_job_types(data)
    if "trial" in data:
        from search_spaces.azure_job_file import parse_azure_job

        return parse_azure_job(data, default_name=default_name, base_dir=base_dir)
    if is_wandb(data):
        return _parse_wandb(data, default_name, base_dir)
    problems = c.Problems()
    with problems.check():
        c.no_unknown_keys(data, "", TOP_KEYS)
    if "resources" in data and "local_resources" in data:
        problems.errors.append(
            SearchSpaceError(
                "local_resources", "is the new spelling of resources; keep only one of them"
            )
        )
    name = default_name
    with problems.check():
        name = sweep_name(data, default_name)
    trainer = TrainerSpec()
    with problems.check():
        trainer = _trainer(data.get("trainer", {}), base_dir)
    sections = sweep_sections(data, problems, azure=False)
    space = sections.get("search_space") or {}
    with problems.check():
        clash = sorted(set(space) & set(trainer.args))
        if clash:
            raise SearchSpaceError(
                f"search_space.{clash[0]}", "is also fixed in trainer.args; keep it in one place"
            )
    resources = Resources()
    with problems.check():
        resources = parse_resources(
            data.get("local_resources", data.get("resources", {})),
            "local_resources" if "local_resources" in data else "resources",
        )
    compute = "local"
    with problems.check():
        compute = parse_compute(data.get("compute", "local"))
    problems.raise_any()
    config = SweepConfig(
        name=name,
        search_space=space,
        trainer=trainer,
        resources=resources,
        compute=compute,
        base_dir=base_dir,
        **{k: v for k, v in sections.items() if k != "search_space"},
    )
    if config.on_azure:
        # Azure ML refuses some combinations that run fine locally: check them now, not on submit.
        from search_spaces.azure_form import check_azure_compatible

        check_azure_compatible(config)
    return config


BESIDE_WANDB = SHARED_KEYS | {"compute", "resources", "local_resources"}
"""Our sections a W&B sweep config may carry too (W&B's has no key of these names)."""


def _parse_wandb(data: Mapping[str, Any], default_name: str, base_dir: Path) -> SweepConfig:
    from search_spaces._errors import SearchSpaceErrors
    from search_spaces.wandb_form import from_wandb, wandb_path

    # Where and how the sweep runs here (W&B's file says none of it): our own sections, put
    # beside W&B's keys by --compute, --register or --set, pass as they are.
    ours = {k: v for k, v in data.items() if k in BESIDE_WANDB}
    wandb = {k: v for k, v in data.items() if k not in ours and k != "trainer"}
    trainer = data.get("trainer")
    converted = from_wandb(wandb, trainer=c.mapping(trainer, "trainer") if trainer else None)
    converted.update(ours)
    if "trainer" not in converted:
        raise SearchSpaceError(
            "trainer",
            "a W&B sweep config needs our trainer: section (or --trainer "
            "package.module:function) in place of W&B's program",
        )
    try:
        return parse_sweep(converted, default_name=default_name, base_dir=base_dir)
    except SearchSpaceError as exc:
        errors = exc.errors if isinstance(exc, SearchSpaceErrors) else [exc]
        renamed = [
            SearchSpaceError(
                wandb_path(e.path), e.reason.replace("min_value", "min").replace("max_value", "max")
            )
            for e in errors
        ]
        raise (renamed[0] if len(renamed) == 1 else SearchSpaceErrors(renamed)) from None


def is_wandb(data: Mapping[str, Any]) -> bool:
    """A W&B sweep config: ``parameters`` and ``method``, or a W&B Launch one (``scheduler``
    or a training ``job``); none of our or Azure's sections."""
    if "search_space" in data or "trial" in data:
        return False
    return (
        ("parameters" in data and "method" in data)
        or "scheduler" in data
        or ("job" in data and ("parameters" in data or "metric" in data))
    )


def _refuse_other_job_types(data: Mapping[str, Any]) -> None:
    kind = data.get("type")
    if kind is None or kind == "sweep":
        return
    if kind == "pipeline":
        raise SearchSpaceError(
            "type",
            "this is an Azure ML pipeline job, not a sweep job; sweep runs files of "
            "type: sweep (a sweep step inside a pipeline runs on Azure ML only)",
        )
    if kind == "sweep_job":
        raise SearchSpaceError(
            "type",
            "'sweep_job' is the pre-GA (preview) spelling that Azure ML no longer "
            "accepts; write type: sweep, as the v2 sweepJob schema does",
        )
    raise SearchSpaceError("type", f"expected 'sweep', got {kind!r}")


def _trainer(value: Any, base_dir: Path) -> TrainerSpec:
    d = c.mapping(value, "trainer")
    c.no_unknown_keys(d, "trainer", {"entry", "args", "retries", "env"})
    entry = c.string(d, "entry", "trainer", "trainer")
    if not _ENTRY.match(entry):
        raise SearchSpaceError(
            "trainer.entry", f"{entry!r} must be 'trainer' or 'package.module:function'"
        )
    args = dict(c.mapping(d.get("args", {}), "trainer.args"))
    retries = c.integer(d, "retries", "trainer", 0)
    c.positive(retries, "trainer.retries", allow_zero=True)
    for key in ("data", "data_dir"):
        if key in args:
            _check_data(args[key], f"trainer.args.{key}", base_dir)
    return TrainerSpec(
        entry=entry, args=args, retries=retries, env=check_env(d.get("env") or {}, "trainer.env")
    )


def _check_data(value: Any, path: str, base_dir: Path) -> None:
    if not isinstance(value, str) or not value:
        raise SearchSpaceError(path, f"expected a data set name or a folder, got {value!r}")
    if value in BUILTIN_DATASETS or value.startswith("azureml:"):
        return
    folder = Path(value) if Path(value).is_absolute() else base_dir / value
    if not folder.is_dir():
        raise SearchSpaceError(
            path,
            f"{value!r} is neither a built-in data set ({', '.join(BUILTIN_DATASETS)}) "
            f"nor a folder ({folder} does not exist); point it at yours with --set "
            f"{path}=PATH, or use --set {path}=digits",
        )
    for split in ("train", "val"):
        if not (folder / split).is_dir():
            raise SearchSpaceError(path, f"{folder} has no {split}/ folder of class sub-folders")


__all__ = [
    "SAFE_NAME",
    "SearchSpaceWarning",
    "is_wandb",
    "load_yaml",
    "parse_compute",
    "parse_expression",
    "parse_resources",
    "parse_search_space",
    "parse_sweep",
    "read_sweep_file",
    "sweep_name",
    "sweep_sections",
]
