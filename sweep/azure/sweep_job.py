"""A sweep sent to an Azure ML compute cluster: submit, stream, fetch the best, register.

Azure ML runs the whole sweep there (its sampler, its early termination, its trials), so this
is not a trial backend but the other place a sweep can go. The workspace client is the only
thing that talks to Azure; tests hand in a fake one at exactly that boundary.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from search_spaces import SweepConfig
from sweep.azure.job import cluster_name
from sweep.errors import SweepError, SweepInputError
from sweep.records import layout
from sweep.result import BestTrial, SweepResult
from sweep.trainers.trial_kinds import CommandTrials, trial_kind

logger = logging.getLogger(__name__)

TERMINAL_OK = "Completed"
SUBMITTED = "submitted.json"


def connect(workspace_config: str | Path | None = None) -> Any:
    """An ``MLClient`` for the workspace in config.json (searched from here upwards)."""
    try:
        from azure.ai.ml import MLClient
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise SweepInputError(
            "compute: azure needs the Azure extra: pip install 'sweep[azure]'"
        ) from None
    from azure.ai.ml.exceptions import ValidationException

    where = str(workspace_config) if workspace_config else None
    try:
        return MLClient.from_config(credential=DefaultAzureCredential(), path=where)
    except ValidationException as exc:
        if "could not find config.json" in str(exc):
            raise SweepInputError(
                "no Azure ML workspace: put the workspace's config.json (from its overview "
                "page in Azure ML studio) in this folder or a parent, or pass "
                "--workspace-config"
            ) from None
        raise SweepInputError(f"the workspace's config.json: {str(exc)[:200]}") from None
    except ValueError as exc:  # the SDK reads config.json with json.load
        raise SweepInputError(f"the workspace's config.json is not valid JSON ({exc})") from None


def _azure_call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """One call to Azure ML, its failures turned into one sentence that says what to do."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    try:
        return fn(*args, **kwargs)
    except ClientAuthenticationError:
        raise SweepInputError(
            f"{what}: Azure sign-in failed; run 'az login' or set the AZURE_* variables of a "
            "service principal (DefaultAzureCredential)"
        ) from None
    except ResourceNotFoundError as exc:
        raise SweepInputError(f"{what}: not found in the workspace ({exc.reason})") from None
    except ServiceRequestError:
        raise SweepError(f"{what}: cannot reach Azure ML; check the network") from None
    except HttpResponseError as exc:
        raise SweepError(f"{what}: Azure ML answered {exc.status_code}: {exc.reason}") from None


