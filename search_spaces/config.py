"""The sweep's settings as plain frozen values; what a sweep file means, with its defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search_spaces.expressions import Expression
from search_spaces.objectives import Constraint
from search_spaces.policies import TABLE as POLICY_TABLE
from search_spaces.policies import Policy
from search_spaces.samplers import TABLE as SAMPLER_TABLE

# Azure ML's own sampling algorithms (search_spaces.samplers has them all).
AZURE_SAMPLERS = tuple(k for k, cls in SAMPLER_TABLE.items() if cls.azure)

# Azure ML's own early-termination policies (search_spaces.policies has them all).
AZURE_POLICIES = tuple(k for k, cls in POLICY_TABLE.items() if cls.azure)

BUILTIN_DATASETS = ("digits",)


@dataclass(frozen=True)
class TrainerSpec:
    """What one trial runs: the built-in trainer, or ``package.module:function``."""

    entry: str = "trainer"
    args: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variables of the trial's process, wherever it runs (a cluster's nodes
    too); ``${VAR}`` is filled from the coordinator's environment when a trial starts."""


@dataclass(frozen=True)
class Objective:
    primary_metric: str = "best_val_acc"
    goal: str = "maximize"


@dataclass(frozen=True)
class SamplingAlgorithm:
    type: str = "random"
    seed: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EarlyTermination:
    """An early-termination policy and its settings (evaluation_interval, slack_factor, …)."""

    type: str = "none"
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def policy(self) -> Policy:
        """The policy as its dataclass (search_spaces.policies), checked again."""
        return POLICY_TABLE[self.type](**self.options)


@dataclass(frozen=True)
class Limits:
    max_total_trials: int = 20
    max_concurrent_trials: int | None = None
    timeout: float | None = None
    trial_timeout: float | None = None


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    workers_per_trial: int = 1
    distribution: str = "ddp"


@dataclass(frozen=True)
class Keep:
    """What a sweep keeps on disk besides every trial's records, logs and ``best/``."""

    models: int | None = 3
    """How many completed trials, the best first, keep their model files; None ('all'):
    every trial keeps them, pruned and failed ones too."""
    checkpoints: str = "latest"
    """``latest``: a running trial's latest checkpoint, removed when it ends except the best
    completed trial's (which ``sweep continue`` trains further); ``all``: every trial's
    latest checkpoint stays when it ends; ``none``: trials get no checkpoint folder (every
    interruption starts them over)."""
    max_checkpoint_bytes: int = 1024**3
    """A checkpoint's files in all (they travel through Ray's object store and the
    coordinator's memory whole): a file past it is left out, with a warning."""


@dataclass(frozen=True)
class CheckpointPolicy:
    """When a trial's trainer saves its checkpoint (``checkpoint:``). Besides these, always
    at a rung where promotion may pause it, at a PBT boundary and at its last epoch."""

    every: int = 1
    """Every this many epochs (1: each epoch: an interruption loses no epoch)."""
    interval_s: float | None = None
    """Also whenever this long has passed since the last save (against a crash)."""

    @property
    def each_epoch(self) -> bool:
        return self.every == 1


AUTO = "auto"


@dataclass(frozen=True)
class WarmStart:
    """``warm_start:``: earlier sweeps whose completed trials seed this sweep's sampler."""

    sweeps: tuple[str, ...]
    """Their names, under the same root; ``("auto",)``: every earlier sweep there of the same
    trainer (entry and fixed arguments, or command and inputs) and objective."""
    best: int | None = None
    """Only the best this many of each (``trials: best:K``); None: all of them."""

    @property
    def auto(self) -> bool:
        return self.sweeps == (AUTO,)

    def lineage(self) -> str:
        """What status and the report say of the sweep it warm-started."""
        names = "every earlier sweep of this trainer" if self.auto else ", ".join(self.sweeps)
        return (
            f"warm-started from {names}: their trials taught the sampler and are not this "
            "sweep's (not listed, not counted)"
        )


