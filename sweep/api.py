"""The library face: ``Sweep`` (build, run, resume) and ``SweepResult``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

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
from search_spaces.config import BUILTIN_DATASETS
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
    RESULT,
    sweeps_root,
    trial_dir,
)
from sweep.records.lock import SweepLock
from sweep.records.trial_attrs import CONTINUES, OVERRIDES, REASON, current_params, reopen
from sweep.result import BestTrial, SweepResult
from sweep.sweep_end import pareto_front, pick_trial, trials_frame_of
from sweep.trainers.trial_kinds import TrialKind, trial_kind
from sweep.trials import TrainFn

if TYPE_CHECKING:
    from reports import Comparison
    from sweep.azure.sweep_job import AzureMLRunner

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

    def __init__(self, name: str | None = None, search_space: Mapping[str, Any] | None = None,
                 *, trainer: str | TrainFn = "trainer", config: SweepConfig | None = None,
                 root: str | Path | None = None, backend: Backend | None = None,
                 azure: AzureMLRunner | None = None, **settings: Any) -> None:
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
                ``register``, ``keep``, ``retries``: the sweep file's sections.
        """
        if config is not None and (name is not None or search_space is not None or settings):
            given = [k for k, v in (("name", name), ("search_space", search_space)) if v] + \
                list(settings)
            raise SweepInputError(f"Sweep(config=…) takes its settings from the config; "
                                  f"{', '.join(given)} would be ignored: pass one or the other")
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
        self.config = _absolute_data(config)
        self.space = to_optuna(self.config.search_space)
        """The search space as Optuna asks for it and how its answers read back."""
        self.entry: str | TrainFn = trainer if callable(trainer) else self.config.trainer.entry
        self.root = sweeps_root(root)
        on_azure = self.config.on_azure
        if backend is not None and on_azure:
            raise SweepInputError(f"backend: compute {self.config.compute} runs the whole "
                                  "sweep on Azure ML; no trial backend is used there")
        if azure is not None and not on_azure:
            raise SweepInputError(f"azure: compute is {self.config.compute}, not azure:CLUSTER")
        self.backend = backend
        self.azure = azure

    @classmethod
    def from_yaml(cls, path: str | Path, *, overrides: list[str] | tuple[str, ...] = (),
                  **kwargs: Any) -> Sweep:
        """The sweep of a sweep file: ours, an Azure ML sweep job, or a W&B config.

        ``overrides`` are ``KEY=VALUE`` items set on the file first, as ``--set`` does.
        """
        return cls(config=read_sweep_file(path, overrides), **kwargs)

    @classmethod
    def load(cls, name: str, *, root: str | Path | None = None, **kwargs: Any) -> Sweep:
        """The sweep called ``name`` under ``root``, as it was started (for resume, status)."""
        if not SAFE_NAME.match(name):
            raise SweepInputError(f"{abbreviate(name)} is not a sweep name (letters, digits, "
                                  "'.', '_' or '-')")
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

    def run(self, *, max_trials: int | None = None, parallel: int | None = None,
            listener: Listener | None = None) -> SweepResult:
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

    def resume(self, *, max_trials: int | None = None, parallel: int | None = None,
               listener: Listener | None = None) -> SweepResult:
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

    def _place(self, max_trials: int | None, parallel: int | None,
               listener: Listener | None, *, fresh: bool) -> SweepResult:
        """Where the sweep runs: its trials on a backend (threads, a local Ray, a Ray
        cluster), or the whole sweep on Azure ML."""
        if self._on_azure:
            return self._run_on_azure(max_trials, parallel, listener, fresh=fresh)
        return self._run(max_trials, parallel, listener, fresh=fresh)

    def _run_on_azure(self, max_trials: int | None, parallel: int | None,
                      listener: Listener | None, *, fresh: bool) -> SweepResult:
        from sweep.azure.sweep_job import AzureMLRunner

        if listener is not None:
            raise SweepInputError("listener: Azure ML runs the trials and shows them in its "
                                  "studio; AzureMLRunner(progress=…) hears the job's progress")
        runner = self.azure or AzureMLRunner()
        config = _with_limits(self.config, max_trials, parallel)
        if runner.submitted(self.sweep_dir) is None:
            self.save_config()  # what 'sweep resume NAME' reads to re-attach
        try:
            return runner.run(config, self.sweep_dir)
        except BaseException:
            if fresh and runner.submitted(self.sweep_dir) is None:
                self._discard()  # nothing reached Azure: nothing to re-attach to
            raise

    def heal_journal(self) -> None:
        """Moves a damaged journal's bad records aside (see :func:`sweep.records.journal.heal`), so
        that the study opens; done by ``resume`` and ``continue`` themselves too."""
        if self.config.storage == "default" and not self._on_azure:
            with SweepLock(self.sweep_dir):
                heal(self.sweep_dir / JOURNAL)

    def trials_left(self, max_trials: int | None = None) -> int | None:
        """How many trials a resume would run; None when the sweep has no study yet."""
        from sweep.records.budget import planned_total, trials_left

        try:
            study = open_study(self.config, self.space, self.sweep_dir, create=False)
        except KeyError:
            return None
        return trials_left(study, planned_total(self.config, self.space, max_trials))

    def continue_trial(self, number: int, *, epochs: int, parallel: int | None = None,
                       listener: Listener | None = None) -> SweepResult:
        """Trains completed trial ``number`` further, to ``epochs`` epochs in all, from its
        checkpoint: a new trial (its ``continues`` attribute names ``number``) with the same
        params, outside the trial budget; the sweep's end (best, registration) follows.
        """
        from sweep.records.budget import enqueue
        from sweep.records.checkpoint_store import CheckpointStore

        if self._on_azure:
            raise SweepInputError("continue: Azure ML keeps no trial checkpoints for sweep; "
                                  "trials continue on a local or Ray compute only")
        with SweepLock(self.sweep_dir):
            heal(self.sweep_dir / JOURNAL)
            study = open_study(self.config, self.space, self.sweep_dir, create=False)
            trials = study.get_trials(deepcopy=False)
            if not 0 <= number < len(trials):
                raise SweepInputError(f"--trial: sweep {self.name} has no trial {number} "
                                      f"(it has 0 to {len(trials) - 1})")
            trial = trials[number]
            if trial.state != TrialState.COMPLETE:
                state = {TrialState.FAIL: "failed"}.get(trial.state, trial.state.name.lower())
                raise SweepInputError(f"--trial: trial {number} is {state}; only a completed "
                                      "trial is trained further")
            latest = CheckpointStore(trial_dir(self.sweep_dir, number)).latest()
            if latest is None:
                raise SweepInputError(
                    f"--trial: trial {number} kept no checkpoint (its trainer wrote none, or "
                    "it is not the best completed trial, the one whose checkpoint stays; "
                    "keep: {checkpoints: all} keeps every trial's)")
            if epochs <= latest.epoch + 1:
                raise SweepInputError(f"--epochs: trial {number} has trained {latest.epoch + 1} "
                                      f"epochs already; ask for more than that")
            _supersede_queued_continues(study, number)
            # A PBT member goes on with the params it ended with.
            new = enqueue(study, trial.params, {CONTINUES: number, OVERRIDES: {
                **trial.user_attrs.get(OVERRIDES, {}), "num_epochs": epochs}})
            return self._run(None, parallel, listener, fresh=False, only=[new])

    def _run(self, max_trials: int | None, parallel: int | None,
             listener: Listener | None, *, fresh: bool,
             only: list[int] | None = None) -> SweepResult:
        self.check()
        space = self.space
        res = self.config.resources
        backend = self.backend or make_backend(self.config.compute, self._code_env())
        # Connect first: an unreachable cluster must leave no half-made sweep behind.
        slots = backend.open(res, parallel or self.config.limits.max_concurrent_trials)
        try:
            self.entry = self.kind.entry(self.config, self.sweep_dir, self.entry)
            self.save_config()
            study = open_study(self.config, space, self.sweep_dir)
        except BaseException:
            backend.close()
            if fresh:
                self._discard()
            raise
        from sweep.records.tracking import artifacts, make_tracker

        tracker = make_tracker(self.config, self.sweep_dir,
                               own_metrics=self.kind.logs_own_metrics)
        tracker.start_sweep()
        best: float | None = None
        try:
            Coordinator(self.config, study, space, backend, slots, self.sweep_dir,
                        entry=self.entry, max_trials=max_trials, only=only,
                        listener=listener, tracker=tracker).run()
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

    def result(self, study: optuna.Study | None = None) -> SweepResult:
        """The sweep as it stands in its storage."""
        if study is None:
            if not (self.sweep_dir / CONFIG_FILE).exists():
                raise SweepInputError(f"sweep {self.name!r} has not run yet")
            try:
                study = open_study(self.config, self.space, self.sweep_dir, create=False)
            except KeyError:
                raise SweepInputError(f"sweep {self.name!r} has no study yet") from None
        frame = trials_frame_of(study, self.config, self.space.decode)
        members = pareto_front(self.config, study, self.space.decode)
        if members:
            frame["pareto"] = frame["number"].isin([m.number for m in members])
        return SweepResult(self.name, self.sweep_dir, study, self._best(study, frame), frame,
                           pareto_front=members)

    def _best(self, study: optuna.Study, trials: pd.DataFrame) -> BestTrial | None:
        """The pick: best on the first objective among completed trials meeting every
        constraint (Optuna's best trial, for one objective without constraints)."""
        best = pick_trial(self.config, study)
        return self._as_best(best, trials) if best is not None else None

    def _as_best(self, trial: optuna.trial.FrozenTrial, trials: pd.DataFrame) -> BestTrial:
        folder = trial_dir(self.sweep_dir, trial.number)
        result_file = folder / RESULT
        metrics = json.loads(result_file.read_text()) if result_file.exists() else {}
        model = folder / layout.OUTPUTS / layout.MODEL
        row = trials.set_index("number").loc[trial.number]
        steps = row["schedule"] if "schedule" in row else None  # PBT
        return BestTrial(trial.number, current_params(trial, self.space.decode),
                         float(trial.values[0]), metrics, model if model.exists() else None,
                         steps, tuple(trial.values) if self.config.multi_objective else ())

    def register_trial(self, number: int, *, infeasible: bool = False) -> str:
        """Registers completed trial ``number``'s model (another member of the Pareto front,
        say) as a new version of ``register.model_name``; ``NAME:VERSION``. Once per trial:
        asked again, the version it has. A trial that breaks a constraint is refused unless
        ``infeasible`` is set, and its card then says which constraints it breaks."""
        from sweep.model.best_model import register_best
        from sweep.records.outcomes import broken_constraints

        if self.config.register is None:
            raise SweepInputError(f"register: sweep {self.name} names no model to register "
                                  "under; add register: {model_name: NAME} to its file")
        result = self.result()
        assert result.study is not None
        trials = result.study.get_trials(deepcopy=False)
        if not 0 <= number < len(trials) or trials[number].state != TrialState.COMPLETE:
            raise SweepInputError(f"--trial: sweep {self.name} has no completed trial {number}")
        broken = broken_constraints(trials[number])
        if broken and not infeasible:
            raise SweepInputError(
                f"--trial: trial {number} breaks {', '.join(broken)}; it is never the sweep's "
                "pick, and registering it makes it the latest version: add --infeasible to "
                "register it all the same (its card will say so)")
        chosen = dataclasses.replace(result, best=self._as_best(trials[number], result.trials))
        with SweepLock(self.sweep_dir):
            kept = self.kind.keep_best(self.config, chosen,
                                       self.sweep_dir / layout.REGISTERED / f"{number:04d}")
        if kept is None:
            raise SweepInputError(
                f"--trial: trial {number} kept no model file (model files stay for the best "
                f"keep.models trials and every Pareto front member; keep: {{models: all}} "
                "keeps them all)")
        if broken:
            card = kept / layout.CARD
            write_atomic(card, json.dumps({**json.loads(card.read_text()),
                                           "infeasible": broken}, indent=2) + "\n")
        version = register_best(self.config, kept)
        return str(version)

    def check(self) -> None:
        """What would make every trial fail here, refused before anything runs (see
        :func:`sweep.coordination.checks.check_runs_here`: ``validate`` and ``--dry-run`` make
        them too)."""
        from sweep.coordination.checks import check_runs_here

        check_runs_here(self.config, self.entry)


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


