"""The scheduler seam: one verdict per report (continue, stop with a reason, pause at a rung,
or fail), as Ray Tune's ``TrialScheduler`` and Syne Tune's schedulers answer CONTINUE / STOP /
PAUSE.

Behind it, in this order: a value that is not a finite number fails the trial; a trial at its
last epoch has cost all it will and continues to its end; the stopping policy (an Optuna pruner:
Azure ML's rules, Optuna's, ASHA, the forecasting policy; ``sweep.scheduling.pruners``) may stop
it; a pausing scheduler (promotion ASHA/Hyperband, PBT; ``sweep.scheduling.pausing``) may pause
it. The coordinator and the replay simulator both ask ``Referee.judge``, so a replay judges as a
real sweep does. This module also owns "which scheduler pauses" and "how many epochs a trial
plans", which the checks, the live view and the trials table read.

A new stopping policy is one module and a row in ``sweep.scheduling.pruners``' table; a new
pausing one is a ``PausingScheduler`` and a branch in ``pausing_scheduler``.

Light on purpose (the checks import it): Optuna is imported where a verdict is made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from search_spaces import SweepConfig

if TYPE_CHECKING:
    import optuna

    from search_spaces.objectives import Constraint
    from search_spaces.optuna_form import OptunaSpace
    from sweep.scheduling.pareto import ParetoRule, ParetoRungs
    from sweep.scheduling.pausing import PausingScheduler

EPOCH_NAMES = ("num_epochs", "epochs", "max_epochs", "n_epochs")


@dataclass(frozen=True)
class Verdict:
    """What a trial does after a report."""

    action: Literal["continue", "stop", "pause", "fail"]
    reason: str = ""
    """stop: why it was pruned; fail: what was wrong with its value."""
    rung: int = 0
    """pause: the epochs trained where it waits."""

    @property
    def stops(self) -> bool:
        """Whether the trial must stop now (the answer to its ``report``)."""
        return self.action != "continue"


CONTINUE = Verdict("continue")


class Referee:
    """Judges each report of a sweep's trials. Several objectives keep no per-epoch values in
    Optuna: their reports are judged by ``pareto`` (ASHA's rungs by Pareto front,
    ``sweep.scheduling.pareto``) when the sweep has it, else only their values are checked."""

    def __init__(
        self,
        study: optuna.Study,
        metric: str,
        *,
        several_objectives: bool = False,
        pausing: PausingScheduler | None = None,
        objectives: Sequence[str] = (),
        pareto: ParetoRule | None = None,
        constraints: Sequence[Constraint] = (),
    ) -> None:
        self.study, self.metric = study, metric
        self.several_objectives = several_objectives
        self.pausing = pausing
        self.objectives, self.pareto = tuple(objectives), pareto
        self.constraints = tuple(constraints)
        """Several objectives: each report's violation is kept beside its values, so the
        rules and promotion rank infeasible trials last."""

    def judge(
        self,
        trial: optuna.Trial,
        epoch: int,
        value: object,
        planned: int | None,
        promoted: Sequence[int] = (),
        metrics: Mapping[str, object] | None = None,
    ) -> Verdict:
        """The verdict on ``trial``'s report of ``epoch`` (from 0) with the objective's
        ``value`` (None: this report did not carry it), the trial planning ``planned``
        epochs and having left the rungs ``promoted``; ``metrics``: the whole report (several
        objectives are read from it). Tells the study the value."""
        from sweep.scheduling.pruners import prune_reason

        if value is None:
            return CONTINUE
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return Verdict("fail", f"{self.metric} is {value} at epoch {epoch + 1}")
        if self.several_objectives:
            return self._judge_several(trial, epoch, planned, promoted, metrics or {})
        trial.report(float(value), epoch)
        if planned is not None and epoch + 1 >= planned:
            return CONTINUE  # its last epoch: it completes, never pruned
        if trial.should_prune():
            return Verdict("stop", prune_reason(self.study.pruner, trial.number, epoch))
        if self.pausing is not None and self.pausing.pauses_at(
            trial.number, epoch + 1, planned, promoted
        ):
            return Verdict("pause", rung=epoch + 1)
        return CONTINUE

    def _judge_several(
        self,
        trial: optuna.Trial,
        epoch: int,
        planned: int | None,
        promoted: Sequence[int],
        metrics: Mapping[str, object],
    ) -> Verdict:
        from sweep.scheduling.pareto import VALUES_AT, VIOLATION_AT, violation

        values = [metrics.get(name) for name in self.objectives]
        numbers = [
            float(v)
            for v in values
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ]
        if self.pareto is None and self.pausing is None:
            return CONTINUE
        if len(numbers) != len(self.objectives) or not numbers:
            return CONTINUE  # a report without every objective is not ranked
        trial.set_user_attr(f"{VALUES_AT}{epoch}", numbers)
        broken = violation(self.constraints, metrics)
        if self.constraints:
            trial.set_user_attr(f"{VIOLATION_AT}{epoch}", broken)
        if planned is not None and epoch + 1 >= planned:
            return CONTINUE  # its last epoch: it completes, never pruned
        if self.pareto is not None:
            reason = self.pareto.hopeless(
                trial.number,
                epoch + 1,
                tuple(numbers),
                self.study.get_trials(deepcopy=False),
                broken,
            )
            if reason:
                return Verdict("stop", reason)
        if self.pausing is not None and self.pausing.pauses_at(
            trial.number, epoch + 1, planned, promoted
        ):
            return Verdict("pause", rung=epoch + 1)
        return CONTINUE


def pareto_rungs(config: SweepConfig) -> ParetoRule | None:
    """The rule that stops trials of several objectives by Pareto rank, if any: ASHA's and
    Hyperband's rungs (stopping mode), median stopping's and truncation selection's
    evaluation intervals (``sweep.scheduling.pareto``)."""
    if not config.multi_objective:
        return None
    from search_spaces.policies import Asha, Hyperband, MedianStopping, TruncationSelection
    from sweep.scheduling.pareto import ParetoRungs, ParetoShare, hyperband_brackets

    policy = config.early_termination.policy
    maximize, constraints = tuple(config.maximizes), tuple(config.constraints)
    if isinstance(policy, Asha) and policy.mode == "stopping":
        return ParetoRungs(
            maximize,
            policy.min_resource,
            policy.reduction_factor,
            policy.min_early_stopping_rate,
            constraints,
        )
    if isinstance(policy, Hyperband) and policy.mode == "stopping":
        longest = policy.max_resource or fixed_epochs(config)
        brackets = hyperband_brackets(policy.min_resource, policy.reduction_factor, longest)
        return ParetoRungs(
            maximize, policy.min_resource, policy.reduction_factor, 0, constraints, brackets
        )
    if isinstance(policy, MedianStopping):
        return ParetoShare(
            maximize, 0.5, policy.evaluation_interval, policy.delay_evaluation, constraints
        )
    if isinstance(policy, TruncationSelection):
        share = 1 - (policy.truncation_percentage or 10) / 100
        return ParetoShare(
            maximize, share, policy.evaluation_interval, policy.delay_evaluation, constraints
        )
    return None


def pareto_ranking(config: SweepConfig) -> ParetoRungs | None:
    """Several objectives' directions and constraints, for promotion's ranking at rungs."""
    if not config.multi_objective:
        return None
    from sweep.scheduling.pareto import ParetoRungs

    return ParetoRungs(tuple(config.maximizes), constraints=tuple(config.constraints))


def what_pauses(config: SweepConfig) -> str | None:
    """The setting that pauses trials at rungs and continues them from their checkpoints,
    as the file spells it; None when nothing pauses."""
    if config.sampling_algorithm.type == "pbt":
        return "sampling_algorithm: pbt"
    if config.early_termination.options.get("mode") == "promotion":
        return "early_termination.mode: promotion"
    return None


def pausing_scheduler(config: SweepConfig, space: OptunaSpace) -> PausingScheduler | None:
    """The scheduler that pauses this sweep's trials, if any."""
    from sweep.scheduling.population import Population
    from sweep.scheduling.promotion import Promotion

    if config.sampling_algorithm.type == "pbt":
        return Population.of(config, space)
    return Promotion.of(
        config.early_termination.policy,
        config.maximize,
        fixed_epochs(config),
        pareto_ranking(config),
    )


