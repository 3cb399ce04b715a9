"""The Optuna study behind a sweep: its storage, sampler and pruner.

The default storage is a journal file, ``sweeps/NAME/study.journal``. Only the coordinator
writes it (workers send their reports through Ray), so it never has concurrent writers; an
append-only journal costs ~12 ms per 3-report trial against ~97 ms for SQLite, and survives
a killed writer, where SQLite files created by several processes at once failed in our
measurements. A database URL (``postgresql://…``) is for several coordinators on one study.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.study import StudyDirection

from search_spaces import SamplingAlgorithm, SearchSpaceError, SweepConfig, samplers
from search_spaces.optuna_form import OptunaSpace
from search_spaces.samplers import TABLE as SAMPLER_TABLE
from search_spaces.samplers import Sampler
from search_spaces.storage_url import expand, scrub
from sweep.coordination.first_population import LatinHypercubeSampler
from sweep.errors import SweepError
from sweep.records.journal import CUT_SHORT, FlockJournalLock, GroupCommit, find_damage
from sweep.records.layout import JOURNAL
from sweep.scheduling.pruners import make_pruner
from sweep.scheduling.verdicts import fixed_epochs


def open_storage(storage: str, sweep_dir: Path) -> BaseStorage:
    if storage == "default":
        from optuna.storages.journal import JournalFileBackend

        path = sweep_dir / JOURNAL
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = GroupCommit(JournalFileBackend(str(path), lock_obj=FlockJournalLock(str(path))))
        journal = optuna.storages.JournalStorage(backend)
        _GROUP_COMMITS[journal] = backend
        return journal
    # ${VARS} are expanded only here, so a password kept in the environment never lands in
    # sweep.yaml, a log or a report; messages show the URL as written.
    # Heartbeats: several coordinators may share the study, and a trial whose coordinator
    # died is known by its silence (see shared_study).
    from sweep.records.shared_study import HEARTBEAT_S, grace_s

    grace = round(grace_s())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                expand(storage), heartbeat_interval=HEARTBEAT_S, grace_period=grace
            )
    except SearchSpaceError:
        raise
    except Exception as exc:
        message = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, storage)
        raise SweepError(f"storage: cannot open {storage}: {message}") from None


# The journal behind each storage open_storage made, and each study _open_study opened on one.
_GROUP_COMMITS: weakref.WeakKeyDictionary[object, GroupCommit] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def batched_writes(study: optuna.Study) -> Iterator[Callable[[], None]]:
    """Within: the study's journal keeps its records in memory until the ``commit`` this
    yields is called, and at the end (see journal.GroupCommit). A database storage writes
    as it always does; its commit does nothing."""
    backend = _GROUP_COMMITS.get(study)
    if backend is None:
        yield lambda: None
        return
    backend.batching = True
    try:
        yield backend.commit
    finally:
        backend.batching = False
        backend.commit()


def make_sampler(algorithm: SamplingAlgorithm, space: OptunaSpace) -> BaseSampler:
    """The Optuna sampler for a sweep file's ``sampling_algorithm`` (see ``SAMPLERS``).
    Constraints reach the samplers that model them (TPE, GP, NSGA-II) through each trial's
    ``set_constraint`` (Optuna 5), not through the sampler."""
    cls = SAMPLER_TABLE.get(algorithm.type)
    if cls is None or cls not in SAMPLERS:
        raise SweepError(f"sampling_algorithm: {algorithm.type!r} has no sampler")
    return SAMPLERS[cls](cls(seed=algorithm.seed, **algorithm.options), space)


def _random(s: Sampler, space: OptunaSpace) -> BaseSampler:
    assert isinstance(s, samplers.Random)
    if s.rule == "sobol":
        return _qmc(qmc_type="sobol", scramble=True, seed=s.seed)
    return optuna.samplers.RandomSampler(seed=s.seed)


def _tpe(s: Sampler, space: OptunaSpace) -> BaseSampler:
    # Multivariate with the constant liar: choices, log scales and conditional spaces
    # natively, trials running in parallel, milliseconds per trial.
    return optuna.samplers.TPESampler(seed=s.seed, multivariate=True, constant_liar=True)


SAMPLERS: dict[type[Sampler], Callable[[Sampler, OptunaSpace], BaseSampler]] = {
    samplers.Random: _random,
    samplers.Grid: lambda s, space: _AskTellGridSampler(space.grid(), seed=s.seed),
    samplers.Bayesian: _tpe,
    samplers.Tpe: _tpe,
    samplers.CmaEs: lambda s, space: optuna.samplers.CmaEsSampler(
        seed=s.seed, warn_independent_sampling=False
    ),
    samplers.Gp: lambda s, space: optuna.samplers.GPSampler(seed=s.seed),
    samplers.Qmc: lambda s, space: _qmc(seed=s.seed),
    samplers.Pbt: lambda s, space: _first_population(s),
    samplers.Nsga2: lambda s, space: _nsga2(s),
}
"""Each sampling algorithm's Optuna sampler, by its class in search_spaces.samplers."""


