"""The library face: ``Sweep`` builds, checks, runs and resumes a sweep; what it left is read
and amended through ``StoredSweep`` (``sweep.stored_sweep``), whose operations it offers too."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import yaml

from search_spaces import (
    SAFE_NAME,
    SweepConfig,
    abbreviate,
    parse_sweep,
    read_sweep_file,
    to_dict,
    to_optuna,
)
from search_spaces.atomic_files import write_atomic
from search_spaces.placement import with_absolute_paths, with_limits
from sweep.backends import Backend, make_backend
from sweep.coordination.coordinator import Coordinator
from sweep.coordination.listener import Listener
from sweep.coordination.study import open_study
from sweep.errors import SweepInputError
from sweep.records import layout
from sweep.records.journal import heal
from sweep.records.layout import (
    CONFIG_FILE,
    JOURNAL,
    sweeps_root,
)
from sweep.records.lock import SweepLock
from sweep.result import SweepResult
from sweep.stored_sweep import StoredSweep
from sweep.trainers.trial_kinds import TrialKind, trial_kind
from sweep.trials import TrainFn

if TYPE_CHECKING:
    from reports import Comparison
    from sweep.azure.sweep_job import AzureMLRunner
    from sweep.coordination.warm_start import History

logger = logging.getLogger(__name__)


class Sweep:
    """A hyperparameter sweep.

    Example:
        >>> sweep = Sweep.from_yaml("space.yaml")            # doctest: +SKIP
        >>> result = sweep.run()                             # doctest: +SKIP
        >>> result.best.params, result.best.value            # doctest: +SKIP

        >>> def my_train(params, report):                    # doctest: +SKIP
        ...     for epoch in range(params["num_epochs"]):
        ...         acc = ...
        ...         if report(epoch, {"val_acc": acc}):
        ...             break
        ...     return {"best_val_acc": acc}
        >>> Sweep(name="mine", search_space={"num_epochs": {"type": "choice", "values": [2, 4]}},
        ...       trainer=my_train).run()                    # doctest: +SKIP
    """

    def __init__(
        self,
        name: str | None = None,
        search_space: Mapping[str, Any] | None = None,
        *,
        trainer: str | TrainFn = "trainer",
        config: SweepConfig | None = None,
        root: str | Path | None = None,
        backend: Backend | None = None,
        azure: AzureMLRunner | None = None,
        **settings: Any,
    ) -> None:
        """Builds a sweep from keyword settings named as in the sweep file.

        Args:
            trainer: ``"trainer"``, ``"package.module:function"``, or the function itself.
            config: an already-read SweepConfig (instead of name/search_space/settings).
            root: the folder of sweeps (default ./sweeps).
            backend: where trials run; by default from ``compute`` (a local Ray or a cluster).
            azure: the Azure ML runner for ``compute: azure:CLUSTER`` (by default one that
                reads the workspace's config.json and logs its progress).
            settings: ``trainer_args``, ``trainer_env``, ``objective``, ``sampling_algorithm``,
                ``early_termination``, ``limits``, ``resources``, ``compute``, ``storage``,
                ``register``, ``keep``, ``warm_start``, ``retries``: the sweep file's sections.
        """
        if config is not None and (name is not None or search_space is not None or settings):
            given = [k for k, v in (("name", name), ("search_space", search_space)) if v] + list(
                settings
            )
            raise SweepInputError(
                f"Sweep(config=…) takes its settings from the config; "
                f"{', '.join(given)} would be ignored: pass one or the other"
            )
        if config is None:
            if search_space is None:
                raise SweepInputError("search_space: is required")
            data: dict[str, Any] = {"search_space": dict(search_space)}
            if name:
                data["name"] = name
            data["trainer"] = {
                "entry": trainer if isinstance(trainer, str) else _entry_name(trainer),
                "args": dict(settings.pop("trainer_args", {})),
                "retries": settings.pop("retries", 0),
                "env": dict(settings.pop("trainer_env", {})),
            }
            data.update(settings)
            config = parse_sweep(data, default_name=name or "sweep")
        self.config = with_absolute_paths(config)
        self.space = to_optuna(self.config.search_space)
        """The search space as Optuna asks for it and how its answers read back."""
        self.entry: str | TrainFn = trainer if callable(trainer) else self.config.trainer.entry
        self.root = sweeps_root(root)
        on_azure = self.config.on_azure
        if backend is not None and on_azure:
            raise SweepInputError(
                f"backend: compute {self.config.compute} runs the whole "
                "sweep on Azure ML; no trial backend is used there"
            )
        if azure is not None and not on_azure:
            raise SweepInputError(f"azure: compute is {self.config.compute}, not azure:CLUSTER")
        self.backend = backend
        self.azure = azure
        self._history: History | None = None

    @classmethod
    def from_yaml(
        cls, path: str | Path, *, overrides: list[str] | tuple[str, ...] = (), **kwargs: Any
    ) -> Sweep:
        """The sweep of a sweep file: ours, an Azure ML sweep job, or a W&B config.

        ``overrides`` are ``KEY=VALUE`` items set on the file first, as ``--set`` does.
        """
        return cls(config=read_sweep_file(path, overrides), **kwargs)

    @classmethod
    def load(cls, name: str, *, root: str | Path | None = None, **kwargs: Any) -> Sweep:
        """The sweep called ``name`` under ``root``, as it was started (for resume, status)."""
        if not SAFE_NAME.match(name):
            raise SweepInputError(
                f"{abbreviate(name)} is not a sweep name (letters, digits, '.', '_' or '-')"
            )
        folder = sweeps_root(root) / name
        if not (folder / CONFIG_FILE).is_file():
            raise SweepInputError(f"no sweep named {name!r} in {sweeps_root(root)}")
        data = yaml.safe_load((folder / CONFIG_FILE).read_text())
        return cls(config=parse_sweep(data, base_dir=folder), root=root, **kwargs)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def sweep_dir(self) -> Path:
        return self.root / self.config.name

    def run(
        self,
        *,
        max_trials: int | None = None,
        parallel: int | None = None,
        listener: Listener | None = None,
    ) -> SweepResult:
        """Starts the sweep; a sweep of the same name must not exist yet (see :meth:`resume`).

        All or nothing until trials start: a run that fails before (an unreachable cluster, a
        storage that does not open) leaves no sweep folder behind.
        """
        made = [p for p in (self.root, self.sweep_dir) if not p.exists()]
        lock = SweepLock(self.sweep_dir).acquire()
        try:
            if layout.started(self.sweep_dir):
                raise SweepInputError(
                    f"a sweep named {self.name!r} already exists in {self.sweep_dir}; continue "
                    f"it with 'sweep resume {self.name}', or start over after 'rm -r "
                    f"{self.sweep_dir}' (registered models stay), or give this one another name"
                )
            return self._place(max_trials, parallel, listener, fresh=True)
        except BaseException:
            if made and not (self.sweep_dir / CONFIG_FILE).exists():
                lock.path.unlink(missing_ok=True)
                for folder in reversed(made):
                    with contextlib.suppress(OSError):
                        folder.rmdir()  # only when empty: never anything of someone else's
            raise
        finally:
            lock.release()

    def resume(
        self,
        *,
        max_trials: int | None = None,
        parallel: int | None = None,
        listener: Listener | None = None,
    ) -> SweepResult:
        """Continues the sweep: finished trials are kept, interrupted ones run again.

        A sweep with nothing left to run is returned as it stands, without starting Ray
        (see :meth:`trials_left`); its registered version is the one it already had.
        """
        with SweepLock(self.sweep_dir):
            if self._on_azure:
                return self._place(max_trials, parallel, listener, fresh=False)
            heal(self.sweep_dir / JOURNAL)
            if self.trials_left(max_trials) == 0:
                logger.info("sweep %s has no trial left to run", self.name)
                return self.finish(self.result())  # idempotent: the same best/ and version
            return self._place(max_trials, parallel, listener, fresh=False)

    @property
    def kind(self) -> TrialKind:
        return trial_kind(self.config)

    @property
    def _on_azure(self) -> bool:
        return self.config.on_azure

    def _place(
        self,
        max_trials: int | None,
        parallel: int | None,
        listener: Listener | None,
        *,
        fresh: bool,
    ) -> SweepResult:
        """Where the sweep runs: its trials on a backend (threads, a local Ray, a Ray
        cluster), or the whole sweep on Azure ML."""
        if self._on_azure:
            return self._run_on_azure(max_trials, parallel, listener, fresh=fresh)
        return self._run(max_trials, parallel, listener, fresh=fresh)

    def _run_on_azure(
        self,
        max_trials: int | None,
        parallel: int | None,
        listener: Listener | None,
        *,
        fresh: bool,
    ) -> SweepResult:
        from sweep.azure.sweep_job import AzureMLRunner

        if listener is not None:
            raise SweepInputError(
                "listener: Azure ML runs the trials and shows them in its "
                "studio; AzureMLRunner(progress=…) hears the job's progress"
            )
        self.warm_start()  # refused there
        runner = self.azure or AzureMLRunner()
        config = with_limits(self.config, max_trials, parallel)
        if runner.submitted(self.sweep_dir) is None:
            self.save_config()  # what 'sweep resume NAME' reads to re-attach
        try:
            return runner.run(config, self.sweep_dir)
        except BaseException:
            if fresh and runner.submitted(self.sweep_dir) is None:
                self._discard()  # nothing reached Azure: nothing to re-attach to
            raise

    def continue_trial(
        self,
        number: int,
        *,
        epochs: int,
        parallel: int | None = None,
        listener: Listener | None = None,
    ) -> SweepResult:
        """Trains completed trial ``number`` further, to ``epochs`` epochs in all, from its
        checkpoint: a new trial (its ``continues`` attribute names ``number``) with the same
        params, outside the trial budget; the sweep's end (best, registration) follows.
        """
        if self._on_azure:
            raise SweepInputError(
                "continue: Azure ML keeps no trial checkpoints for sweep; "
                "trials continue on a local or Ray compute only"
            )
        with SweepLock(self.sweep_dir):
            new = self.stored.queue_continue(number, epochs)
            return self._run(None, parallel, listener, fresh=False, only=[new])

    def _run(
        self,
        max_trials: int | None,
        parallel: int | None,
        listener: Listener | None,
        *,
        fresh: bool,
        only: list[int] | None = None,
    ) -> SweepResult:
        self.check()
        self.warm_start()  # a missing or unlike earlier sweep is refused before Ray starts
        space = self.space
        res = self.config.resources
        backend = self.backend or make_backend(self.config.compute, self._code_env())
        # Connect first: an unreachable cluster must leave no half-made sweep behind.
        slots = backend.open(res, parallel or self.config.limits.max_concurrent_trials)
        try:
            self.entry = self.kind.entry(self.config, self.sweep_dir, self.entry)
            if max_trials is not None and max_trials > self.config.limits.max_total_trials:
                self._record_budget(max_trials)
            self.save_config()
            study = open_study(self.config, space, self.sweep_dir)
            if self.config.warm_start is not None:
                from sweep.coordination.warm_start import WarmStartSampler, teach_pruner

                study.sampler = WarmStartSampler(study.sampler, self.warm_start().trials)
                teach_pruner(study.pruner, self.warm_start())
        except BaseException:
            backend.close()
            if fresh:
                self._discard()
            raise
        from sweep.records.tracking import artifacts, make_tracker

        tracker = make_tracker(self.config, self.sweep_dir, own_metrics=self.kind.logs_own_metrics)
        tracker.start_sweep()
        best: float | None = None
        try:
            Coordinator(
                self.config,
                study,
                space,
                backend,
                slots,
                self.sweep_dir,
                entry=self.entry,
                max_trials=max_trials,
                only=only,
                listener=listener,
                tracker=tracker,
                calibration=self.warm_start().trials,
            ).run()
            result = self.finish(self.result(study))
            best = result.best.value if result.best is not None else None
            return result
        finally:
            tracker.end_sweep(best, artifacts(self.sweep_dir))

    def _discard(self) -> None:
        """Removes what a failed start wrote (only our own names: the folder may hold more)."""
        for name in (CONFIG_FILE, JOURNAL, layout.CODE, layout.TRIALS, layout.AZURE):
            path = self.sweep_dir / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if self.config.storage != "default":
            from sweep.coordination.study import delete_study

            delete_study(self.config, self.sweep_dir)

    def _code_env(self) -> dict[str, Any] | None:
        """For a Ray cluster: how the trainer's own code reaches the nodes."""
        if not self.config.compute.startswith("ray"):
            return None
        from sweep.backends.ray_code import code_runtime_env

        return code_runtime_env(self.entry, self.kind.code(self.config))

    def _record_budget(self, max_trials: int) -> None:
        """``--max-trials N`` above the sweep's budget becomes its budget in sweep.yaml: a
        resume after a crash (kill -9 included) goes on to N, not to the old total (which
        stranded the trials the crashed coordinator had started beyond it). A lower N caps
        one run only (run a few, then resume the rest)."""
        self.config = with_limits(self.config, max_trials, None)
        path = self.sweep_dir / CONFIG_FILE
        if path.exists():
            data = dict(yaml.safe_load(path.read_text()))
            data["limits"] = {**(data.get("limits") or {}), "max_total_trials": max_trials}
            write_atomic(path, yaml.safe_dump(data, sort_keys=False))

    def save_config(self) -> None:
        """Writes sweep.yaml (what resume, status and reports read), once."""
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        path = self.sweep_dir / CONFIG_FILE
        if not path.exists():
            data = self.kind.as_started(self.config, to_dict(self.config), self.sweep_dir)
            write_atomic(path, yaml.safe_dump(data, sort_keys=False))

    def finish(self, result: SweepResult) -> SweepResult:
        """What a sweep leaves at its end: trials.csv, best/ (model, ONNX, card), registration."""
        started = time.perf_counter()
        finished = self._finish(result)
        return dataclasses.replace(finished, finish_s=time.perf_counter() - started)

    def _finish(self, result: SweepResult) -> SweepResult:
        from sweep.sweep_end import finish_sweep

        return finish_sweep(self.config, self.kind, result)

    @property
    def stored(self) -> StoredSweep:
        """The operations on the sweep as it stands in its storage."""
        return StoredSweep(self.config, self.space, self.sweep_dir, self.kind)

    def heal_journal(self) -> None:
        """Moves a damaged journal's bad records aside, so that the study opens; done by
        ``resume`` and ``continue`` themselves too."""
        self.stored.heal_journal()

    def trials_left(self, max_trials: int | None = None) -> int | None:
        """How many trials a resume would run; None when the sweep has no study yet."""
        return self.stored.trials_left(max_trials)

    def result(self, study: optuna.Study | None = None) -> SweepResult:
        """The sweep as it stands in its storage."""
        return self.stored.result(study)

    def register_trial(self, number: int, *, infeasible: bool = False) -> str:
        """Registers completed trial ``number``'s model as a new version of
        ``register.model_name``; ``NAME:VERSION`` (see ``StoredSweep.register_trial``)."""
        return self.stored.register_trial(number, infeasible=infeasible)

    def check(self) -> None:
        """What would make every trial fail here, refused before anything runs (see
        :func:`sweep.coordination.checks.check_runs_here`: ``validate`` and ``--dry-run`` make
        them too)."""
        from sweep.coordination.checks import check_runs_here

        check_runs_here(self.config, self.entry)

    def with_space(self, search_space: Mapping[str, Any]) -> Sweep:
        """This started sweep with another search space for the trials it runs next
        (``sweep resume NAME --space FILE``): the same study, where Optuna can keep it (every
        parameter it already has keeps its kind, log scale and choices); the change is
        written to sweep.yaml and recorded in the study (``sweep status`` shows from which
        trial on). Trials already sampled keep their params.

        Raises SweepInputError where the study cannot take the new space (and says to start
        a new sweep that warm-starts from this one), SearchSpaceError for a bad space.
        """
        import optuna

        from sweep.records.trial_attrs import SPACE_CHANGES

        if self._on_azure:
            raise SweepInputError(
                "--space: Azure ML keeps a sweep job's search space; submit a new sweep "
                "with the new space"
            )
        kind = self.config.sampling_algorithm.type
        if kind in ("grid", "pbt"):
            raise SweepInputError(
                f"--space: a {kind} sweep's trials follow the space it started with; start a "
                f"new sweep with the new space (warm_start: {{from: [{self.name}]}} lets it learn "
                "from this one)"
            )
        path = self.sweep_dir / CONFIG_FILE
        with SweepLock(self.sweep_dir):
            data = dict(yaml.safe_load(path.read_text()))
            data["search_space"] = dict(search_space)
            config = parse_sweep(data, base_dir=self.sweep_dir)
            new = to_optuna(config.search_space).distributions()
            study = open_study(self.config, self.space, self.sweep_dir, create=False)
            trials = study.get_trials(deepcopy=False)
            recorded = {(n, d) for t in trials for n, d in t.distributions.items() if n in new}
            for name, old in sorted(recorded, key=lambda r: r[0]):
                try:
                    optuna.distributions.check_distribution_compatibility(old, new[name])
                except ValueError:
                    raise SweepInputError(
                        f"--space: {name} cannot change from {_shown(old)} to "
                        f"{_shown(new[name])} in this sweep's study (its kind, log scale "
                        "and choices stay); start a new sweep with the new space and "
                        f"warm_start: {{from: [{self.name}]}}"
                    ) from None
            before = self.space.distributions()
            changed = sorted(n for n in set(new) | set(before) if new.get(n) != before.get(n))
            if changed:
                changes = list(study.user_attrs.get(SPACE_CHANGES, []))
                study.set_user_attr(
                    SPACE_CHANGES, [*changes, {"from_trial": len(trials), "params": changed}]
                )
                write_atomic(path, yaml.safe_dump(data, sort_keys=False))
        return Sweep(config=config, root=self.root, backend=self.backend, azure=self.azure)

    def warm_start(self) -> History:
        """What ``warm_start:`` takes from the earlier sweeps (read once; nothing when the
        sweep has no warm start). Raises SweepInputError for a sweep that is not there or
        was tuned for another objective."""
        from sweep.coordination.warm_start import History, load_history

        if self.config.warm_start is not None and self.config.on_azure:
            raise SweepInputError(
                "warm_start: Azure ML samples a sweep job's trials on its side and takes no "
                "earlier trials; drop warm_start there, or run the sweep with compute: local"
            )
        if self._history is None:
            self._history = (
                load_history(self.config, self.space, self.root)
                if self.config.warm_start is not None
                else History()
            )
        return self._history


def _shown(dist: Any) -> str:
    """A distribution as a user reads it in a message."""
    choices = getattr(dist, "choices", None)
    if choices is not None:
        return f"a choice of {list(choices)}"
    scale = "log " if getattr(dist, "log", False) else ""
    kind = "integer" if type(dist).__name__.startswith("Int") else "number"
    return f"a {scale}{kind} in [{dist.low}, {dist.high}]"


def compare(names: Sequence[str], root: str | Path | None = None) -> Comparison:
    """Sweeps by name from the sweeps folder, gathered for a report.

    Example:
        >>> from sweep import compare
        >>> compare(["digits-resnet18"]).trials.head()    # doctest: +SKIP
    """
    from reports import Comparison
    from sweep.sweep_end import report_data

    sweeps = []
    for name in names:
        sweep = Sweep.load(name, root=root)
        sweeps.append(report_data(sweep.config, sweep.result()))
    return Comparison(sweeps)


def _entry_name(fn: TrainFn) -> str:
    qualname = getattr(fn, "__qualname__", "train").split(".")[-1].strip("<>") or "train"
    return f"{getattr(fn, '__module__', '__main__')}:{qualname}"
