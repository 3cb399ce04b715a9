"""A sweep's config placed where it runs: the budget given on the command line written into
its limits (an Azure ML job file's document too), and its relative paths (data folders, a
SQLite storage) made absolute against the sweep file's folder, so that every worker, node
and later ``resume`` finds them wherever it runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from search_spaces.config import BUILTIN_DATASETS, SweepConfig


def with_limits(config: SweepConfig, max_trials: int | None, parallel: int | None) -> SweepConfig:
    """The config with ``run``'s budget in its limits (an Azure job file's document too)."""
    if max_trials is None and parallel is None:
        return config
    changed = {
        k: v
        for k, v in (("max_total_trials", max_trials), ("max_concurrent_trials", parallel))
        if v is not None
    }
    doc = config.azure_job
    if doc is not None:
        doc = {**doc, "limits": {**(doc.get("limits") or {}), **changed}}
    return dataclasses.replace(
        config, limits=dataclasses.replace(config.limits, **changed), azure_job=doc
    )


def with_absolute_paths(config: SweepConfig) -> SweepConfig:
    """Data folders relative to the sweep file, made absolute so every worker finds them."""
    args = dict(config.trainer.args)
    storage = absolute_sqlite(config.storage, config.base_dir)
    changed = storage != config.storage
    for key in ("data", "data_dir"):
        value = args.get(key)
        if (
            isinstance(value, str)
            and value not in BUILTIN_DATASETS
            and not value.startswith("azureml:")
            and not Path(value).is_absolute()
        ):
            args[key] = str((config.base_dir / value).resolve())
            changed = True
    if not changed:
        return config
    trainer = dataclasses.replace(config.trainer, args=args)
    return dataclasses.replace(config, trainer=trainer, storage=storage)


def absolute_sqlite(storage: str, base_dir: Path) -> str:
    """A relative ``sqlite:///PATH`` is relative to the sweep file, as data folders are (not
    to wherever the command runs), and stays so for ``resume`` from anywhere."""
    scheme, sep, rest = storage.partition(":///")
    if not sep or not scheme.lower().startswith("sqlite") or not rest or rest.startswith("/"):
        return storage
    path, q, query = rest.partition("?")
    return f"{scheme}:///{(base_dir / path).resolve()}{q}{query}"
