"""Azure ML: the compiled job against the SDK's own entities and loader; the submit flow
against a fake MLClient at the SDK boundary (Azure's servers are out of reach here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("azure.ai.ml")

from azure.ai.ml import load_job  # noqa: E402
from azure.ai.ml import sweep as s  # noqa: E402
from azure.ai.ml.entities import AmlCompute, Model  # noqa: E402
from azure.core.exceptions import (  # noqa: E402
    ClientAuthenticationError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from search_spaces import parse_sweep  # noqa: E402
from sweep import Sweep  # noqa: E402
from sweep.azure.sweep_job import AzureMLRunner  # noqa: E402
from sweep.azure.trial import main as trial_main  # noqa: E402
from sweep.cli import main  # noqa: E402
from sweep.errors import SweepError, SweepInputError  # noqa: E402

SPACE = {
    "a": {"type": "choice", "values": [16, 32]},
    "b": {"type": "randint", "upper": 4},
    "c": {"type": "uniform", "min_value": 0.5, "max_value": 0.99},
    "d": {"type": "quniform", "min_value": 2, "max_value": 10, "q": 2},
    "learning_rate": {"type": "loguniform", "min_value": -9.2, "max_value": -2.3},
    "f": {"type": "qloguniform", "min_value": 0, "max_value": 3, "q": 1},
    "g": {"type": "normal", "mu": 0, "sigma": 1},
    "h": {"type": "qnormal", "mu": 0, "sigma": 1, "q": 0.5},
    "i": {"type": "lognormal", "mu": 0, "sigma": 1},
    "j": {"type": "qlognormal", "mu": 0, "sigma": 1, "q": 1},
    "k": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "m": {"type": "int", "low": 1, "high": 3},
}
SDK_TYPES = {
    "a": s.Choice,
    "b": s.Randint,
    "c": s.Uniform,
    "d": s.QUniform,
    "learning_rate": s.LogUniform,
    "f": s.QLogUniform,
    "g": s.Normal,
    "h": s.QNormal,
    "i": s.LogNormal,
    "j": s.QLogNormal,
    "k": s.LogUniform,
    "m": s.Choice,
}
POLICIES = [
    ({"type": "bandit", "slack_factor": 0.1, "delay_evaluation": 2}, s.BanditPolicy),
    ({"type": "median_stopping", "evaluation_interval": 2}, s.MedianStoppingPolicy),
    (
        {"type": "truncation_selection", "truncation_percentage": 20, "delay_evaluation": 3},
        s.TruncationSelectionPolicy,
    ),
]


def _config(tmp_path: Path, **extra) -> dict:
    data = tmp_path / "fowl_data"
    for split in ("train", "val"):
        for cls in ("chickens", "turkeys"):
            (data / split / cls).mkdir(parents=True, exist_ok=True)
    return {
        "name": "fowl",
        "search_space": SPACE,
        "compute": "azure:gpu-cluster",
        "trainer": {"args": {"data": str(data), "image_size": 16}},
        "sampling_algorithm": {"type": "random", "seed": 7, "rule": "sobol"},
        "limits": {
            "max_total_trials": 8,
            "max_concurrent_trials": 2,
            "timeout": 3600,
            "trial_timeout": 600,
        },
        **extra,
    }


@pytest.mark.parametrize("policy, cls", POLICIES, ids=[p[0]["type"] for p in POLICIES])
def test_job_yaml_loads_with_the_sdk_and_means_the_same_search(tmp_path, policy, cls):
    config = parse_sweep(_config(tmp_path, early_termination=policy))
    sweep = Sweep(config=config, root=tmp_path / "sweeps")
    _, path = AzureMLRunner().compile(sweep.config, sweep.sweep_dir)
    assert path == tmp_path / "sweeps" / "fowl" / "azure" / "sweep-job.yaml"
    job = load_job(str(path))
    assert isinstance(job, s.SweepJob)
    for key, expected in SDK_TYPES.items():
        assert type(job.search_space[key]) is expected, key
    assert job.search_space["learning_rate"].min_value == -9.2
    assert job.search_space["m"].values == [1, 2, 3]
    assert isinstance(job.early_termination, cls)
    for key, value in policy.items():
        if key != "type":
            assert getattr(job.early_termination, key) == value
    assert job.sampling_algorithm.seed == 7 and job.sampling_algorithm.rule == "sobol"
    assert (job.objective.goal, job.objective.primary_metric) == ("maximize", "best_val_acc")
    assert (job.limits.max_total_trials, job.limits.max_concurrent_trials) == (8, 2)
    assert (job.limits.timeout, job.limits.trial_timeout) == (3600, 600)
    assert job.compute == "gpu-cluster"
    # The data folder travels as a local uri_folder input, relative to the YAML file.
    assert (path.parent / job.inputs["data"].path).resolve() == (tmp_path / "fowl_data")
    command = job.trial.command
    for key in SPACE:
        assert f"--{key} ${{{{search_space.{key}}}}}" in command
    assert "--data ${{inputs.data}}" in command and "--metric best_val_acc" in command
    assert (path.parent / job.trial.code / "trainer" / "fit.py").is_file()


@pytest.mark.parametrize(
    "workers, dist, cls", [(2, "ddp", "PyTorchDistribution"), (3, "horovod", "MpiDistribution")]
)
def test_multi_worker_trials_map_to_azure_distributions(tmp_path, workers, dist, cls):
    data = _config(
        tmp_path,
        resources={"workers_per_trial": workers, "distribution": dist, "gpus_per_trial": 1},
    )
    sweep = Sweep(config=parse_sweep(data), root=tmp_path / "s")
    _, path = AzureMLRunner().compile(sweep.config, sweep.sweep_dir)
    job = load_job(str(path))
    assert type(job.trial.distribution).__name__ == cls
    assert ("--distributed horovod" in job.trial.command) == (dist == "horovod")
    assert job.trial.distribution.process_count_per_instance == 1
    assert job.trial.resources.instance_count == workers


def test_dry_run_cli_writes_the_job_and_submits_nothing(tmp_path, capsys, monkeypatch):
    import yaml

    monkeypatch.chdir(tmp_path)
    bandit = {"type": "bandit", "slack_factor": 0.1, "delay_evaluation": 2}
    (tmp_path / "space.yaml").write_text(
        yaml.safe_dump(_config(tmp_path, early_termination=bandit))
    )
    assert main(["run", "space.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sweeps/fowl/azure/sweep-job.yaml" in out
    assert not (tmp_path / "sweeps" / "fowl" / "azure" / "submitted.json").exists()
    # What we write for Azure is a sweep file of ours too (the SDK writes bandit's unused
    # slack as 0.0): an Azure job file now, with a command trial.
    written = tmp_path / "sweeps" / "fowl" / "azure" / "sweep-job.yaml"
    assert main(["validate", str(written)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"objective": {"primary_metric": "accuracy"}}, "objective.primary_metric: the built-in"),
        ({"sampling_algorithm": "bayesian"}, "bayesian sampling accepts only"),
        ({"sampling_algorithm": "grid"}, "grid sampling needs choice"),
        (
            {
                "early_termination": {
                    "type": "truncation_selection",
                    "truncation_percentage": 20,
                    "exclude_finished_jobs": True,
                }
            },
            "exclude_finished_jobs: Azure",
        ),
    ],
)
def test_what_azure_would_refuse_is_refused_before_submitting(tmp_path, capsys, extra, message):
    import yaml

    (tmp_path / "space.yaml").write_text(yaml.safe_dump(_config(tmp_path, **extra)))
    assert (
        main(["run", str(tmp_path / "space.yaml"), "--dry-run", "--root", str(tmp_path / "sweeps")])
        == 2
    )
    assert message in capsys.readouterr().err


# --- the submit flow, against a fake MLClient at the SDK boundary ---------------------------


class FakeJobs:
    def __init__(self, client: FakeMLClient) -> None:
        self.client = client

    def create_or_update(self, job, **kwargs):
        self.client.calls.append(("jobs.create_or_update", job, kwargs))
        self.client.raise_if("submit")
        job.name = "sweep-job-1"
        return job

    def stream(self, name):
        self.client.calls.append(("jobs.stream", name))
        print(f"RunId: {name}\nStatus: Completed")

    def get(self, name):
        self.client.calls.append(("jobs.get", name))
        return SimpleNamespace(name=name, status=self.client.status, studio_url="https://ml/x")

    def download(self, name, download_path, output_name):
        self.client.calls.append(("jobs.download", name, output_name))
        target = Path(download_path) / "named-outputs" / output_name
        shutil.copytree(self.client.model_dir, target, dirs_exist_ok=True)


class FakeModels:
    def __init__(self, client: FakeMLClient) -> None:
        self.client = client

    def create_or_update(self, model):
        self.client.calls.append(("models.create_or_update", model))
        assert isinstance(model, Model)
        model.version = "1"
        return model


class FakeCompute:
    def __init__(self, client: FakeMLClient) -> None:
        self.client = client

    def get(self, name):
        self.client.calls.append(("compute.get", name))
        self.client.raise_if("compute")
        if name != "gpu-cluster":
            raise ResourceNotFoundError(f"Compute {name} not found")
        return AmlCompute(name=name, size="STANDARD_NC6s_v3")


class FakeMLClient:
    """Records every call; answers with SDK entities. ``fail`` makes one step raise."""

    def __init__(self, model_dir: Path, status: str = "Completed", fail: dict | None = None):
        self.model_dir, self.status, self.fail = model_dir, status, fail or {}
        self.calls: list[tuple] = []
        self.jobs, self.models, self.compute = FakeJobs(self), FakeModels(self), FakeCompute(self)

    def raise_if(self, step: str) -> None:
        if step in self.fail:
            raise self.fail[step]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """What a real Azure trial leaves in its outputs: trained here by the same entry."""
    from tests.conftest import make_image_folder

    tmp = tmp_path_factory.mktemp("azure")
    data = make_image_folder(tmp / "fowl_data")
    out = tmp / "outputs"
    logged: list[tuple[dict, int]] = []
    code = trial_main(
        [
            "--entry",
            "trainer",
            "--metric",
            "best_val_acc",
            "--data",
            str(data),
            "--image_size",
            "16",
            "--batch_size",
            "8",
            "--num_epochs",
            "2",
            "--threads",
            "1",
            "--output_dir",
            str(out),
            "--learning_rate",
            "0.01",
        ],
        log=lambda metrics, step: logged.append((metrics, step)),
    )
    assert code == 0
    return data, out, logged


@pytest.mark.slow
def test_trial_entry_logs_the_primary_metric_every_epoch(trained):
    _, out, logged = trained
    steps = [step for metrics, step in logged if "best_val_acc" in metrics]
    assert steps == [0, 1, 2]  # two epochs, then the final result
    assert (out / "model.pt").is_file()


def _azure_sweep(tmp_path, data, register=True, client=None, **runner):
    config = {
        "name": "fowl",
        "compute": "azure:gpu-cluster",
        "search_space": {"learning_rate": SPACE["learning_rate"]},
        "trainer": {"args": {"data": str(data), "image_size": 16}},
        "limits": {"max_total_trials": 2},
    }
    if register:
        config["register"] = {"model_name": "pt-dnn", "root": str(tmp_path / "models")}
    return Sweep(
        config=parse_sweep(config),
        root=tmp_path / "sweeps",
        azure=AzureMLRunner(client, **runner) if client is not None else None,
    )


@pytest.mark.slow
def test_submit_stream_download_register(trained, tmp_path):
    data, out, _ = trained
    client = FakeMLClient(out)
    result = _azure_sweep(tmp_path, data, client=client).run()
    steps = [c[0] for c in client.calls]
    assert steps == [
        "compute.get",
        "jobs.create_or_update",
        "jobs.stream",
        "jobs.get",
        "jobs.download",
        "models.create_or_update",
    ]
    job = client.calls[1][1]
    assert isinstance(job, s.SweepJob) and job.compute == "gpu-cluster"
    model = client.calls[-1][1]
    assert model.path == "azureml://jobs/sweep-job-1/outputs/model" and model.name == "pt-dnn"
    assert result.workspace_model == "pt-dnn:1" and result.registered == "pt-dnn:1"
    assert result.job == "sweep-job-1" and result.study is None
    best = tmp_path / "sweeps" / "fowl" / "best"
    assert result.best_dir == best and result.best is not None
    assert result.best.params["learning_rate"] == 0.01 and result.best.value > 0
    card = json.loads((best / "card.json").read_text())
    assert card["trial"] == "azureml:sweep-job-1" and card["onnx"]["max_abs_diff"] < 1e-3
    assert card["params"]["learning_rate"] == 0.01
    submitted = json.loads((tmp_path / "sweeps" / "fowl" / "azure" / "submitted.json").read_text())
    assert submitted["job"] == "sweep-job-1"
    assert Sweep.load("fowl", root=tmp_path / "sweeps").config.compute == "azure:gpu-cluster"


@pytest.mark.slow
def test_resume_reattaches_instead_of_submitting_twice(trained, tmp_path):
    data, out, _ = trained
    heard: list[str] = []
    first = _azure_sweep(
        tmp_path, data, register=False, client=FakeMLClient(out), progress=heard.append
    )
    first.run()
    again = FakeMLClient(out)
    with pytest.raises(SweepInputError, match="already exists"):
        first.run()
    loaded = Sweep.load("fowl", root=tmp_path / "sweeps")
    Sweep(
        config=loaded.config,
        root=tmp_path / "sweeps",
        azure=AzureMLRunner(again, progress=heard.append),
    ).resume()
    assert "jobs.create_or_update" not in [c[0] for c in again.calls]
    # What the user is told goes through the progress callable, never print.
    assert heard == [
        "submitted Azure ML sweep job sweep-job-1: None",  # the fake has no URL
        "Azure ML sweep job sweep-job-1 completed",
        "re-attaching to Azure ML sweep job sweep-job-1",
        "Azure ML sweep job sweep-job-1 completed",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "fail, message, kind",
    [
        (
            {"compute": ClientAuthenticationError("no token")},
            "Azure sign-in failed",
            SweepInputError,
        ),
        ({"submit": ServiceRequestError("offline")}, "cannot reach Azure ML", SweepError),
    ],
)
def test_azure_failures_are_one_sentence_and_nothing_half_submitted(
    trained, tmp_path, fail, message, kind
):
    data, out, _ = trained
    client = FakeMLClient(out, fail=fail)
    with pytest.raises(kind, match=message):
        _azure_sweep(tmp_path, data, client=client).run()
    # Nothing reached Azure: nothing is left to re-attach to, and the same run can go again.
    assert not (tmp_path / "sweeps" / "fowl").exists()


@pytest.mark.slow
def test_unknown_cluster_is_refused_before_submitting(trained, tmp_path):
    _, out, _ = trained
    config = parse_sweep(
        {
            "name": "fowl",
            "compute": "azure:cpu-cluster",
            "search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        }
    )
    client = FakeMLClient(out)
    with pytest.raises(SweepInputError, match="cluster 'cpu-cluster': not found"):
        Sweep(config=config, root=tmp_path / "sweeps", azure=AzureMLRunner(client)).run()
    assert [c[0] for c in client.calls] == ["compute.get"]


@pytest.mark.slow
def test_a_failed_sweep_job_is_a_failure_with_its_status(trained, tmp_path):
    data, out, _ = trained
    with pytest.raises(SweepError, match="ended Failed"):
        _azure_sweep(tmp_path, data, client=FakeMLClient(out, status="Failed")).run()
    # Submitted: resume re-attaches to it, so everything stays.
    assert (tmp_path / "sweeps" / "fowl" / "azure" / "submitted.json").exists()


def test_no_workspace_config_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SweepInputError, match="no Azure ML workspace"):
        _ = AzureMLRunner(workspace_config=tmp_path / "config.json").client


def test_an_azure_job_file_is_submitted_as_written(tmp_path):
    """A user's job file goes to Azure ML with its own command, inputs and outputs, loaded by
    the SDK; the best trial's named output comes back and is registered by that name."""
    from sweep.cli.run_cmd import read_config  # noqa: F401 - the CLI's reading path

    jobs = Path(__file__).resolve().parents[1] / "search_spaces_tests" / "azure_jobs"
    outputs = tmp_path / "remote-outputs"
    outputs.mkdir()
    (outputs / "weights.txt").write_text("trained")
    client = FakeMLClient(outputs)
    sweep = Sweep.from_yaml(
        jobs / "no-compute-ours.yml",
        overrides=["compute=azureml:gpu-cluster", f"register.root={tmp_path / 'models'}"],
        root=tmp_path / "sweeps",
        azure=AzureMLRunner(client),
    )
    result = sweep.run(max_trials=3)
    job = client.calls[1][1]
    assert isinstance(job, s.SweepJob) and job.compute == "gpu-cluster"
    assert job.trial.command == (
        "python train.py --lr ${{search_space.lr}} --out ${{outputs.model}}"
    )
    assert set(job.search_space) == {"lr"}
    download = [c for c in client.calls if c[0] == "jobs.download"][0]
    assert download[2] == "model"  # the file's own output name
    model = [c for c in client.calls if c[0] == "models.create_or_update"]
    assert job.limits.max_total_trials == 3  # run()'s budget reached the job
    assert result.job == "sweep-job-1" and result.outputs is not None
    assert (result.outputs / "weights.txt").read_text() == "trained"
    # No model.pt of ours in the outputs: the output folder is the workspace's model.
    assert model[0][1].path == "azureml://jobs/sweep-job-1/outputs/model"
    assert result.workspace_model == "with-our-keys:1"


def test_options_that_cannot_apply_are_refused(tmp_path):
    from sweep.backends import InProcessBackend

    config = parse_sweep(_config(tmp_path))
    with pytest.raises(SweepInputError, match="no trial backend is used there"):
        Sweep(config=config, root=tmp_path, backend=InProcessBackend())
    with pytest.raises(SweepInputError, match="azure: compute is local"):
        Sweep(config=parse_sweep({"search_space": SPACE}), azure=AzureMLRunner())
    with pytest.raises(SweepInputError, match="name would be ignored"):
        Sweep(config=config, name="other")
    with pytest.raises(SweepInputError, match="listener: Azure ML runs the trials"):
        Sweep(config=config, root=tmp_path, azure=AzureMLRunner(object())).run(listener=object())  # type: ignore[arg-type]


def test_a_broken_workspace_config_says_what_is_wrong_with_it(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"subscription_id": "x"}')
    with pytest.raises(SweepInputError, match="does not seem to contain the required"):
        _ = AzureMLRunner(workspace_config=config).client
    config.write_text("{not json")
    with pytest.raises(SweepInputError, match="is not valid JSON"):
        _ = AzureMLRunner(workspace_config=config).client
