"""Warm start (``warm_start: {from: [NAME, ...]}``): earlier sweeps' completed trials become
the history the new sweep's sampler learns from.

The imported trials are not added to the new study: they are shown to the sampler only
(``WarmStartSampler``), so nothing that counts the sweep's own trials (its budget, its best,
its kept models, its report) can mistake one for its own, and the old sweeps are only read.
Each imported trial is rebuilt with the new space's distributions (TPE's and GP's joint
model covers the parameters every trial shares); a trial with a value the new space no
longer holds (a narrowed range, a removed choice) is skipped and counted, a parameter
removed from the space is dropped from it, and a parameter new to the space is sampled
around them. The new sweep's constraints are evaluated afresh on each old trial's recorded
result (its ``result.json``): what the earlier sweep demanded does not matter, and a trial
that breaks a new constraint still teaches the sampler where not to look.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.distributions import BaseDistribution
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from search_spaces import SearchSpaceError, SweepConfig, parse_sweep, to_optuna
from search_spaces.optuna_form import OptunaSpace
from sweep.coordination.study import open_study
from sweep.errors import SweepInputError
from sweep.records import layout


@dataclass
class History:
    """What a warm start took from the earlier sweeps."""

    trials: list[FrozenTrial] = field(default_factory=list)
    taken: dict[str, int] = field(default_factory=dict)
    """Trials taken, per sweep."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Trials left out, per reason ("learning_rate out of the new space")."""

    def summary(self) -> str:
        """The plan's line: ``warm start: 27 trials from digits-v1, 3 skipped: ...``."""
        took = ", ".join(f"{n} from {name}" for name, n in self.taken.items())
        if not self.taken:
            return "warm start: no earlier sweep of this trainer and objective found"
        line = f"warm start: {len(self.trials)} trials ({took})"
        if self.skipped:
            line += f", {sum(self.skipped.values())} skipped: " + ", ".join(
                f"{reason} ({n})" for reason, n in self.skipped.most_common()
            )
        return line


def load_history(config: SweepConfig, space: OptunaSpace, root: Path) -> History:
    """The completed trials of ``config.warm_start``'s sweeps under ``root`` that fit
    ``space``, as trials of the new space (numbered below 0: before the sweep's own), each
    with its violation of the new sweep's constraints."""
    history = History()
    warm = config.warm_start
    if warm is None:
        return history
    wanted = space.distributions()
    earlier = (
        same_trainer_sweeps(config, root)
        if warm.auto
        else {name: _earlier_sweep(config, root, name) for name in warm.sweeps}
    )
    for name, old_config in earlier.items():
        old_study = open_study(
            old_config, to_optuna(old_config.search_space), root / name, create=False
        )
        done = []
        for old in old_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if old.values is None:
                continue
            violations, why_not = _violations(config, root / name, old.number)
            if why_not:
                history.skipped[why_not] += 1
                continue
            done.append((old, violations))
        if warm.best is not None:
            sign = -1.0 if old_config.maximize else 1.0
            done = sorted(
                done, key=lambda tv: (max(tv[1].values(), default=0.0) > 0, sign * tv[0].values[0])
            )[: warm.best]
        taken = 0
        for old, violations in done:
            params, why_not = _fit(old.params, wanted)
            if why_not:
                history.skipped[why_not] += 1
                continue
            history.trials.append(_as_new(old, params, wanted, name, violations))
            taken += 1
        history.taken[name] = taken
    for number, trial in enumerate(reversed(history.trials), start=1):
        trial.number = -number
    return history


def same_trainer_sweeps(config: SweepConfig, root: Path) -> dict[str, SweepConfig]:
    """``from: auto``: the sweeps under ``root`` of the same trainer and objective (a sweep
    folder that does not read is passed over, as ``sweep ls`` shows it)."""
    found = {}
    mine = trainer_fingerprint(config)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name == config.name or not (folder / layout.CONFIG_FILE).is_file():
            continue
        try:
            old = _earlier_sweep(config, root, folder.name)
        except SweepInputError:
            continue
        if trainer_fingerprint(old) == mine:
            found[folder.name] = old
    return found


def trainer_fingerprint(config: SweepConfig) -> str:
    """What makes two sweeps' trials comparable: the trainer's entry and fixed arguments, or
    a job's command and inputs (data paths included)."""
    if config.command is not None:
        what: Any = {
            "command": config.command.command,
            "inputs": {k: repr(v) for k, v in config.command.inputs.items()},
        }
    else:
        what = {"entry": config.trainer.entry, "args": dict(config.trainer.args)}
    return json.dumps(what, sort_keys=True, default=str)


