"""A sweep sent to an Azure ML compute cluster: submit, stream, fetch the best, register.

Azure ML runs the whole sweep there (its sampler, its early termination, its trials), so this
is not a trial backend but the other place a sweep can go. The workspace client is the only
thing that talks to Azure; tests hand in a fake one at exactly that boundary.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweep import layout
from sweep.api import Sweep
from sweep.backends.azure_job import (
    build_sweep_job,
    cluster_name,
    make_environment,
    stage_code,
    write_job_yaml,
)
from sweep.errors import SweepError, SweepInputError

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
    try:
        return MLClient.from_config(credential=DefaultAzureCredential(),
                                    path=str(workspace_config) if workspace_config else None)
    except Exception as exc:  # the SDK raises a bare ValidationException/ValueError here
        raise SweepInputError(
            "no Azure ML workspace: put the workspace's config.json (from its overview page in "
            "Azure ML studio) in this folder or a parent, or pass --workspace-config"
            f" ({type(exc).__name__})"
        ) from None


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
    """Runs a sweep as an Azure ML sweep job."""

    def __init__(self, client: Any = None, *, workspace_config: str | Path | None = None,
                 environment: str | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        """``progress`` hears what the user should see as it happens (the job's name and
        studio URL); the library only logs it, the CLI prints it."""
        self._client = client
        self.workspace_config = workspace_config
        self.environment = environment
        self.progress = progress or logger.info

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.workspace_config)
        return self._client

    def compile(self, sweep: Sweep) -> tuple[Any, Path]:
        """Builds the job and writes ``sweeps/NAME/azure/sweep-job.yaml``; submits nothing."""
        folder = sweep.sweep_dir / layout.AZURE
        folder.mkdir(parents=True, exist_ok=True)
        if sweep.config.command is not None:
            from sweep.backends.azure_job_file import write_and_load

            path = folder / "sweep-job.yaml"
            return write_and_load(sweep.config, path), path
        job = build_sweep_job(sweep.config, code_dir=stage_code(folder),
                              environment=make_environment(folder, self.environment))
        return job, write_job_yaml(job, folder / "sweep-job.yaml")

    def run(self, sweep: Sweep) -> dict[str, Any]:
        """Submits (or, on resume, re-attaches to) the sweep job and sees it to the end.

        Returns what the sweep left: the job's name, the local best/ folder and the
        registered model names.
        """
        folder = sweep.sweep_dir / layout.AZURE
        record = folder / SUBMITTED
        client = self.client
        if record.exists():
            name = json.loads(record.read_text())["job"]
            self.progress(f"re-attaching to Azure ML sweep job {name}")
        else:
            cluster = cluster_name(sweep.config.compute)
            _azure_call(f"compute: cluster {cluster!r}", client.compute.get, cluster)
            job, _ = self.compile(sweep)
            submitted = _azure_call("submitting the sweep job", client.jobs.create_or_update,
                                    job, experiment_name=sweep.name)
            name = submitted.name
            record.write_text(json.dumps({"job": name, "studio_url": submitted.studio_url},
                                         indent=2))
            sweep.save_config()  # what 'sweep resume NAME' reads to re-attach
            self.progress(f"submitted Azure ML sweep job {name}: {submitted.studio_url}")
        _azure_call("streaming the sweep job", client.jobs.stream, name)
        final = _azure_call("reading the sweep job", client.jobs.get, name)
        if final.status != TERMINAL_OK:
            raise SweepError(f"the Azure ML sweep job {name} ended {final.status}; "
                             f"see {final.studio_url}")
        return self._collect(sweep, name)

    def _collect(self, sweep: Sweep, name: str) -> dict[str, Any]:
        from sweep.best_model import export_best, register_best

        output = "model"
        if sweep.config.command is not None:
            if not sweep.config.command.outputs:
                return {"job": name, "best_dir": None}  # the job declares no outputs to fetch
            output = sweep.config.command.outputs[0]
        download = sweep.sweep_dir / layout.AZURE / "best-trial"
        _azure_call("downloading the best trial's outputs", self.client.jobs.download, name,
                    download_path=str(download), output_name=output)
        outputs = download / "named-outputs" / output
        found = sorted(outputs.rglob("model.pt")) if outputs.is_dir() else []
        model_pt = found[0] if found else outputs / "model.pt"
        if not model_pt.is_file() and sweep.config.command is not None:
            # The script's own outputs: registered in the workspace as they are.
            found_out: dict[str, Any] = {"job": name, "best_dir": None, "outputs": outputs}
            if sweep.config.register is not None:
                found_out["workspace_model"] = self._register_output(sweep, name, output)
            return found_out
        if not model_pt.is_file():
            raise SweepError(f"the best trial of {name} left no model.pt in its outputs")
        params = _read_json(outputs / "params.json")
        history = layout.read_history(outputs)  # the trainer's own metrics.jsonl, same form
        metric = sweep.config.objective.primary_metric
        lineage = {
            "sweep": sweep.name, "trial": f"azureml:{name}",
            "objective": {"primary_metric": metric, "goal": sweep.config.objective.goal,
                          "value": history[-1].get(metric) if history else None},
            "params": {k: params.get(k) for k in sweep.config.search_space},
            "metrics": history[-1] if history else {}, "history": history,
            "trainer": {"entry": sweep.config.trainer.entry,
                        "args": dict(sweep.config.trainer.args)},
        }
        data = sweep.config.trainer.args.get("data")
        best_dir = export_best(model_pt, sweep.sweep_dir / layout.BEST, lineage,
                               data=str(data) if data else None)
        registered: dict[str, Any] = {"job": name, "best_dir": best_dir}
        if sweep.config.register is not None:
            registered["workspace_model"] = self._register_output(sweep, name, output)
            if best_dir is not None:
                local = register_best(sweep.config, best_dir)
                registered["registered"] = str(local) if local else None
        return registered

    def _register_output(self, sweep: Sweep, job: str, output: str) -> str:
        """Registers the best trial's named output in the workspace; ``NAME:VERSION``."""
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        assert sweep.config.register is not None
        model = Model(path=f"azureml://jobs/{job}/outputs/{output}",
                      name=sweep.config.register.model_name, type=AssetTypes.CUSTOM_MODEL,
                      description=f"best trial of sweep {sweep.name} ({job})")
        remote = _azure_call("registering the model in the workspace",
                             self.client.models.create_or_update, model)
        return f"{remote.name}:{remote.version}"


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}