class AzureMLRunner:
    """Runs a sweep as an Azure ML sweep job (``Sweep.run`` uses one for ``azure:`` compute).

    Example:
        >>> from sweep import Sweep
        >>> from sweep.azure.sweep_job import AzureMLRunner
        >>> runner = AzureMLRunner(workspace_config="config.json", progress=print)  # doctest: +SKIP
        >>> Sweep.from_yaml("job.yml", azure=runner).run().workspace_model  # doctest: +SKIP
        'pt-dnn:3'
    """

    def __init__(
        self,
        client: Any = None,
        *,
        workspace_config: str | Path | None = None,
        environment: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """``progress`` hears what the user should see as it happens (the job's name and
        studio URL); by default it is only logged, the CLI prints it."""
        self._client = client
        self.workspace_config = workspace_config
        self.environment = environment
        self.progress = progress or logger.info

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.workspace_config)
        return self._client

    def compile(self, config: SweepConfig, sweep_dir: Path) -> tuple[Any, Path]:
        """Builds the job and writes ``sweeps/NAME/azure/sweep-job.yaml``; submits nothing."""
        folder = sweep_dir / layout.AZURE
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / layout.AZURE_JOB
        if isinstance(trial_kind(config), CommandTrials):  # the user's job file, as written
            from sweep.azure.job_file import write_and_load

            return write_and_load(config, path), path
        from sweep.azure.job import build_sweep_job, make_environment, stage_code, write_job_yaml

        job = build_sweep_job(
            config,
            code_dir=stage_code(folder),
            environment=make_environment(folder, self.environment),
        )
        return job, write_job_yaml(job, path)

    @staticmethod
    def submitted(sweep_dir: Path) -> str | None:
        """The name of the job this sweep already submitted (resume re-attaches to it)."""
        record = sweep_dir / layout.AZURE / SUBMITTED
        return str(json.loads(record.read_text())["job"]) if record.exists() else None

    def run(self, config: SweepConfig, sweep_dir: Path) -> SweepResult:
        """Submits (or, on resume, re-attaches to) the sweep job and sees it to the end: the
        best trial's outputs come back to ``best/`` and are registered."""
        client = self.client
        name = self.submitted(sweep_dir)
        if name is not None:
            self.progress(f"re-attaching to Azure ML sweep job {name}")
        else:
            cluster = cluster_name(config.compute)
            _azure_call(f"compute: cluster {cluster!r}", client.compute.get, cluster)
            job, _ = self.compile(config, sweep_dir)
            submitted = _azure_call(
                "submitting the sweep job",
                client.jobs.create_or_update,
                job,
                experiment_name=config.name,
            )
            name = submitted.name
            (sweep_dir / layout.AZURE / SUBMITTED).write_text(
                json.dumps({"job": name, "studio_url": submitted.studio_url}, indent=2)
            )
            self.progress(f"submitted Azure ML sweep job {name}: {submitted.studio_url}")
        _azure_call("streaming the sweep job", client.jobs.stream, name)
        final = _azure_call("reading the sweep job", client.jobs.get, name)
        if final.status != TERMINAL_OK:
            raise SweepError(
                f"the Azure ML sweep job {name} ended {final.status}; see {final.studio_url}"
            )
        self.progress(f"Azure ML sweep job {name} completed")
        return self._collect(config, sweep_dir, name)

    def _collect(self, config: SweepConfig, sweep_dir: Path, name: str) -> SweepResult:
        from sweep.model.best_model import (
            export_best,
            register_best,
            trainer_lineage,
            trial_lineage,
        )

        result = SweepResult(config.name, sweep_dir, None, None, pd.DataFrame(), job=name)
        kind = trial_kind(config)
        output = kind.azure_output(config)
        if output is None:
            logger.warning(
                "the job declares no outputs: nothing of its best trial to fetch or register"
            )
            return result
        download = sweep_dir / layout.AZURE / "best-trial"
        _azure_call(
            "downloading the best trial's outputs",
            self.client.jobs.download,
            name,
            download_path=str(download),
            output_name=output,
        )
        outputs = download / "named-outputs" / output
        result = dataclasses.replace(result, outputs=outputs)
        found = sorted(outputs.rglob(layout.MODEL)) if outputs.is_dir() else []
        model_pt = found[0] if found else outputs / layout.MODEL
        if not model_pt.is_file() and kind.own_outputs:
            # The script's own outputs: registered in the workspace as they are.
            if config.register is not None:
                result = dataclasses.replace(
                    result, workspace_model=self._register_output(config, name, output)
                )
            return result
        if not model_pt.is_file():
            raise SweepError(f"the best trial of {name} left no model.pt in its outputs")
        params = _read_json(outputs / "params.json")
        history = layout.read_history(outputs)  # the trainer's own metrics.jsonl, same form
        metric = config.objective.primary_metric
        metrics = history[-1] if history else {}
        value = metrics.get(metric)
        best_params = {k: params.get(k) for k in config.search_space}
        card = {
            **trial_lineage(
                config, config.name, f"azureml:{name}", value, best_params, metrics, history
            ),
            **trainer_lineage(config),
        }
        data = config.trainer.args.get("data")
        best_dir = export_best(
            model_pt, sweep_dir / layout.BEST, card, data=str(data) if data else None
        )
        best = BestTrial(
            None,
            best_params,
            float(value) if value is not None else float("nan"),
            metrics,
            best_dir / layout.MODEL if best_dir else model_pt,
        )
        result = dataclasses.replace(result, best=best, best_dir=best_dir)
        if config.register is not None:
            result = dataclasses.replace(
                result, workspace_model=self._register_output(config, name, output)
            )
            if best_dir is not None:
                local = register_best(config, best_dir)
                result = dataclasses.replace(result, registered=str(local) if local else None)
        return result

    def _register_output(self, config: SweepConfig, job: str, output: str) -> str:
        """Registers the best trial's named output in the workspace; ``NAME:VERSION``."""
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        assert config.register is not None
        model = Model(
            path=f"azureml://jobs/{job}/outputs/{output}",
            name=config.register.model_name,
            type=AssetTypes.CUSTOM_MODEL,
            description=f"best trial of sweep {config.name} ({job})",
        )
        remote = _azure_call(
            "registering the model in the workspace", self.client.models.create_or_update, model
        )
        return f"{remote.name}:{remote.version}"


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}
