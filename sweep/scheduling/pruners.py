"""Early-termination policies as Optuna pruners: Azure ML's three, with Azure ML's rules.

Azure ML counts an *interval* each time a trial logs the primary metric, and "applies the
policy every multiple of evaluation_interval that is greater than or equal to
delay_evaluation". Here a trial's n-th report is interval n (1-based).

- bandit: prune when the trial's best value so far is not within the slack of the best value
  any trial reached within the same number of intervals: for maximize ``y * (1 + slack_factor)
  < best`` or ``y + slack_amount < best``; minimize mirrors it.
- median_stopping: prune when the trial's best value so far is worse than the median of the
  other trials' running averages over their first n intervals.
- truncation_selection: prune when the trial's value at interval n is among the lowest
  ``truncation_percentage`` percent of all trials' values at interval n
  (finished trials left out when ``exclude_finished_jobs``).

Each pruner keeps the reason of its last decision per trial, for the reports.
"""

from __future__ import annotations

import bisect
import copy
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from search_spaces import EarlyTermination
from search_spaces.policies import (
    TABLE as POLICY_TABLE,
)
from search_spaces.policies import (
    Asha,
    Bandit,
    Forecast,
    Hyperband,
    Median,
    MedianStopping,
    NoPolicy,
    Percentile,
    Policy,
    TruncationSelection,
)
from sweep.errors import SweepInputError
from sweep.scheduling.finished_trials import FinishedTrials
from sweep.scheduling.neighbours import NeighbourBound


def _series(trial: FrozenTrial) -> list[float]:
    """The trial's reported values in report order, NaNs left out."""
    return [v for _, v in sorted(trial.intermediate_values.items()) if not math.isnan(v)]


class AzureRulePruner(BasePruner):
    """The common rule of Azure ML's policies: when to evaluate, and who the peers are.

    A policy is a statistic of each peer's reports at interval n (``peer_stat``) and a rule
    on those statistics (``decide``). A finished trial's reports never change (Optuna
    refuses to), so its statistic at each interval is kept as it finishes: judging a report
    costs the running trials, not the whole sweep (a replay asks thousands of times)."""

    def __init__(self, evaluation_interval: int = 1, delay_evaluation: int = 0) -> None:
        self.evaluation_interval = max(evaluation_interval, 1)
        self.delay_evaluation = delay_evaluation
        self.reasons: dict[int, str] = {}
        self._trials = FinishedTrials()
        self._finished: list[list[float]] = []
        """The finished peers' reports (a failed one is no peer)."""
        self._at: dict[int, list[float]] = {}
        """Interval -> the finished peers' statistics there, sorted."""

    def applies_at(self, interval: int) -> bool:
        return interval % self.evaluation_interval == 0 and interval >= self.delay_evaluation

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        series = _series(trial)
        if not series or not self.applies_at(len(series)):
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        reason = self.decide(
            series, self._peers(study, trial.number, len(series), maximize), maximize
        )
        if reason:
            self.reasons[trial.number] = f"interval {len(series)}: {reason}"
        return reason is not None

    def _peers(self, study: Study, number: int, n: int, maximize: bool) -> list[float]:
        """Every other trial's statistic at interval ``n`` (trials without reports left
        out), sorted."""
        new, running = self._trials.update(study.get_trials(deepcopy=False))
        for t in new:
            if t.state != TrialState.FAIL:
                self._finish(_series(t), maximize)
        running_series = [_series(t) for t in running if t.number != number]
        if n not in self._at:
            self._at[n] = sorted(
                v
                for v in (self.peer_stat(p, n, False, maximize) for p in self._finished)
                if v is not None
            )
        values = list(self._at[n])
        for p in running_series:
            value = self.peer_stat(p, n, True, maximize)
            if value is not None:
                bisect.insort(values, value)
        return values

    def _finish(self, series: list[float], maximize: bool) -> None:
        self._finished.append(series)
        for n, values in self._at.items():
            value = self.peer_stat(series, n, False, maximize)
            if value is not None:
                bisect.insort(values, value)

    def peer_stat(self, series: list[float], n: int, running: bool, maximize: bool) -> float | None:
        """What the rule reads of one peer whose reports are ``series`` at interval ``n``
        (None: the peer does not count there)."""
        raise NotImplementedError

    def decide(self, series: list[float], peers: list[float], maximize: bool) -> str | None:
        """The reason to prune a trial whose reports are ``series``, given the peers'
        statistics at its interval (sorted), or None to keep it."""
        raise NotImplementedError


