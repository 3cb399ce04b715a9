"""A sweep compiled to a real Azure ML v2 sweep job, with the SDK's public entities.

The trial is a command job running ``python -m sweep.azure.trial`` (which calls the trainer
and logs per-epoch metrics to MLflow under their own names) on a copy of our packages, with
the search space, sampling, objective, early termination and limits translated exactly by
``search_spaces.to_azure_sweep``. azure-ai-ml is imported in this package only.
"""

from __future__ import annotations

import shlex
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from search_spaces import SweepConfig, to_azure_sweep
from search_spaces.config import BUILTIN_DATASETS
from sweep.errors import SweepInputError
from trainer.metrics import EPOCH_METRICS

PACKAGES = ("sweep", "search_spaces", "trainer", "reports")
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
_PINNED = (
    "torch",
    "torchvision",
    "optuna",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "numpy",
    "pandas",
    "plotly",
    "pillow",
    "pyyaml",
    "scikit-learn",
    "ray",
)


def cluster_name(compute: str) -> str:
    return compute.removeprefix("azure:")


def check_metric(config: SweepConfig) -> None:
    """Azure ML users' most common sweep bug: a primary metric the script never logs."""
    metric = config.objective.primary_metric
    if config.trainer.entry == "trainer" and metric not in EPOCH_METRICS:
        raise SweepInputError(
            f"objective.primary_metric: the built-in trainer logs {', '.join(EPOCH_METRICS)}"
            f", not {metric!r}; Azure ML would never see it and could not rank or stop trials"
        )


