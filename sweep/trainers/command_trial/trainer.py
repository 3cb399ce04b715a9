"""``CommandTrainer``: one trial of an Azure ML command, as a trainer function.

It snapshots nothing itself (the sweep took the code snapshot when it started); per trial it
copies that snapshot to the trial's folder, fills in the command, starts the processes with
Azure's environment (``AZUREML_SWEEP_*``, torch.distributed's variables for ``pytorch``,
Horovod's launcher for ``mpi``), and turns each logged value of the primary metric into one
``report``: Azure ML's rule, where every log is an interval for early termination.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep.errors import TrialFailed, TrialPreempted
from sweep.records.tracking import RUN_PARAMS
from sweep.records.trial_log import TRIAL_LOG
from sweep.trainers.command_trial.mlflow_run import MlflowRun
from sweep.trainers.command_trial.processes import GRACE_S, ProcessGroup
from sweep.trainers.command_trial.substitute import expand_command
from trainer import preemption

POLL_S = 0.1
"""How often the MLflow run is read; most of the delay between a log and its decision."""

Report = Callable[[int, dict[str, float]], bool]

PREEMPTED = (-signal.SIGTERM, 128 + signal.SIGTERM)
"""Exit codes of a process ended by SIGTERM (Popen's, and bash's for its child)."""


@dataclass(frozen=True)
class CommandTrainer:
    """Runs ``command`` for one trial; called as ``trainer(params, report)``."""

    command: str
    metric: str
    code: str | None = None
    """The sweep's snapshot of trial.code; each trial runs in a copy of it."""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    """Input name to its value: a literal, or a local path."""
    outputs: tuple[str, ...] = ()
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    distribution: str | None = None
    processes: int = 1
    grace_s: float = GRACE_S
    code_in_working_dir: bool = False
    """On a Ray cluster the snapshot travels as the worker's runtime_env working_dir: the
    worker's current folder is the code to copy."""
    first_epoch: int = 0
    """The epoch the first logged value of the primary metric is about (after a checkpoint)."""

    def resume_at(self, epoch: int) -> CommandTrainer:
        """This trainer for a trial that continues from its checkpoint at ``epoch - 1``: the
        script's logs are counted from there."""
        return dataclasses.replace(self, first_epoch=epoch)

    def __call__(self, params: dict[str, Any], report: Report) -> dict[str, Any]:
        checkpoint_dir = params.pop("checkpoint_dir", None)
        server, run_id = (params.pop(key, None) for key in RUN_PARAMS)
        out_dir = Path(params.pop("output_dir")).resolve()
        trial_dir = out_dir.parent
        out_dir.mkdir(parents=True, exist_ok=True)
        outputs = {name: str(out_dir / name) for name in self.outputs}
        for folder in outputs.values():
            Path(folder).mkdir(parents=True, exist_ok=True)
        try:
            command = expand_command(
                self.command, search_space=params, inputs=self.inputs, outputs=outputs
            )
        except KeyError as exc:
            raise TrialFailed(f"trial.command: {exc.args[0]} has no value") from None
        cwd = self._workdir(trial_dir, out_dir)
        if server and run_id:  # the sweep is tracked: log into the trial's run there
            run = MlflowRun(trial_dir / "mlruns", run_id=run_id, server=server).attach()
        else:
            run = MlflowRun(trial_dir / "mlruns").create(trial_dir.name)
        env = self._env(params, run, out_dir)
        if checkpoint_dir:
            env["SWEEP_CHECKPOINT_DIR"] = str(checkpoint_dir)
        (trial_dir / "command.txt").write_text(command + "\n")
        group = ProcessGroup()
        try:
            self._start(group, command, cwd, env, trial_dir)
            group.guard()
            stopped = self._watch(group, run, report)
        finally:
            group.stop(self.grace_s)
        metrics, logged_params = run.latest()
        (trial_dir / "mlflow_params.json").write_text(json.dumps(logged_params, indent=2))
        if stopped:
            return metrics
        failure = group.first_failure()
        if failure is not None:
            rank, code = failure
            who = (
                "the command" if len(group.procs) == 1 else f"process {rank} of {len(group.procs)}"
            )  # horovodrun is one process
            if code in PREEMPTED:
                # SIGTERM from outside (a spot node's preemption notice, a cluster's drain):
                # the script had its grace period; what it saved in its checkpoint folder
                # on the way out is kept, and the trial continues from it.
                raise TrialPreempted(f"{who} was stopped by SIGTERM (exit code {code})")
            tail = group.stderr_tail(rank, lines=3)
            raise TrialFailed(f"{who} exited with code {code}" + (f": {tail}" if tail else ""))
        if self.metric not in metrics and self.first_epoch > 0:
            # A continued run that logged nothing: the script found every epoch done in its
            # checkpoint (the notice had landed after its last log); the trial's last report
            # stands as its result.
            return metrics
        if self.metric not in metrics:
            logged = ", ".join(sorted(metrics)) or "nothing"
            raise TrialFailed(
                f"the script never logged '{self.metric}' (the objective's "
                f"primary_metric) with MLflow; it logged: {logged}"
            )
        return metrics

    def _workdir(self, trial_dir: Path, out_dir: Path) -> Path:
        """A copy of the code snapshot per trial (as Azure gives each trial its own), whose
        ``./outputs`` is the trial's outputs folder: Azure keeps that folder too."""
        cwd = trial_dir / "code"
        if cwd.exists():
            shutil.rmtree(cwd)
        source = os.getcwd() if self.code_in_working_dir else self.code
        if source:
            shutil.copytree(source, cwd, symlinks=True)
        else:
            cwd.mkdir(parents=True)
        link = cwd / "outputs"
        if not link.exists():
            link.symlink_to(out_dir, target_is_directory=True)
        return cwd

    def _env(self, params: Mapping[str, Any], run: MlflowRun, out_dir: Path) -> dict[str, str]:
        env = dict(os.environ)
        # The interpreter running the sweep comes first: "python" means this environment.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(self.environment_variables)
        env.update(run.env())
        env["AZUREML_SWEEP_OUTPUTS_DIR"] = str(out_dir)
        for key, value in params.items():
            env[f"AZUREML_SWEEP_{key}"] = (
                json.dumps(value) if isinstance(value, dict) else str(value)
            )
        return env

    def _start(
        self, group: ProcessGroup, command: str, cwd: Path, env: dict[str, str], trial_dir: Path
    ) -> None:
        if self.distribution == "mpi" and self.processes > 1:
            horovodrun = shutil.which("horovodrun", path=env["PATH"])
            if horovodrun is None:
                raise TrialFailed(
                    "trial.distribution: mpi runs under Horovod's launcher, and "
                    "horovodrun is not installed (bash scripts/build_horovod.sh)"
                )
            argv = [
                horovodrun,
                "-np",
                str(self.processes),
                "-H",
                f"localhost:{self.processes}",
                "--gloo",
                "bash",
                "-c",
                command,
            ]
            group.start(
                argv, cwd=cwd, env=env, log=trial_dir / TRIAL_LOG, err_log=trial_dir / "stderr.log"
            )
            return
        ranks = self.processes if self.distribution in ("pytorch", "tensorflow") else 1
        port = _free_port()
        for rank in range(ranks):
            rank_env = dict(env)
            if self.distribution == "pytorch":
                # What Azure ML sets for PyTorch distribution (and torchrun does).
                rank_env.update(
                    RANK=str(rank),
                    LOCAL_RANK=str(rank),
                    WORLD_SIZE=str(ranks),
                    LOCAL_WORLD_SIZE=str(ranks),
                    NODE_RANK="0",
                    GROUP_RANK="0",
                    MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=str(port),
                )
            suffix = "" if rank == 0 else f"-rank{rank}"
            group.start(
                ["bash", "-c", command],
                cwd=cwd,
                env=rank_env,
                log=trial_dir / f"trial{suffix}.log",
                err_log=trial_dir / f"stderr{suffix}.log",
            )

    def _watch(self, group: ProcessGroup, run: MlflowRun, report: Report) -> bool:
        """Reports each new value of the primary metric; True when the trial was told to
        stop (pruned), False when its processes ended by themselves."""
        index = self.first_epoch
        while True:
            if preemption.NOTICE.is_set():
                return False  # its processes get SIGTERM and trainer.grace_s to save
            done = not group.running() or group.first_failure() is not None
            values = run.new_values(self.metric)
            if values:
                latest, _ = run.latest()
                for value in values:
                    if report(index, {**latest, self.metric: value}):
                        return True
                    index += 1
            if done:
                return False
            time.sleep(POLL_S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
