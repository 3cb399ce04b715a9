"""Writes a SweepConfig back to the sweep file's mapping: the inverse of :func:`parse_sweep`."""

from __future__ import annotations

from typing import Any

from search_spaces.config import SweepConfig, WarmStart


def to_dict(config: SweepConfig) -> dict[str, Any]:
    """The sweep file's mapping for ``config``; ``parse_sweep(to_dict(c)) == c``.

    An Azure ML job file comes back as the job document it was, with our keys beside it.
    """
    if config.azure_job is not None:
        return _azure_document(config)
    sampling: dict[str, Any] = {"type": config.sampling_algorithm.type}
    if config.sampling_algorithm.seed is not None:
        sampling["seed"] = config.sampling_algorithm.seed
    sampling.update(config.sampling_algorithm.options)
    limits = {k: v for k, v in vars(config.limits).items() if v is not None}
    out: dict[str, Any] = {
        "name": config.name,
        "trainer": {
            "entry": config.trainer.entry,
            "args": dict(config.trainer.args),
            "retries": config.trainer.retries,
            **({"env": dict(config.trainer.env)} if config.trainer.env else {}),
        },
        "search_space": {k: e.to_dict() for k, e in config.search_space.items()},
        "objective": [{"primary_metric": o.primary_metric, "goal": o.goal} for o in config.goals]
        if config.multi_objective
        else {
            "primary_metric": config.objective.primary_metric,
            "goal": config.objective.goal,
        },
        **({"constraints": [str(c) for c in config.constraints]} if config.constraints else {}),
        "sampling_algorithm": sampling,
        "early_termination": {
            "type": config.early_termination.type,
            **config.early_termination.options,
        },
        "limits": limits,
        "resources": dict(vars(config.resources)),
        "compute": config.compute,
        "storage": config.storage,
    }
    if config.register is not None:
        out["register"] = {k: v for k, v in vars(config.register).items() if v is not None}
    out["keep"] = _keep(config)
    out["checkpoint"] = _checkpoint(config)
    if config.warm_start is not None:
        out["warm_start"] = _warm_start(config.warm_start)
    if config.tracking_uri is not None:
        out["tracking"] = {"mlflow": config.tracking_uri}
    return out


def _checkpoint(config: SweepConfig) -> dict[str, Any]:
    policy = config.checkpoint
    return {"every": policy.every, **({"interval": policy.interval_s} if policy.interval_s else {})}


def _warm_start(warm: WarmStart) -> dict[str, Any]:
    trials = "all" if warm.best is None else f"best:{warm.best}"
    return {"from": list(warm.sweeps), "trials": trials}


def _keep(config: SweepConfig) -> dict[str, Any]:
    return {
        "models": "all" if config.keep.models is None else config.keep.models,
        "checkpoints": config.keep.checkpoints,
        "max_checkpoint_bytes": config.keep.max_checkpoint_bytes,
    }


def _azure_document(config: SweepConfig) -> dict[str, Any]:
    assert config.azure_job is not None
    doc = dict(config.azure_job)
    doc["name"] = config.name
    if config.on_azure:
        doc["compute"] = "azureml:" + config.compute.removeprefix("azure:")
    else:
        doc["compute"] = config.compute
    doc["local_resources"] = dict(vars(config.resources))
    doc["storage"] = config.storage
    if config.register is not None:
        doc["register"] = {k: v for k, v in vars(config.register).items() if v is not None}
    doc["keep"] = _keep(config)
    doc["checkpoint"] = _checkpoint(config)
    if config.warm_start is not None:
        doc["warm_start"] = _warm_start(config.warm_start)
    if config.tracking_uri is not None:
        doc["tracking"] = {"mlflow": config.tracking_uri}
    return doc