def _earlier_sweep(config: SweepConfig, root: Path, name: str) -> SweepConfig:
    if name == config.name:
        raise SweepInputError("warm_start.from: names this sweep itself; name earlier sweeps")
    path = root / name / layout.CONFIG_FILE
    if not path.is_file():
        raise SweepInputError(f"warm_start.from: no sweep named {name!r} in {root}")
    try:
        old = parse_sweep(yaml.safe_load(path.read_text()), base_dir=root / name)
    except (SearchSpaceError, yaml.YAMLError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SweepInputError(f"warm_start.from: {path} does not read: {reason}") from None
    theirs = [(o.primary_metric, o.goal) for o in old.goals]
    ours = [(o.primary_metric, o.goal) for o in config.goals]
    if theirs != ours:
        raise SweepInputError(
            f"warm_start.from: {name} was tuned for "
            + ", ".join(f"{g} {m}" for m, g in theirs)
            + ", this sweep for "
            + ", ".join(f"{g} {m}" for m, g in ours)
            + "; a warm start needs the same objective"
        )
    return old


def _violations(config: SweepConfig, old_sweep: Path, number: int) -> tuple[dict[str, float], str]:
    """How far an old trial's recorded result breaks each of the new sweep's constraints
    (Optuna's convention: > 0 broken), or why it cannot be judged."""
    if not config.constraints:
        return {}, ""
    try:
        result = json.loads((layout.trial_dir(old_sweep, number) / layout.RESULT).read_text())
    except (OSError, ValueError):
        result = None
    if not isinstance(result, dict):
        return {}, "no recorded result to check the constraints on"
    violations = {}
    for constraint in config.constraints:
        value = result.get(constraint.metric)
        if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
            return {}, f"{constraint.metric} not recorded"
        violations[str(constraint)] = constraint.violation(float(value))
    return violations, ""


def _fit(params: dict[str, Any], wanted: dict[str, BaseDistribution]) -> tuple[dict[str, Any], str]:
    """The params the new space keeps, or why the trial does not fit it."""
    kept = {}
    for name, value in params.items():
        dist = wanted.get(name)
        if dist is None:
            continue  # removed from the space: the other params still teach
        try:
            inside = dist._contains(dist.to_internal_repr(value))
        except (ValueError, TypeError):
            inside = False
        if not inside:
            return {}, f"{name} out of the new space"
        kept[name] = value
    if not kept:
        return {}, "no parameter in common"
    return kept, ""


def _as_new(
    old: FrozenTrial,
    params: dict[str, Any],
    wanted: dict[str, BaseDistribution],
    name: str,
    violations: dict[str, float],
) -> FrozenTrial:
    return optuna.trial.create_trial(
        params=params,
        distributions={p: wanted[p] for p in params},
        values=list(old.values),
        intermediate_values=dict(old.intermediate_values),
        user_attrs={"imported_from": f"{name}#{old.number}"},
        constraints=violations or None,
    )


def teach_pruner(pruner: BasePruner, history: History) -> int:
    """Gives the forecasting policy the imported trials' curves to calibrate its margin on,
    and the trials themselves to bound each new trial by those most like it
    (``sweep.scheduling.neighbours``); the other policies rank the sweep's own trials: an
    earlier sweep's are not its peers. How many curves it took."""
    from sweep.scheduling.pruners import ForecastPruner

    if not isinstance(pruner, ForecastPruner):
        return 0
    return pruner.judge.calibrate_on(history.trials)


def teach_scheduler(scheduler: object, history: Sequence[FrozenTrial]) -> int:
    """The same for ``forecast`` in promotion mode, whose judge is the pausing scheduler's."""
    judge = getattr(scheduler, "forecast", None)
    if judge is None or not history:
        return 0
    return int(judge.calibrate_on(history))


class _StudyWithHistory:
    """The study as the sampler sees it: the imported trials first, then its own."""

    def __init__(self, study: optuna.Study, history: Sequence[FrozenTrial]) -> None:
        self._study, self._history = study, history

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        own = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        old = [t for t in self._history if states is None or t.state in states]
        return (copy.deepcopy(old) if deepcopy else old) + own

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class WarmStartSampler(BaseSampler):
    """``sampler`` deciding with the earlier sweeps' trials as well as the study's own."""

    def __init__(self, sampler: BaseSampler, history: Sequence[FrozenTrial]) -> None:
        self.sampler, self.history = sampler, list(history)

    def _seen(self, study: optuna.Study) -> Any:
        return _StudyWithHistory(study, self.history)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.sampler.infer_relative_search_space(self._seen(study), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.sampler.sample_relative(self._seen(study), trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.sampler.sample_independent(
            self._seen(study), trial, param_name, param_distribution
        )

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()