def stage_code(folder: Path) -> Path:
    """Copies our packages to ``folder/code``: the code Azure ML uploads for every trial."""
    code = folder / "code"
    shutil.rmtree(code, ignore_errors=True)
    code.mkdir(parents=True)
    root = Path(__file__).resolve().parents[2]
    for package in PACKAGES:
        shutil.copytree(
            root / package, code / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return code


def write_conda_file(folder: Path) -> Path:
    """The trial environment: our pinned packages, plus MLflow for Azure ML's metrics."""
    pins = []
    for name in _PINNED:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pins.append(name)
    conda = {
        "name": "sweep-trial",
        "channels": ["conda-forge"],
        "dependencies": ["python=3.11", "pip", {"pip": [*pins, "mlflow-skinny", "azureml-mlflow"]}],
    }
    path = folder / "conda.yaml"
    path.write_text(yaml.safe_dump(conda, sort_keys=False))
    return path


def trial_command(config: SweepConfig, data_input: bool) -> str:
    args: list[str] = [
        "python",
        "-m",
        "sweep.azure.trial",
        "--entry",
        config.trainer.entry,
        "--metric",
        config.objective.primary_metric,
    ]
    for key, value in config.trainer.args.items():
        if key in ("data", "data_dir", "output_dir"):
            continue
        args += [f"--{key}", shlex.quote(str(value))]
    data = config.trainer.args.get("data", config.trainer.args.get("data_dir"))
    if data_input:
        args += ["--data", "${{inputs.data}}"]
    elif data is not None:
        args += ["--data", shlex.quote(str(data))]
    args += ["--output_dir", "${{outputs.model}}"]
    res = config.resources
    if (
        res.workers_per_trial > 1
        and res.distribution == "horovod"
        and config.trainer.entry == "trainer"
    ):
        args += ["--distributed", "horovod"]  # Azure's MPI launch; DDP is picked up from env
    for key in config.search_space:
        args += [f"--{key}", "${{search_space." + key + "}}"]
    return " ".join(args)


def _data_path(config: SweepConfig) -> str | None:
    data = config.trainer.args.get("data", config.trainer.args.get("data_dir"))
    if not isinstance(data, str) or data in BUILTIN_DATASETS:
        return None
    return data


def _search_space(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from azure.ai.ml import sweep as s

    classes = {
        "choice": s.Choice,
        "randint": s.Randint,
        "uniform": s.Uniform,
        "quniform": s.QUniform,
        "loguniform": s.LogUniform,
        "qloguniform": s.QLogUniform,
        "normal": s.Normal,
        "qnormal": s.QNormal,
        "lognormal": s.LogNormal,
        "qlognormal": s.QLogNormal,
    }
    return {
        k: classes[d["type"]](**{f: v for f, v in d.items() if f != "type"})
        for k, d in space.items()
    }


def _sampling(form: dict[str, Any]) -> Any:
    from azure.ai.ml import sweep as s

    kind = form["type"]
    if kind == "random":
        return s.RandomSamplingAlgorithm(
            seed=form.get("seed"), rule=form.get("rule"), logbase=form.get("logbase")
        )
    return s.GridSamplingAlgorithm() if kind == "grid" else s.BayesianSamplingAlgorithm()


def _policy(form: dict[str, Any] | None) -> Any:
    from azure.ai.ml import sweep as s

    if form is None:
        return None
    options = {k: v for k, v in form.items() if k != "type"}
    return {
        "bandit": s.BanditPolicy,
        "median_stopping": s.MedianStoppingPolicy,
        "truncation_selection": s.TruncationSelectionPolicy,
    }[form["type"]](**options)


def build_sweep_job(
    config: SweepConfig, *, code_dir: Path, environment: Any, experiment_name: str | None = None
) -> Any:
    """The SDK's ``SweepJob`` for ``config``; raises before anything is built if Azure ML
    would refuse it (see ``search_spaces.check_azure_compatible``)."""
    from azure.ai.ml import Input, MpiDistribution, Output, PyTorchDistribution
    from azure.ai.ml import sweep as s
    from azure.ai.ml.entities import CommandJob, JobResourceConfiguration

    form = to_azure_sweep(config)
    check_metric(config)
    data = _data_path(config)
    inputs: dict[str, Any] | None = {"data": Input(type="uri_folder", path=data)} if data else None
    res = config.resources
    distribution, resources = None, None
    if res.workers_per_trial > 1:
        per_node = max(int(res.gpus_per_trial), 1)
        distribution = (
            MpiDistribution(process_count_per_instance=per_node)
            if res.distribution == "horovod"
            else PyTorchDistribution(process_count_per_instance=per_node)
        )
        resources = JobResourceConfiguration(instance_count=res.workers_per_trial)
    trial = CommandJob(
        command=trial_command(config, data_input=data is not None),
        code=str(code_dir),
        environment=environment,
        inputs=inputs,
        outputs={"model": Output(type="uri_folder")},
        distribution=distribution,
        resources=resources,
        environment_variables={"OMP_NUM_THREADS": str(max(int(res.cpus_per_trial), 1))},
    )
    limits = form["limits"]
    return s.SweepJob(
        display_name=config.name,
        experiment_name=experiment_name or config.name,
        compute=cluster_name(config.compute),
        trial=trial,
        inputs=inputs,
        outputs={"model": Output(type="uri_folder")},
        search_space=_search_space(form["search_space"]),
        objective=s.Objective(
            goal=config.objective.goal, primary_metric=config.objective.primary_metric
        ),
        sampling_algorithm=_sampling(form["sampling_algorithm"]),
        early_termination=_policy(form.get("early_termination")),
        limits=s.SweepJobLimits(
            max_total_trials=limits["max_total_trials"],
            max_concurrent_trials=limits.get("max_concurrent_trials"),
            timeout=int(limits["timeout"]) if "timeout" in limits else None,
            trial_timeout=int(limits["trial_timeout"]) if "trial_timeout" in limits else None,
        ),
    )


def make_environment(folder: Path, curated: str | None) -> Any:
    """A curated environment by name (``azureml:NAME@latest``), or one built from our pins."""
    if curated:
        return curated
    from azure.ai.ml.entities import Environment

    return Environment(
        name="sweep-trial", image=BASE_IMAGE, conda_file=str(write_conda_file(folder))
    )


def write_job_yaml(job: Any, path: Path) -> Path:
    """Writes the job as Azure ML YAML that ``load_job`` and ``az ml job create -f`` accept.

    The SDK's own dump writes local input folders as ``azureml:/local/path`` (an asset id
    that does not exist) and absolute code paths; both are rewritten relative to the file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    job.dump(str(path))
    data = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json",
        **yaml.safe_load(path.read_text()),
    }
    for holder in (data, data.get("trial", {})):
        for spec in (holder.get("inputs") or {}).values():
            if isinstance(spec, dict) and str(spec.get("path", "")).startswith("azureml:/"):
                local = Path(spec["path"].removeprefix("azureml:"))
                spec["path"] = relative_path(local, path.parent)
    trial = data.get("trial", {})
    if "code" in trial and Path(trial["code"]).is_absolute():
        trial["code"] = relative_path(Path(trial["code"]), path.parent)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def relative_path(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), start.resolve())
