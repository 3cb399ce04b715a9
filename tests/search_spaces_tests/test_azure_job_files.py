"""Azure ML v2 sweep-job files, written from Azure's documentation and examples, read as
written; their dry runs go back through the SDK's own loader."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from search_spaces import parse_sweep, read_sweep_file, to_optuna
from sweep.cli import main

JOBS = Path(__file__).parent / "azure_jobs"
REFUSED = Path(__file__).parent / "azure_jobs_refused"
JOB_FILES = sorted(JOBS.glob("*.yml"))


def test_there_are_at_least_15_job_files():
    assert len(JOB_FILES) >= 15


@pytest.mark.parametrize("path", JOB_FILES, ids=[p.stem for p in JOB_FILES])
def test_every_job_file_validates_as_written(path, capsys):
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    config = read_sweep_file(path)
    assert config.command is not None
    assert config.command.command == yaml.safe_load(path.read_text())["trial"]["command"]


@pytest.mark.parametrize("path", JOB_FILES, ids=[p.stem for p in JOB_FILES])
def test_every_dry_run_loads_with_azure_ml_load_job(path, tmp_path, capsys):
    pytest.importorskip("azure.ai.ml")
    from azure.ai.ml import load_job
    from azure.ai.ml.sweep import SweepJob

    code = main(
        ["run", str(path), "--compute", "azureml:cpu-cluster", "--dry-run", "--root", str(tmp_path)]
    )
    assert code == 0, capsys.readouterr().err
    written = next(tmp_path.glob("*/azure/sweep-job.yaml"))
    job = load_job(str(written))
    assert isinstance(job, SweepJob)
    source = yaml.safe_load(path.read_text())
    assert job.trial.command == source["trial"]["command"]
    assert set(job.search_space) == set(source["search_space"])
    assert job.compute == "cpu-cluster"
    # ... and the written file is a sweep file of ours too.
    assert main(["validate", str(written)]) == 0


def test_azureml_compute_means_azure():
    assert read_sweep_file(JOBS / "hello-sweep.yml").compute == "azure:cpu-cluster"
    assert read_sweep_file(JOBS / "no-compute-ours.yml").compute == "local"
    assert read_sweep_file(JOBS / "hello-sweep.yml", ["compute=local"]).compute == "local"


def test_inputs_literal_and_by_path():
    config = read_sweep_file(JOBS / "optional-input.yml")
    assert config.command is not None
    data = config.command.inputs["data"]
    assert data.type == "uri_file" and Path(data.value) == (JOBS / "iris.csv").resolve()
    typed = read_sweep_file(JOBS / "literal-typed-inputs.yml").command
    assert typed is not None and typed.inputs["epochs"].value == 3
    remote = read_sweep_file(JOBS / "iris-uri-file.yml").command
    assert remote is not None and remote.inputs["iris_csv"].is_remote


def test_set_points_a_remote_input_at_a_local_copy():
    config = read_sweep_file(
        JOBS / "iris-uri-file.yml",
        [f"inputs.iris_csv.path={JOBS / 'iris.csv'}", "limits.max_total_trials=4"],
    )
    assert config.command is not None
    assert not config.command.inputs["iris_csv"].is_remote
    assert config.limits.max_total_trials == 4


def test_sdk_bandit_with_zero_slack_amount_is_a_slack_factor_policy():
    config = read_sweep_file(JOBS / "bandit-sdk-dump.yml")
    assert config.early_termination.options["slack_factor"] == 0.1
    assert "slack_amount" not in config.early_termination.options


def test_logbase_10_means_ten_to_the_power():
    space = to_optuna(read_sweep_file(JOBS / "logbase-10.yml").search_space)
    lr = space.distributions()["lr"]
    assert math.isclose(lr.low, 1e-4) and math.isclose(lr.high, 1e-1) and lr.log
    e = to_optuna(read_sweep_file(JOBS / "logbase-e.yml").search_space).distributions()["lr"]
    assert math.isclose(e.low, math.exp(-9.2))


def test_nested_choice_samples_each_branch_with_its_own_expressions():
    space = to_optuna(read_sweep_file(JOBS / "nested-choice.yml").search_space)
    dists = space.distributions()
    assert {"model", "model.0.lr", "model.1.lr", "batch"} <= set(dists)
    chosen = space.decode({"model": 1, "model.0.lr": 0.05, "model.1.lr": 0.0005, "batch": 16})
    assert chosen["model"] == {"name": "vit", "lr": 0.0005}
    chosen = space.decode({"model": 0, "model.0.lr": 0.05, "model.1.lr": 0.0005, "batch": 16})
    assert chosen["model"] == {"name": "resnet", "lr": 0.05}


def test_distribution_and_instance_count_give_the_process_count():
    config = read_sweep_file(JOBS / "pytorch-cifar-distributed.yml")
    assert config.command is not None and config.command.distribution is not None
    assert config.command.distribution.processes == 4
    # Ray reserves a CPU per process unless local_resources says otherwise.
    assert config.resources.cpus_per_trial == 4
    mine = read_sweep_file(
        JOBS / "pytorch-cifar-distributed.yml", ["local_resources.cpus_per_trial=1"]
    )
    assert mine.resources.cpus_per_trial == 1


@pytest.mark.parametrize(
    "name, expected",
    [
        ("pipeline.yml", "pipeline job, not a sweep job"),
        ("preview-sweep-job.yml", "pre-GA"),
        ("code-local-path.yml", "trial.code: {local_path: src} is the Azure ML CLI preview's"),
    ],
)
def test_files_azure_ml_does_not_take_are_refused_in_one_sentence(name, expected, capsys):
    assert main(["validate", str(REFUSED / name)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def _job(tmp_path: Path, text: str) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "job.yml"
    path.write_text(text)
    return path


BASE = """\
type: sweep
trial:
  code: src
  command: python train.py --lr ${{search_space.lr}}
  environment: azureml:env@latest
