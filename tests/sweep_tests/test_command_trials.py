"""Command trials: Azure ML job files whose scripts run unchanged, metrics through MLflow.

Trials run in threads here (the in-process backend) except where Ray is the point; the
scripts are real processes logging to a real MLflow store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sweep import Sweep
from sweep.backends import InProcessBackend
from tests.sweep_tests.ray_start import processes_of

SCRIPTS = Path(__file__).parent / "command_scripts"
ROOT = Path(__file__).resolve().parents[2]


def _job(
    tmp_path: Path, command: str, *, metric: str = "acc", space: dict | None = None, **extra: object
) -> Path:
    doc = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json",
        "type": "sweep",
        "display_name": "test job",
        "experiment_name": "tests",
        "trial": {
            "code": str(SCRIPTS),
            "command": command,
            "environment": "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest",
        },
        "search_space": space or {"quality": {"type": "choice", "values": [0.9, 0.5]}},
        "objective": {"primary_metric": metric, "goal": "maximize"},
        "sampling_algorithm": "grid",
        "limits": {"max_total_trials": 2, "max_concurrent_trials": 1},
        "compute": "azureml:cpu-cluster",
        **extra,
    }
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _run(path: Path, tmp_path: Path, *overrides: str):
    sweep = Sweep.from_yaml(
        path,
        overrides=["compute=local", *overrides],
        root=tmp_path / "sweeps",
        backend=InProcessBackend(),
    )
    return sweep.run()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie that nobody reaped yet counts as gone.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\tZ" in status.read_text())


@pytest.mark.slow
def test_substitution_inputs_outputs_nested_choice_and_optional_blocks(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("rows")
    space = {
        "model": {
            "type": "choice",
            "values": [
                {"name": "resnet", "lr": {"type": "uniform", "min_value": 0.1, "max_value": 0.2}},
                {"name": "vit", "lr": {"type": "choice", "values": [0.5]}},
            ],
        }
    }
    path = _job(
        tmp_path,
        "python echo_params.py --model ${{search_space.model.name}} "
        "--lr ${{search_space.model.lr}} --data ${{inputs.data}} "
        "$[[--extra ${{inputs.extra}}]] --out ${{outputs.result}}",
        metric="score",
        space=space,
        inputs={"data": {"type": "uri_file", "path": "./elsewhere.txt"}},
        outputs={"result": {"type": "uri_folder"}},
        sampling_algorithm={"type": "random", "seed": 3},
        limits={"max_total_trials": 4, "max_concurrent_trials": 2},
    )
    result = _run(path, tmp_path, f"inputs.data.path={data}")
    assert list(result.trials["state"]) == ["complete"] * 4
    for row in result.trials.itertuples():
        folder = tmp_path / "sweeps" / "job" / "trials" / f"{row.number:04d}"
        args = json.loads((folder / "outputs" / "result" / "args.json").read_text())
        params = json.loads((folder / "params.json").read_text())
        assert args["model"] == params["model"]["name"]
        assert args["lr"] == pytest.approx(params["model"]["lr"]) == pytest.approx(row.value)
        assert args["data_text"] == "rows" and args["extra"] is None
    # The code ran from the sweep's snapshot, not from the source folder.
    assert (tmp_path / "sweeps" / "job" / "code" / "echo_params.py").is_file()
    assert result.best is not None and result.best.value == pytest.approx(0.5)


@pytest.mark.slow
def test_pruned_trial_leaves_no_process_behind(tmp_path):
    pids = tmp_path / "pids"
    # Both trials run at once, so the good one's curve is there when the bad one is judged.
    path = _job(
        tmp_path,
        f"python curve.py --quality ${{{{search_space.quality}}}} --epochs 8 "
        f"--sleep 0.5 --pid_dir {pids} --child",
        space={"quality": {"type": "choice", "values": [0.9, 0.1]}},
        early_termination={
            "type": "bandit",
            "slack_factor": 0.1,
            "delay_evaluation": 2,
            "evaluation_interval": 1,
        },
        limits={"max_total_trials": 2, "max_concurrent_trials": 2},
    )
    result = _run(path, tmp_path)
    states = dict(zip(result.trials["param_quality"], result.trials["state"], strict=True))
    pruned = [q for q, s in states.items() if s == "pruned"]
    assert pruned, states
    for quality in pruned:
        for suffix in ("pid", "child"):
            pid = int((pids / f"{quality:.6f}.{suffix}").read_text())
            assert not _alive(pid), f"{suffix} of pruned trial {quality} still runs"
    frame = result.trials.set_index("param_quality")
    assert all(frame.loc[q, "epochs_run"] < 8 for q in pruned)
    reasons = [r for r in result.trials["reason"] if r]
    assert any("slack_factor" in r for r in reasons)


@pytest.mark.slow
def test_a_process_that_ignores_sigterm_is_killed(tmp_path):
    pids = tmp_path / "pids"
    path = _job(
        tmp_path,
        f"python curve.py --quality ${{{{search_space.quality}}}} --epochs 30 "
        f"--sleep 0.3 --pid_dir {pids} --ignore_sigterm",
        space={"quality": {"type": "choice", "values": [0.9, 0.1]}},
        early_termination={"type": "bandit", "slack_amount": 0.05, "delay_evaluation": 2},
        limits={"max_total_trials": 2, "max_concurrent_trials": 2},
    )
    result = _run(path, tmp_path)
    assert "pruned" in set(result.trials["state"])
    for pid_file in pids.glob("*.pid"):
        assert not _alive(int(pid_file.read_text()))


@pytest.mark.parametrize(
    "command, metric, expected",
    [
        (
            "python fails.py",
            "loss",
            "the command exited with code 1: about to fail | the data folder is empty",
        ),
        (
            "python wrong_metric.py",
            "acc",
            "the script never logged 'acc' (the objective's "
            "primary_metric) with MLflow; it logged: accuracy, loss",
        ),
        ("python no_such_script.py", "acc", "can't open file"),
    ],
)
@pytest.mark.slow
def test_a_failing_script_fails_its_trial_with_the_reason(tmp_path, command, metric, expected):
    path = _job(tmp_path, command + " --q ${{search_space.quality}}", metric=metric)
    result = _run(path, tmp_path)
    assert list(result.trials["state"]) == ["failed", "failed"]
    assert all(expected in reason for reason in result.trials["reason"]), list(
        result.trials["reason"]
    )


def test_a_notice_after_the_last_logged_epoch_completes_the_trial(tmp_path):
    """SIGTERM lands after the script logged its last epoch, before it exited: the trial
    continues, the script finds every epoch done in its checkpoint and logs nothing, and the
    trial completes with its last report (a CI run once failed it: "never logged")."""
    path = _job(
        tmp_path,
        "python stopped_at_the_end.py --quality ${{search_space.quality}} --epochs 3",
        space={"quality": {"type": "choice", "values": [0.9]}},
        limits={"max_total_trials": 1, "max_concurrent_trials": 1},
    )
    result = _run(path, tmp_path)
    (trial,) = result.trials.to_dict("records")
    assert trial["state"] == "complete", trial
    assert trial["value"] == pytest.approx(0.9)
    log = (tmp_path / "sweeps" / "job" / "trials" / "0000" / "trial.log").read_text()
    assert "resumed with 3 of 3 epochs done" in log


def test_a_metric_file_caught_while_mlflow_writes_it_is_read_again(tmp_path):
    """MLflow's file store creates a metric's file before its first line (autolog logs a dozen
    at once): a read in between once failed a trial ("Metric ... is malformed")."""
    import threading

    from sweep.trainers.command_trial.mlflow_run import MlflowRun

    run = MlflowRun(tmp_path / "mlruns").create("trial")
    metrics = tmp_path / "mlruns" / run.experiment_id / run.run_id / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    (metrics / "training_roc_auc").write_text("")  # created, not yet written
    writer = threading.Timer(
        0.1, lambda: (metrics / "training_roc_auc").write_text("1700000000000 0.93 0\n")
    )
    writer.start()
    try:
        latest, _ = run.latest()
    finally:
        writer.join()
    assert latest == {"training_roc_auc": 0.93}
    assert run.new_values("training_roc_auc") == [0.93]


@pytest.mark.slow
def test_sklearn_autolog_reports_without_a_log_metric_call(tmp_path):
    path = _job(
        tmp_path,
        "python sklearn_autolog.py --C ${{search_space.C}}",
        metric="training_accuracy_score",
        space={"C": {"type": "choice", "values": [0.01, 10.0]}},
    )
    result = _run(path, tmp_path)
    assert list(result.trials["state"]) == ["complete", "complete"], list(result.trials["reason"])
    assert result.best is not None and result.best.params["C"] == 10.0
    params = json.loads(
        (tmp_path / "sweeps" / "job" / "trials" / "0000" / "mlflow_params.json").read_text()
    )
    assert "C" in params  # what autolog logged lands in the trial's records


@pytest.mark.slow
def test_pytorch_distribution_starts_ranks_with_azure_environment(tmp_path):
    path = _job(
        tmp_path,
        "python ddp.py --ignored ${{search_space.quality}}",
        metric="ranks_sum",
        space={"quality": {"type": "choice", "values": [1]}},
        limits={"max_total_trials": 1},
    )
    doc = yaml.safe_load(path.read_text())
    doc["trial"]["distribution"] = {"type": "pytorch", "process_count_per_instance": 2}
    path.write_text(yaml.safe_dump(doc))
    result = _run(path, tmp_path)
    assert list(result.trials["state"]) == ["complete"], list(result.trials["reason"])
    assert result.best is not None
    assert result.best.value == 3.0  # ranks 1 + 2: both processes joined
    assert result.best.metrics["world"] == 2.0 and result.best.metrics["local_rank_env"] == 0.0


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sweep.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_remote_input_stops_the_run_before_any_trial(tmp_path):
    path = _job(
        tmp_path,
        "python curve.py --data ${{inputs.iris}} --quality ${{search_space.quality}}",
        inputs={"iris": {"type": "uri_file", "path": "https://example.invalid/iris.csv"}},
    )
    run = _cli("run", str(path), "--compute", "local", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "sweep: error: inputs.iris: https://example.invalid/iris.csv is remote and is not "
        "fetched here; download it and point the input at the copy: "
        "--set inputs.iris.path=./local-copy"
    )
    assert not (tmp_path / "sweeps").exists()


def test_a_command_that_installs_packages_is_said_to_install_them_here(tmp_path):
    """A job file's `pip install … && python train.py` is meant for Azure ML's fresh
    container; run here, it installs into this environment (it changed this machine's),
    so the notice before the first trial says so."""
    from search_spaces import read_sweep_file
    from sweep.trainers.trial_kinds import trial_kind

    path = _job(tmp_path, "pip install mlflow azureml-mlflow && python curve.py --epochs 1")
    config = read_sweep_file(path)
    notice = trial_kind(config).notice(config)
    assert notice is not None and sys.executable in notice
    assert "'pip install' installs into this environment" in notice
    plain = read_sweep_file(_job(tmp_path, "python curve.py --epochs 1"))
    assert "installs" not in (trial_kind(plain).notice(plain) or "")


@pytest.mark.slow
def test_job_file_on_local_ray_pruned_reported_registered(tmp_path):
    path = _job(
        tmp_path,
        "python curve.py --quality ${{search_space.quality}} --epochs 4 "
        "--sleep 0.2 --output_dir ${{outputs.model}}",
        outputs={"model": {"type": "uri_folder"}},
        register={"model_name": "curve", "root": str(tmp_path / "models")},
    )
    run = _cli("run", str(path), "--compute", "local", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0].startswith("trials run their command in this Python environment")
    # Ray's token authentication stays on, said explicitly, so Ray prints no banner about it.
    assert "Token authentication" not in run.stderr
    assert "registered: curve:1" in run.stdout
    best = tmp_path / "sweeps" / "job" / "best"
    assert (best / "outputs" / "model" / "weights.txt").read_text() == "0.9"
    card = json.loads((best / "card.json").read_text())
    assert card["command"].startswith("python curve.py --quality 0.9")
    assert card["code"]["fingerprint"].startswith("sha256:")
    assert "neither a model.pt" in card["onnx"]["why"]
    shown = _cli("models", "show", "curve", "--registry", str(tmp_path / "models"), cwd=tmp_path)
    assert "command: python curve.py" in shown.stdout, shown.stderr
    status = _cli("status", "job", "--json", cwd=tmp_path)
    trials = json.loads(status.stdout)["trials"]
    assert {t["state"] for t in trials} == {"complete"}
    # Resume of the finished sweep reads the saved job (code from its snapshot) again.
    saved = yaml.safe_load((tmp_path / "sweeps" / "job" / "sweep.yaml").read_text())
    assert saved["trial"]["code"] == "code" and saved["compute"] == "local"


@pytest.mark.slow
def test_delay_between_log_and_decision_is_bounded(tmp_path):
    """The pruner's answer reaches the trial within a few poll intervals of the log."""
    from sweep.trainers.command_trial import CommandTrainer
    from sweep.trainers.command_trial.trainer import POLL_S

    seen: list[float] = []
    start = time.monotonic()

    def report(epoch: int, metrics: dict) -> bool:
        seen.append(time.monotonic())
        return epoch == 1

    trainer = CommandTrainer(
        # 20 s to its end: a stop at epoch 1 is far sooner, even where the script's own
        # start (Python and MLflow's import) takes seconds on a busy machine.
        command="python curve.py --quality 0.5 --epochs 100 --sleep 0.2",
        metric="acc",
        code=str(SCRIPTS),
    )
    metrics = trainer({"output_dir": str(tmp_path / "t" / "outputs")}, report)
    assert len(seen) == 2 and metrics["acc"] == pytest.approx(0.5 * 2 / 100)  # epoch 1's
    assert time.monotonic() - start < 100 * 0.2 / 2  # stopped well before the script's end
    # One epoch of the script and a few polls, with room for a busy machine (a 0.5 s margin
    # failed once on 2 CPUs shared by 4 test processes).
    assert seen[1] - seen[0] < 0.2 + 4 * POLL_S + 2


WANDB = """\
method: bayes
metric: {name: score, goal: maximize}
parameters:
  x: {min: 0.0, max: 1.0}
  weight_decay: {min: 0.1, max: 0.01}
early_terminate: {type: hyperband, s: 2, eta: 3, max_iter: 27}
run_cap: 3
"""


def test_wandb_config_on_the_command_line(tmp_path):
    bad = tmp_path / "wandb.yaml"
    bad.write_text(WANDB)
    run = _cli(
        "validate", str(bad), "--trainer", "tests.sweep_tests.toy_trainers:quadratic", cwd=tmp_path
    )
    assert run.returncode == 2
    assert (
        "sweep: error: parameters.weight_decay: min 0.1 is greater than max 0.01" in run.stderr
    ), run.stderr
    good = tmp_path / "wandb-ok.yaml"
    good.write_text(WANDB.replace("{min: 0.1, max: 0.01}", "{min: 0.01, max: 0.1}"))
    no_trainer = _cli("validate", str(good), cwd=tmp_path)
    assert no_trainer.returncode == 2 and "--trainer" in no_trainer.stderr
    ok = _cli(
        "validate", str(good), "--trainer", "tests.sweep_tests.toy_trainers:quadratic", cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stderr
    assert "a W&B sweep config, converted" in ok.stderr
    assert "hyperband" in ok.stdout and "3 parameters" not in ok.stdout


@pytest.mark.slow
def test_a_script_that_floods_stdout_keeps_a_bounded_log(tmp_path, monkeypatch):
    from sweep.records import trial_log

    monkeypatch.setattr(trial_log, "LOG_CAP_BYTES", 100_000)
    flood = tmp_path / "flood"
    flood.mkdir()
    (flood / "flood.py").write_text(
        "import mlflow, sys\n"
        "for i in range(200_000):\n"
        "    sys.stdout.write('x' * 40 + '\\n')\n"
        "mlflow.log_metric('acc', 1.0)\n"
    )
    from sweep.trainers.command_trial import CommandTrainer

    trainer = CommandTrainer(command="python flood.py", metric="acc", code=str(flood))
    metrics = trainer({"output_dir": str(tmp_path / "t" / "outputs")}, lambda e, m: False)
    assert metrics["acc"] == 1.0
    log = (tmp_path / "t" / "trial.log").read_text()
    assert len(log) < 150_000 and "more bytes of output not kept" in log


@pytest.mark.slow
def test_mpi_distribution_runs_under_horovods_launcher(tmp_path):
    import shutil

    if shutil.which("horovodrun", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("horovod is not installed (bash scripts/build_horovod.sh)")
    path = _job(
        tmp_path,
        "python hvd_env.py --ignored ${{search_space.quality}}",
        metric="size",
        space={"quality": {"type": "choice", "values": [1]}},
        limits={"max_total_trials": 1},
    )
    doc = yaml.safe_load(path.read_text())
    doc["trial"]["distribution"] = {"type": "mpi", "process_count_per_instance": 2}
    path.write_text(yaml.safe_dump(doc))
    result = _run(path, tmp_path)
    assert list(result.trials["state"]) == ["complete"], list(result.trials["reason"])
    assert result.best is not None and result.best.value == 2.0


@pytest.mark.slow
def test_resume_runs_the_snapshot_the_sweep_started_with(tmp_path):
    code = tmp_path / "src"
    code.mkdir()
    (code / "score.py").write_text("import mlflow, sys\nmlflow.log_metric('acc', 1.0)\n")
    path = _job(
        tmp_path, "python score.py ${{search_space.quality}}", limits={"max_total_trials": 1}
    )
    doc = yaml.safe_load(path.read_text())
    doc["trial"]["code"] = str(code)
    path.write_text(yaml.safe_dump(doc))
    _run(path, tmp_path)
    # The source changes after the start; the resumed sweep still runs what it started with.
    (code / "score.py").write_text("raise SystemExit('changed')\n")
    sweep = Sweep.load("job", root=tmp_path / "sweeps", backend=InProcessBackend())
    assert sweep.config.command is not None
    assert sweep.config.command.code == (tmp_path / "sweeps" / "job" / "code").resolve()
    result = sweep.resume(max_trials=2)
    assert list(result.trials["state"]) == ["complete", "complete"]


@pytest.mark.slow
def test_the_shipped_example_stopped_by_sigterm_continues_and_ends_registered(tmp_path):
    """search_spaces/examples/azure_job: an unchanged pytorch_train.py-style script, swept by
    its Azure ML job file on the built-in digits. A spot node's preemption notice: the script
    gets SIGTERM mid-run; the trial continues through $SWEEP_CHECKPOINT_DIR from the epoch
    after its last logged one, as one trial, and the sweep ends registered with a checked
    ONNX file that predicts. (One run of the example for both: it trains for real.)"""
    from sweep.records.layout import read_history, trial_dir

    job = ROOT / "search_spaces" / "examples" / "azure_job" / "job.yml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The job's own command at a quarter of the script's default pixels (16 px, not 32): the
    # same script and flags, a quarter of the training (this test was a minute of the suite).
    command = yaml.safe_load(job.read_text())["trial"]["command"] + " --image_size 16"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweep.cli",
            "run",
            str(job),
            "--set",
            "compute=local",
            "--set",
            "limits.max_total_trials=1",
            "--set",
            "inputs.num_epochs=2",
            "--set",
            "register.root=models",
            "--set",
            f"trial.command={command}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = trial_dir(tmp_path / "sweeps" / "digits-azure-job", 0)
    deadline = time.monotonic() + 300
    while len(read_history(folder)) < 1 and time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()
        time.sleep(0.1)
    # The script's own argv (NUL-separated); the coordinator's has its name inside a --set.
    (script,) = [pid for pid in processes_of("pytorch_train.py\0") if _alive(pid)]
    os.kill(script, 15)
    out, err = run.communicate(timeout=600)
    # Its summary (stdout) says why a sweep failed; once, under the suite's load, it exited
    # 1 with nothing on stderr.
    assert run.returncode == 0, out[-3000:] + err[-3000:]
    assert "trials: 1 complete" in out and "continues" in out
    assert [r["epoch"] for r in read_history(folder)] == [0, 1]
    # The script's second run started from its checkpoint (the trainer logs where).
    logs = (folder / "trial.log").read_text() + (folder / "stderr.log").read_text()
    assert "continuing from" in logs or "epoch 2/2" in logs.split("epoch 1/2")[-1]

    assert "registered: digits-azure-job:1" in out
    best = tmp_path / "sweeps" / "digits-azure-job" / "best"
    card = json.loads((best / "card.json").read_text())
    assert card["onnx"]["max_abs_diff"] < 1e-3 and card["command"].startswith(
        "python pytorch_train.py --data_dir digits --num_epochs 2"
    )
    from PIL import Image
    from sklearn.datasets import load_digits

    image = tmp_path / "seven.png"
    Image.fromarray((load_digits().images[7] * 15).astype("uint8")).save(image)
    predicted = _cli(
        "models", "predict", "digits-azure-job", str(image), "--registry", "models", cwd=tmp_path
    )
    assert predicted.returncode == 0, predicted.stderr
    assert "seven.png" in predicted.stdout