@dataclass(frozen=True)
class Register:
    model_name: str
    root: str | None = None


@dataclass(frozen=True)
class JobInput:
    """One of an Azure ML job's ``inputs``: a literal value, or a file or folder by path."""

    type: str
    """``literal`` for a plain value; else Azure's asset type (uri_file, uri_folder, …)."""
    value: Any = None
    """The literal's value, or the path as written (local, or remote: https://, azureml:…)."""
    mode: str | None = None

    @property
    def is_remote(self) -> bool:
        return (
            self.type != "literal"
            and isinstance(self.value, str)
            and self.value.startswith(REMOTE_PREFIXES)
        )


REMOTE_PREFIXES = (
    "azureml:",
    "http://",
    "https://",
    "wasbs://",
    "wasb://",
    "abfss://",
    "abfs://",
    "adl://",
    "s3://",
    "gs://",
)


@dataclass(frozen=True)
class Distribution:
    """How many processes one trial starts, as Azure ML's ``trial.distribution`` says."""

    type: str
    """pytorch (torch.distributed's environment), mpi (Horovod's launcher) or tensorflow."""
    process_count_per_instance: int = 1
    instance_count: int = 1

    @property
    def processes(self) -> int:
        return self.process_count_per_instance * self.instance_count


@dataclass(frozen=True)
class CommandTrial:
    """An Azure ML command trial: a shell command run in a snapshot of ``code`` per trial."""

    command: str
    code: Path | None = None
    environment: Any = None
    """As written; used on Azure ML only (locally, trials run in the current environment)."""
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    distribution: Distribution | None = None
    inputs: Mapping[str, JobInput] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepConfig:
    """One whole sweep, as a sweep file describes it."""

    name: str
    search_space: Mapping[str, Expression]
    trainer: TrainerSpec = field(default_factory=TrainerSpec)
    objective: Objective = field(default_factory=Objective)
    """The objective, or the first of several: what a pick is best on."""
    objectives: tuple[Objective, ...] = ()
    """All of them, in order, when the file lists several; empty for one."""
    constraints: tuple[Constraint, ...] = ()
    sampling_algorithm: SamplingAlgorithm = field(default_factory=SamplingAlgorithm)
    early_termination: EarlyTermination = field(default_factory=EarlyTermination)
    limits: Limits = field(default_factory=Limits)
    resources: Resources = field(default_factory=Resources)
    compute: str = "local"
    storage: str = "default"
    register: Register | None = None
    keep: Keep = field(default_factory=Keep)
    checkpoint: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    warm_start: WarmStart | None = None
    tracking_uri: str | None = None
    """``tracking: {mlflow: URI}``: the MLflow server the sweep is logged to (without it,
    ``MLFLOW_TRACKING_URI`` if set)."""
    command: CommandTrial | None = None
    """Set for an Azure ML sweep-job file: its ``trial`` runs instead of ``trainer``."""
    azure_job: Mapping[str, Any] | None = field(default=None, compare=False)
    """The Azure ML sweep-job document as written (after --set): what goes to Azure ML."""
    # Where relative paths in the file (the data folder) are resolved from; not a key.
    base_dir: Path = field(default=Path("."), compare=False)

    @property
    def direction(self) -> str:
        return self.objective.goal

    @property
    def goals(self) -> tuple[Objective, ...]:
        """Every objective, in order (one for a single-objective sweep)."""
        return self.objectives or (self.objective,)

    @property
    def multi_objective(self) -> bool:
        return len(self.goals) > 1

    @property
    def maximize(self) -> bool:
        """Whether the (first) objective is maximized."""
        return self.objective.goal == "maximize"

    @property
    def maximizes(self) -> list[bool]:
        """Per objective, whether it is maximized."""
        return [o.goal == "maximize" for o in self.goals]

    @property
    def on_azure(self) -> bool:
        """Whether the sweep runs on Azure ML (``compute: azure:CLUSTER``)."""
        return self.compute.startswith("azure:")