def _first_population(s: Sampler) -> BaseSampler:
    # PBT's first population is spread, one member a stratum of each parameter; later
    # members' params come from its explore step.
    assert isinstance(s, samplers.Pbt)
    return LatinHypercubeSampler(s.population_size, seed=s.seed)


def _nsga2(s: Sampler) -> BaseSampler:
    assert isinstance(s, samplers.Nsga2)
    return optuna.samplers.NSGAIISampler(population_size=s.population_size or 50, seed=s.seed)


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler without its study.stop() when the grid is used up.

    study.stop() only works inside study.optimize; with ask-and-tell it raises. The
    coordinator caps a grid sweep's trials at the grid's size instead.
    """

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


def _qmc(**kwargs: Any) -> BaseSampler:
    # Optuna marks QMC experimental; a sweep file that asks for it has chosen it knowingly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(**kwargs)


def open_study(
    config: SweepConfig, space: OptunaSpace, sweep_dir: Path, *, create: bool = True
) -> optuna.Study:
    """Creates the sweep's study, or loads it when it exists (``sweep resume``, reports).

    A seeded sampler continues its sequence on resume instead of starting it over: its seed
    is derived from the sweep's seed and the trials already in the study, so resumed trials
    do not replay the first trials' parameters (and the same resume is still reproducible).
    """
    try:
        return _open_study(config, space, sweep_dir, create)
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        # Optuna fails on a damaged journal in many ways (a KeyError also says "no such
        # study", its replay asserts on an unknown op code): only then is the file read
        # again to say which line is damaged, so a whole journal is read once per open.
        journal = sweep_dir / JOURNAL
        damage = (
            find_damage(journal.read_bytes())
            if config.storage == "default" and journal.is_file()
            else None
        )
        # A last record cut short is skipped by Optuna's reader (a crash, or a writer that
        # is mid-line right now): not the cause.
        if damage is not None and damage[2] != CUT_SHORT:
            raise SweepError(
                f"{journal}: line {damage[1]} is damaged ({damage[2]}); 'sweep resume "
                f"{config.name}' moves it and the records after it to a side file and goes "
                "on from those before it"
            ) from None
        if isinstance(exc, json.JSONDecodeError) or "log format" in str(exc):
            raise SweepError(
                f"{journal} has a damaged record; 'sweep resume {config.name}' "
                "cuts it off and goes on"
            ) from None
        raise


def _open_study(
    config: SweepConfig, space: OptunaSpace, sweep_dir: Path, create: bool
) -> optuna.Study:
    log_like_a_library()
    storage = open_storage(config.storage, sweep_dir)
    done = _trials_so_far(storage, config.name)
    if config.storage != "default":
        # Coordinators sharing a database study start together and see the same trials: a
        # seed of their own keeps a seeded file from proposing the same params in each
        # (a shared study is not reproducible trial for trial anyway).
        done += 1 + (os.getpid() * 7919 + time.time_ns()) % 1_000_000_007
    sampler = make_sampler(_continued(config.sampling_algorithm, done), space)
    pruner = make_pruner(config.early_termination, fixed_epochs(config))
    if not create:
        study = optuna.load_study(
            study_name=config.name, storage=storage, sampler=sampler, pruner=pruner
        )
    else:
        study = optuna.create_study(
            study_name=config.name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            directions=[
                StudyDirection.MAXIMIZE if up else StudyDirection.MINIMIZE
                for up in config.maximizes
            ],
            load_if_exists=True,
        )
    if storage in _GROUP_COMMITS:
        _GROUP_COMMITS[study] = _GROUP_COMMITS[storage]
    return study


def log_like_a_library() -> None:
    """Optuna's own stderr handler would print a line per study and per trial from inside a
    library call; its records go through ``logging`` instead, like ours (the CLI shows
    warnings; a caller's logging configuration decides the rest)."""
    global _LOGGING_SET
    if not _LOGGING_SET:
        optuna.logging.disable_default_handler()
        optuna.logging.enable_propagation()
        _LOGGING_SET = True


_LOGGING_SET = False


def delete_study(config: SweepConfig, sweep_dir: Path) -> None:
    """Removes the sweep's study from a database storage (after a start that failed)."""
    try:
        optuna.delete_study(study_name=config.name, storage=open_storage(config.storage, sweep_dir))
    except (KeyError, SweepError):
        pass


def _trials_so_far(storage: BaseStorage, name: str) -> int:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


def _continued(algorithm: SamplingAlgorithm, done: int) -> SamplingAlgorithm:
    if algorithm.seed is None or done == 0:
        return algorithm
    # A fixed odd multiplier spreads (seed, done) pairs; any injective mix would do.
    seed = (algorithm.seed * 1_000_003 + done) % 2**32
    return dataclasses.replace(algorithm, seed=seed)