def checkpoint_params(
    config: SweepConfig, pausing: PausingScheduler | None, number: int, planned: int | None
) -> dict[str, Any]:
    """What a trainer is told of ``checkpoint:`` (nothing when it saves every epoch, as a
    trainer does unless told): every how many epochs, after how long, and the epochs where
    it must save whatever those say, the rungs or PBT boundaries where it may pause."""
    policy = config.checkpoint
    if policy.each_epoch:
        return {}
    at = pausing.boundaries(number, planned) if pausing is not None else []
    return {
        "checkpoint_every": policy.every,
        "checkpoint_interval_s": policy.interval_s or 0.0,
        "checkpoint_at": ",".join(map(str, at)),
    }


def fixed_epochs(config: SweepConfig) -> int | None:
    """How many epochs every trial trains when the file fixes it outside the search space:
    the trainer's ``num_epochs`` (or ``epochs``, ``max_epochs``, ``n_epochs``), or a job
    file's literal input of such a name (``inputs.num_epochs: 4``)."""
    for name in EPOCH_NAMES:
        value = config.trainer.args.get(name)
        if config.command is not None:
            spec = config.command.inputs.get(name)
            value = spec.value if spec is not None and spec.type == "literal" else None
        if _count(value) is not None:
            return _count(value)
    return None


def planned_epochs(params: Mapping[str, Any], fixed: int | None) -> int | None:
    """The epochs one trial plans: its ``num_epochs`` param (sampled, or changed by
    ``sweep continue``), else what the file fixes for every trial."""
    asked = _count(params.get("num_epochs"))
    return asked if asked is not None else fixed


def _count(value: object) -> int | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value != int(value)
    ):
        return None
    return int(value)