def _supersede_queued_continues(study: optuna.Study, number: int) -> None:
    """Earlier ``sweep continue`` requests of trial ``number`` that never started (stopped
    by Ctrl-C while starting): the new request replaces them, so that neither this
    ``continue`` nor a later ``resume`` runs the old one."""
    from sweep.coordination.coordinator import claim
    from sweep.records.budget import pending_continues

    trials = study.get_trials(deepcopy=False)
    for waiting in pending_continues(trials):
        if trials[waiting].user_attrs.get(CONTINUES) == number and \
                claim(study, waiting, {}) is not None:
            trial = reopen(study, waiting)
            trial.set_user_attr(REASON, "not run: a later sweep continue replaced it")
            study.tell(trial, state=TrialState.FAIL)


def _with_limits(config: SweepConfig, max_trials: int | None,
                 parallel: int | None) -> SweepConfig:
    """The config with ``run``'s budget in its limits (an Azure job file's document too)."""
    if max_trials is None and parallel is None:
        return config
    changed = {k: v for k, v in (("max_total_trials", max_trials),
                                 ("max_concurrent_trials", parallel)) if v is not None}
    doc = config.azure_job
    if doc is not None:
        doc = {**doc, "limits": {**(doc.get("limits") or {}), **changed}}
    return dataclasses.replace(config, limits=dataclasses.replace(config.limits, **changed),
                               azure_job=doc)


