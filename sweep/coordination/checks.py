"""What would make every trial fail here, refused once before anything runs.

``Sweep.run`` makes these checks first, and ``sweep validate`` and ``--dry-run`` make the same
ones, so a file that validates is a file that runs. Light on purpose: nothing here imports
Optuna, pandas or Ray (torch only to locate ImageNet weights, when a file asks for them).
"""

from __future__ import annotations

from search_spaces import SweepConfig
from sweep.errors import SweepInputError
from sweep.scheduling.verdicts import what_pauses
from sweep.trials import TrainFn


def check_runs_here(config: SweepConfig, entry: str | TrainFn | None = None) -> None:
    """Refuses what no trial could get past (a sweep for Azure ML is checked against Azure's
    rules when its file is read). ``entry``: the trainer, when it is a function."""
    if config.on_azure:
        return
    from search_spaces.env_vars import expand_env
    from sweep.records.storage_drivers import check_driver

    check_driver(config.storage)
    if config.storage != "default":
        from search_spaces.storage_url import expand

        expand(config.storage)  # every ${VAR} it names is set here
    expand_env(config.trainer.env)  # every ${VAR} it names is set here
    pausing = what_pauses(config)
    if pausing and config.keep.checkpoints == "none":
        raise SweepInputError(
            f"{pausing} pauses trials and continues them from their "
            "checkpoints, and keep.checkpoints: none gives trainers no checkpoint folder; "
            "drop keep.checkpoints (the built-in trainer checkpoints every epoch; a trainer of "
            "your own saves its state to params['checkpoint_dir'])"
        )
    res = config.resources
    if res.workers_per_trial > 1 and res.distribution == "horovod":
        raise SweepInputError(
            "resources.distribution: horovod trials run on Azure ML (over MPI); on Ray, "
            "multi-worker trials use ddp"
        )
    from sweep.trainers.trial_kinds import trial_kind

    trial_kind(config).check_entry(config, entry if entry is not None else config.trainer.entry)
