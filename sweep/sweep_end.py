"""The end of a sweep, one owner for every place a sweep runs: trials.csv, the HTML report,
best/ (the model, its checked ONNX file, its card: ``sweep.model.best_model``) and registration.
An Azure ML sweep, whose trials live in Azure ML, ends in ``AzureMLRunner._collect`` with the
same ``best_model`` functions."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from search_spaces import SweepConfig
from search_spaces.atomic_files import write_atomic
from sweep.errors import SweepInputError
from sweep.records import layout
from sweep.records.outcomes import feasible
from sweep.records.pareto import front, pick
from sweep.records.trial_attrs import current_params
from sweep.result import FrontMember, SweepResult
from sweep.trainers.trial_kinds import TrialKind

if TYPE_CHECKING:
    from reports import SweepData

logger = logging.getLogger(__name__)


def finish_sweep(config: SweepConfig, kind: TrialKind, result: SweepResult) -> SweepResult:
    """Writes what a sweep leaves at its end (again, after a resume: the same files, the same
    registered version when the best did not change)."""
    from reports import Comparison, build_html
    from sweep.model.best_model import register_best

    write_atomic(result.sweep_dir / layout.TRIALS_CSV, result.trials.to_csv(index=False))
    build_html(Comparison([report_data(config, result)]), result.sweep_dir / layout.REPORT_HTML)
    best_dir = kind.keep_best(config, result)
    if best_dir is None:
        if config.register is not None and result.best is not None:
            logger.warning(
                "register: nothing registered as %s: the best trial (%s) left no model "
                "of the built-in trainer in its outputs/ (save one with "
                "trainer.checkpoint.save_checkpoint, as the built-in trainer does)",
                config.register.model_name,
                result.best.number,
            )
        return result
    registered = register_best(config, best_dir)
    return dataclasses.replace(
        result, best_dir=best_dir, registered=str(registered) if registered else None
    )


def report_data(config: SweepConfig, result: SweepResult) -> SweepData:
    """A sweep as the report takes it: plain frames and histories."""
    from reports.compare import sweep_data

    if result.study is None:
        raise SweepInputError(
            f"sweep {result.name} ran on Azure ML: its trials are in Azure "
            f"ML studio (job {result.job}), not in a local study"
        )
    objective = config.objective
    return sweep_data(
        result.name,
        result.sweep_dir,
        result.trials,
        objective.primary_metric,
        objective.goal,
        layout.histories(result.sweep_dir),
        tuple((o.primary_metric, o.goal) for o in config.goals) if config.multi_objective else (),
        lineage=config.warm_start.lineage() if config.warm_start else "",
    )


def pick_trial(config: SweepConfig, study: optuna.Study) -> FrozenTrial | None:
    """The completed trial best on the first objective among those meeting every
    constraint (the earliest of equals); None before one completed."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return None
    if not config.multi_objective and not config.constraints:
        return study.best_trial
    feasible_ones = {t.number: t for t in done if feasible(t)}
    number = pick([(n, t.values) for n, t in feasible_ones.items()], config.maximizes)
    return feasible_ones[number] if number is not None else None


def pareto_front(
    config: SweepConfig, study: optuna.Study, decode: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> tuple[FrontMember, ...]:
    """Several objectives: the non-dominated completed trials meeting every constraint."""
    if not config.multi_objective:
        return ()
    done = {
        t.number: t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if feasible(t)
    }
    on_front = front([(n, t.values) for n, t in done.items()], config.maximizes)
    return tuple(
        FrontMember(n, tuple(done[n].values), current_params(done[n], decode)) for n in on_front
    )


def trials_frame_of(
    study: optuna.Study, config: SweepConfig, decode: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> pd.DataFrame:
    """The study's trials as the report's frame, params read back as the user wrote them."""
    from sweep.records.trials_table import trials_frame
    from sweep.scheduling.verdicts import fixed_epochs

    return trials_frame(study, fixed_epochs(config), decode=decode)