def _entry_name(fn: TrainFn) -> str:
    qualname = getattr(fn, "__qualname__", "train").split(".")[-1].strip("<>") or "train"
    return f"{getattr(fn, '__module__', '__main__')}:{qualname}"


def _absolute_data(config: SweepConfig) -> SweepConfig:
    """Data folders relative to the sweep file, made absolute so every worker finds them."""
    args = dict(config.trainer.args)
    storage = _absolute_sqlite(config.storage, config.base_dir)
    changed = storage != config.storage
    for key in ("data", "data_dir"):
        value = args.get(key)
        if isinstance(value, str) and value not in BUILTIN_DATASETS and \
                not value.startswith("azureml:") and not Path(value).is_absolute():
            args[key] = str((config.base_dir / value).resolve())
            changed = True
    if not changed:
        return config
    trainer = dataclasses.replace(config.trainer, args=args)
    return dataclasses.replace(config, trainer=trainer, storage=storage)


def _absolute_sqlite(storage: str, base_dir: Path) -> str:
    """A relative ``sqlite:///PATH`` is relative to the sweep file, as data folders are (not
    to wherever the command runs), and stays so for ``resume`` from anywhere."""
    scheme, sep, rest = storage.partition(":///")
    if not sep or not scheme.lower().startswith("sqlite") or not rest or rest.startswith("/"):
        return storage
    path, q, query = rest.partition("?")
    return f"{scheme}:///{(base_dir / path).resolve()}{q}{query}"