search_space:
  lr: {type: uniform, min_value: 0.1, max_value: 1}
objective: {primary_metric: acc, goal: maximize}
limits: {max_total_trials: 2}
"""


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            ("--lr ${{search_space.lr}}", "--lr ${{search_space.typo}}"),
            "trial.command: ${{search_space.typo}} names no search_space entry",
        ),
        (("code: src", "code: missing_src"), "trial.code: 'missing_src' does not exist"),
        (("limits:", "colour: red\nshape: round\nlimits:"), "colour: unknown key"),
        (
            ("limits:", "resources: {cpus_per_trial: 2}\nlimits:"),
            "put what one trial takes here under local_resources",
        ),
        (("environment:", "docker: x\n  environment:"), "trial.docker: unknown key"),
        (("limits:", "trainer: {entry: trainer}\nlimits:"), "trainer: an Azure ML job file runs"),
        (("--lr ${{search_space.lr}}", "--in ${{inputs.nothing}}"), "names no inputs entry"),
    ],
)
def test_bad_job_files_name_the_key(tmp_path, capsys, change, expected):
    path = _job(tmp_path, BASE.replace(*change))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_all_problems_of_a_job_file_are_listed_at_once(tmp_path, capsys):
    text = (
        BASE.replace("code: src", "code: nowhere")
        .replace("limits:", "colour: red\nshape: round\nlimits:")
        .replace("${{search_space.lr}}", "${{search_space.typo}}")
    )
    assert main(["validate", str(_job(tmp_path, text))]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    for where in ("colour", "shape", "trial.code", "trial.command"):
        assert any(line.startswith(f"sweep: error: {where}") for line in lines), lines


def test_timeouts_azure_would_raise_are_errors_for_azure_compute(tmp_path, capsys):
    path = _job(
        tmp_path,
        BASE.replace("limits: {max_total_trials: 2}", "limits: {max_total_trials: 2, timeout: 5}"),
    )
    assert main(["validate", str(path)]) == 0
    assert main(["validate", str(path), "--set", "compute=azureml:cpu"]) == 2
    assert "limits.timeout: Azure ML takes 60 seconds or more" in capsys.readouterr().err


def test_component_style_typed_inputs_are_refused_as_azure_does(tmp_path, capsys):
    path = _job(tmp_path, BASE + "inputs:\n  epochs: {type: integer, default: 3}\n")
    assert main(["validate", str(path)]) == 2
    assert "inputs.epochs.type: a job's literal input is a plain value" in capsys.readouterr().err


def test_a_registered_code_asset_is_valid_for_azure_compute_and_goes_as_written(tmp_path, capsys):
    """As the Azure SDK's own sweep-job test files write it; a local copy is needed only to
    run the file here."""
    import yaml

    from sweep.cli import main

    job = tmp_path / "job.yml"
    job.write_text(
        yaml.safe_dump(
            {
                "$schema": "https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json",
                "type": "sweep",
                "compute": "azureml:testCompute",
                "trial": {
                    "code": "azureml:testCode:1",
                    "command": "python t.py --lr ${{search_space.lr}}",
                    "environment": "azureml:AzureML-sklearn:33",
                },
                "search_space": {"lr": {"type": "uniform", "min_value": 0.01, "max_value": 0.1}},
                "objective": {"primary_metric": "acc", "goal": "maximize"},
                "sampling_algorithm": "random",
                "limits": {"max_total_trials": 4},
            }
        )
    )
    assert main(["validate", str(job)]) == 0
    assert main(["run", str(job), "--dry-run", "--root", str(tmp_path / "sweeps")]) == 0
    written = yaml.safe_load((tmp_path / "sweeps" / "job" / "azure" / "sweep-job.yaml").read_text())
    assert written["trial"]["code"] == "azureml:testCode:1"
    capsys.readouterr()
    assert main(["validate", str(job), "--set", "compute=local"]) == 2
    assert "--set trial.code=" in capsys.readouterr().err


def test_kinds_in_capitals_read_as_azure_reads_them():
    """``goal: Maximize``, ``type: MedianStopping``, ``rule: Sobol``, ``type: QUniform``:
    azure-ai-ml lower- or snake-cases them, so the same file means the same here (it loads
    with Azure's own ``load_job``: the dry-run test above)."""
    path = JOBS / "capitalised-kinds.yml"
    written = path.read_text()
    lower = written
    for word, low in [
        ("Choice", "choice"),
        ("QUniform", "quniform"),
        ("LogUniform", "loguniform"),
        ("Maximize", "maximize"),
        ("Random", "random"),
        ("Sobol", "sobol"),
        ("MedianStopping", "median_stopping"),
    ]:
        lower = lower.replace(f": {word}", f": {low}")
    assert lower != written
    capital = read_sweep_file(path)
    plain = parse_sweep(yaml.safe_load(lower), default_name=path.stem, base_dir=JOBS)
    assert capital.maximize and capital.early_termination.type == "median_stopping"
    assert capital.sampling_algorithm == plain.sampling_algorithm
    assert capital.search_space == plain.search_space
    assert capital.objective == plain.objective
    assert capital.early_termination == plain.early_termination
    # What goes to Azure ML is the file as written.
    assert capital.azure_job is not None
    assert capital.azure_job["objective"]["goal"] == "Maximize"


def test_validate_takes_compute_as_run_does(capsys):
    """What ``run --compute local`` will run is what ``validate --compute local`` checks."""
    assert main(["validate", str(JOBS / "hello-sweep.yml")]) == 0
    assert "on azure:cpu-cluster" in capsys.readouterr().out
    assert main(["validate", str(JOBS / "hello-sweep.yml"), "--compute", "local"]) == 0
    assert "on local" in capsys.readouterr().out