def _best(values: list[float], maximize: bool) -> float:
    return max(values) if maximize else min(values)


class BanditPruner(AzureRulePruner):
    def __init__(
        self, slack_factor: float | None = None, slack_amount: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.slack_factor, self.slack_amount = slack_factor, slack_amount

    def peer_stat(self, series: list[float], n: int, running: bool, maximize: bool) -> float | None:
        return _best(series[:n], maximize) if series else None  # the best it reached by n

    def decide(self, series: list[float], peers: list[float], maximize: bool) -> str | None:
        mine = _best(series, maximize)
        best = _best(peers + [mine], maximize)
        if self.slack_factor is not None:
            f = self.slack_factor
            outside = mine * (1 + f) < best if maximize else mine > best * (1 + f)
            slack = f"slack_factor {f}"
        else:
            a = self.slack_amount or 0.0
            outside = mine + a < best if maximize else mine - a > best
            slack = f"slack_amount {a}"
        if outside:
            return f"{mine:.4g} is outside {slack} of the best {best:.4g}"
        return None


class MedianStoppingPruner(AzureRulePruner):
    def peer_stat(self, series: list[float], n: int, running: bool, maximize: bool) -> float | None:
        return statistics.fmean(series[:n]) if series else None  # its running average

    def decide(self, series: list[float], peers: list[float], maximize: bool) -> str | None:
        if not peers:
            return None
        median = statistics.median(peers)
        mine = _best(series, maximize)
        if (mine < median) if maximize else (mine > median):
            return f"{mine:.4g} is worse than the median of running averages {median:.4g}"
        return None


class TruncationSelectionPruner(AzureRulePruner):
    def __init__(
        self, truncation_percentage: int = 10, exclude_finished_jobs: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.truncation_percentage = truncation_percentage
        self.exclude_finished_jobs = exclude_finished_jobs

    def peer_stat(self, series: list[float], n: int, running: bool, maximize: bool) -> float | None:
        if len(series) < n or not (running or not self.exclude_finished_jobs):
            return None
        return series[n - 1]  # its value at interval n

    def decide(self, series: list[float], peers: list[float], maximize: bool) -> str | None:
        everyone = sorted(peers + [series[-1]], reverse=not maximize)  # worst first
        cut = math.floor(len(everyone) * self.truncation_percentage / 100)
        if cut == 0:
            return None
        threshold = everyone[cut - 1]
        if (series[-1] <= threshold) if maximize else (series[-1] >= threshold):
            return (
                f"{series[-1]:.4g} is in the lowest {self.truncation_percentage}% of "
                f"{len(everyone)} trials at this interval"
            )
        return None


class ForecastJudge:
    """Whether a curve can still reach a target: its forecast at its last epoch, plus the
    margin the forecasts needed on the sweep's finished curves (see
    sweep.scheduling.forecast). The stopping policy and the promotion scheduler ask it."""

    def __init__(
        self, risk: float = 0.05, min_epochs: int | None = None, min_history: int = 3
    ) -> None:
        self.risk, self.min_history = risk, min_history
        self.asked_min_epochs = min_epochs
        """The sweep file's ``min_epochs``; None: see ``min_epochs``."""
        self.calibration: list[FrozenTrial] = []
        """Earlier sweeps' completed trials (``warm_start``): their curves widen the margin's
        history from the first trial on, never the best to beat (theirs came from another
        space, or other data)."""
        self._calibrated: dict[int, list[float]] = {}
        """Cut -> the calibration curves' forecast errors there."""
        self.neighbours: NeighbourBound | None = None
        """The calibration trials as a bound on where a trial of given params ends."""
        # What the completed trials say, kept as more complete (``done`` only ever grows:
        # a completed trial never changes); a replay asks thousands of times.
        self._errors: dict[int, tuple[int, list[float]]] = {}
        """Cut -> (how many of ``done`` were read, their forecast errors at that cut)."""
        self._best: tuple[int, float] | None = None
        """(how many of ``done`` were read, their best final value)."""
        self._noises: tuple[int, list[float]] = (0, [])
        """(how many of ``done`` were read, the noise each long enough curve showed)."""
        self._calibration_noises: list[float] = []
        """The noise each long enough calibration curve showed (they count first)."""
        self._noise_known: tuple[int, float | None] = (0, None)
        """(how many curves' noises it was read from, the metric's noise)."""

    @property
    def min_epochs(self) -> int:
        """Epochs a trial trains before it is judged: as asked, else 1 with an earlier
        sweep's curves to calibrate on and 3 without: with that history, judging from
        epoch 1 reached the best sooner on every bank and lost no more (README, "Which
        policy?"); without it, too few errors at epoch 1 mislead the margin."""
        if self.asked_min_epochs is not None:
            return self.asked_min_epochs
        return 1 if len(self.calibration) >= self.min_history else 3

    def calibrate_on(self, trials: Sequence[FrozenTrial]) -> int:
        """Takes an earlier sweep's completed trials as history for the margin (their curves
        of two epochs or more); how many it took."""
        self.calibration = [t for t in trials if len(t.intermediate_values) > 1]
        self._calibrated.clear()
        self._calibration_noises = _noises(self.calibration)
        self.neighbours = NeighbourBound(self.calibration)
        return len(self.calibration)

    def hopeless(
        self,
        series: list[float],
        horizon: int | None,
        done: list[FrozenTrial],
        maximize: bool,
        params: Mapping[str, object] | None = None,
    ) -> str | None:
        """Why a trial whose reports are ``series`` cannot reach the best of ``done`` (the
        completed trials, a list that only grows between calls) by epoch ``horizon``; None
        while it can, or while too little is known to say."""
        from sweep.scheduling.forecast import forecast, margin

        if (
            len(series) < self.min_epochs
            or not done
            or len(done) + len(self.calibration) < self.min_history
            or horizon is None
            or len(series) >= horizon
        ):
            return None
        if self._best is None or self._best[0] != len(done):
            finals = [float(t.value) for t in done if t.value is not None]
            self._best = (len(done), max(finals) if maximize else min(finals))
        best = self._best[1]
        noise = self._noise(done)
        cut = len(series)
        read, errors = self._errors.get(cut, (0, []))
        errors.extend(_errors(done[read:], cut, maximize, noise))
        self._errors[cut] = (len(done), errors)
        if cut not in self._calibrated:
            self._calibrated[cut] = _errors(self.calibration, cut, maximize, noise)
        errors = errors + self._calibrated[cut]
        # The earlier sweep's trials most like this one say first: they judge from epoch 1,
        # where a curve's own shape says little (see sweep.scheduling.neighbours).
        if params is not None and self.neighbours is not None:
            reach = self.neighbours.reach(params, series, horizon, maximize, self.risk)
            if reach is not None and (reach < best if maximize else reach > best):
                return (
                    f"the {self.neighbours.k} earlier trials most like it say at most "
                    f"{reach:.4g} at epoch {horizon} {'<' if maximize else '>'} best {best:.4g}"
                )
        scores = margin(errors, self.risk)
        if scores is None or len(errors) < self.min_history:
            return None
        said = forecast(series, horizon, noise)
        guess, room = said.best_case(maximize), scores * said.scale
        if (guess + room < best) if maximize else (guess - room > best):
            return (
                f"forecast {guess:.4g} ± {room:.2g} at epoch {horizon} "
                f"{'<' if maximize else '>'} best {best:.4g}"
            )
        return None

    def _noise(self, done: list[FrozenTrial]) -> float | None:
        """The metric's noise about a curve, from what the first curves to finish (an
        earlier sweep's first) showed: read again each time their number doubles, from 3 to
        48, and the errors measured with it are measured again then (a few times a sweep, not
        at every completion; a judge made afresh decides the same). None before 3 have
        shown it: each curve then reads its own."""
        read, noises = self._noises
        noises.extend(_noises(done[read:]))
        self._noises = (len(done), noises)
        shown = self._calibration_noises + noises
        if len(shown) < NOISE_CURVES:
            return None
        count = min(
            NOISE_CURVES * 2 ** int(math.log2(len(shown) / NOISE_CURVES)), NOISE_CURVES_AT_MOST
        )
        if count != self._noise_known[0]:
            self._noise_known = (count, _quantile(shown[:count], NOISE_QUANTILE))
            self._errors.clear()
            self._calibrated.clear()
        return self._noise_known[1]


NOISE_CURVES = 3
"""Finished curves (of 5 epochs or more) it takes to read the metric's noise."""
NOISE_CURVES_AT_MOST = 48
"""The noise is read from no more curves than this: it barely moves after, and measuring
every error again at 96 and 192 finished curves was a tenth of a replay's time."""
NOISE_QUANTILE = 0.75
"""Which of the curves' noises is the metric's: the upper quartile, since the noise that
matters is that of curves that jump (a learning-rate step) as winners may. The median lost
the digits winner in 2 of 16 random halves of the bank (4 workers), the upper quartile and
the 90th percentile in none, the latter stopping less (2026-12-07)."""


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _noises(trials: Sequence[FrozenTrial]) -> list[float]:
    from sweep.scheduling.forecast import noise_of

    return [n for t in trials if (n := noise_of(_series(t))) is not None]


def _errors(
    trials: list[FrozenTrial], cut: int, maximize: bool, noise: float | None
) -> list[float]:
    """How far each finished curve ended beyond its forecast from its first ``cut`` epochs,
    in units of that forecast's uncertainty (curves no longer than ``cut`` say nothing)."""
    from sweep.scheduling.forecast import forecast

    out = []
    for t in trials:
        curve = _series(t)
        if len(curve) > cut:
            said = forecast(curve[:cut], len(curve), noise)
            end = said.best_case(maximize)
            out.append((curve[-1] - end if maximize else end - curve[-1]) / said.scale)
    return out


def completed_with_curves(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and t.intermediate_values
    ]


def horizon_of(trial: FrozenTrial, epochs: int | None, done: list[FrozenTrial]) -> int | None:
    """The epochs a trial trains in all: its num_epochs, else the sweep's, else the longest
    finished curve's."""
    asked = trial.params.get("num_epochs", epochs)
    if isinstance(asked, int | float) and not isinstance(asked, bool) and asked >= 1:
        return int(asked)
    return max((len(t.intermediate_values) for t in done), default=None)


class ForecastPruner(BasePruner):
    """``early_termination: {type: forecast}``: stops a trial only when its curve's forecast
    at its last epoch, plus the margin the forecasts needed on this sweep's finished curves,
    cannot reach the best finished value (``ForecastJudge``)."""

    def __init__(
        self,
        risk: float = 0.05,
        min_epochs: int | None = None,
        min_history: int = 3,
        epochs: int | None = None,
    ) -> None:
        self.judge = ForecastJudge(risk, min_epochs, min_history)
        self.epochs = epochs
        self.reasons: dict[int, str] = {}
        self._trials = FinishedTrials()
        self._done: list[FrozenTrial] = []
        """The completed trials, in the order they were seen complete."""

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        new, _ = self._trials.update(study.get_trials(deepcopy=False))
        self._done.extend(completed_with_curves(new))
        reason = self.judge.hopeless(
            _series(trial),
            horizon_of(trial, self.epochs, self._done),
            self._done,
            study.direction == StudyDirection.MAXIMIZE,
            trial.params,
        )
        if reason:
            self.reasons[trial.number] = reason
        return reason is not None


class EpochsTrained(BasePruner):
    """A rung-based pruner (ASHA, Hyperband) that counts resources as epochs trained, from 1.

    Reports are numbered by epoch from 0, and Optuna's SuccessiveHalvingPruner compares
    those numbers with its rungs, so ``min_resource: 1, reduction_factor: 3`` judged a trial
    after 2 epochs, then 4 (not 1, then 3). Ray Tune's ``training_iteration`` and Syne Tune's
    resource attribute count epochs trained, from 1: the inner pruner sees the trial that way.
    """

    def __init__(self, inner: BasePruner) -> None:
        self.inner = inner

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        shifted = copy.copy(trial)
        shifted.intermediate_values = {
            step + 1: value for step, value in trial.intermediate_values.items()
        }
        return bool(self.inner.prune(study, shifted))


def _asha(p: Asha) -> BasePruner:
    if p.mode == "promotion":
        return optuna.pruners.NopPruner()  # the promotion scheduler decides (promotion.py)
    return EpochsTrained(
        optuna.pruners.SuccessiveHalvingPruner(
            min_resource=p.min_resource,
            reduction_factor=p.reduction_factor,
            min_early_stopping_rate=p.min_early_stopping_rate,
        )
    )


def _hyperband(p: Hyperband) -> BasePruner:
    if p.mode == "promotion":
        return optuna.pruners.NopPruner()  # the promotion scheduler decides (promotion.py)
    return EpochsTrained(
        optuna.pruners.HyperbandPruner(
            min_resource=p.min_resource,
            max_resource=p.max_resource or "auto",
            reduction_factor=p.reduction_factor,
        )
    )


# Each policy (search_spaces.policies) and the Optuna pruner that runs it.
PRUNERS: dict[type[Policy], Callable[[Any], BasePruner]] = {
    Bandit: lambda p: BanditPruner(**p.options()),
    MedianStopping: lambda p: MedianStoppingPruner(**p.options()),
    TruncationSelection: lambda p: TruncationSelectionPruner(**p.options()),
    Median: lambda p: optuna.pruners.MedianPruner(**p.options()),
    Percentile: lambda p: optuna.pruners.PercentilePruner(**p.options()),
    Asha: _asha,
    Hyperband: _hyperband,
    Forecast: lambda p: (
        optuna.pruners.NopPruner()  # the promotion scheduler decides (promotion.py)
        if p.mode == "promotion"
        else ForecastPruner(**p.stopping())
    ),
    NoPolicy: lambda p: optuna.pruners.NopPruner(),
}


def make_pruner(policy: EarlyTermination, epochs: int | None = None) -> BasePruner:
    """The Optuna pruner for a sweep file's ``early_termination``; ``epochs``: what every
    trial trains when its params do not say (``trainer.args.num_epochs``)."""
    cls = POLICY_TABLE.get(policy.type)
    factory = PRUNERS.get(cls) if cls is not None else None
    if cls is None or factory is None:
        # An unknown type must not quietly become "never prune" (make_sampler raises too).
        raise SweepInputError(f"early_termination.type: {policy.type!r} has no pruner")
    pruner = factory(policy.policy)
    if isinstance(pruner, ForecastPruner):
        pruner.epochs = epochs
    return pruner


def prune_reason(pruner: BasePruner, trial_number: int, epoch: int) -> str:
    reasons = getattr(pruner, "reasons", {})
    if trial_number in reasons:
        return str(reasons[trial_number])
    inner = pruner.inner if isinstance(pruner, EpochsTrained) else pruner
    return f"pruned by the {type(inner).__name__} at epoch {epoch + 1}"
