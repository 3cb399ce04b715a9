"""Early-termination policies as plain values: one frozen dataclass per policy that checks
itself when built (its messages show the values), and one table from a policy's ``type`` to
its class. The sweep file's reader takes each policy's keys, kinds and defaults from the
class's fields; ``sweep.scheduling.pruners`` maps each class to its Optuna pruner; ``azure`` marks
Azure ML's own three. Adding a policy: a dataclass here (and its row in ``TABLE``), and the
pruner that runs it (a row in ``sweep.scheduling.pruners``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from search_spaces._errors import SearchSpaceError

_PATH = "early_termination"


def _at_least(policy: Any, name: str, low: float) -> None:
    value = getattr(policy, name)
    if value is not None and value < low:
        raise SearchSpaceError(f"{_PATH}.{name}", f"must be {low:g} or more, got {value!r}")


def _check_rungs(policy: Any) -> None:
    """The settings of a policy that may pause trials at rungs (``mode: promotion``)."""
    _at_least(policy, "min_resource", 1)
    _at_least(policy, "reduction_factor", 2)
    if policy.mode not in ("stopping", "promotion"):
        raise SearchSpaceError(
            f"{_PATH}.mode", f"expected stopping or promotion, got {policy.mode!r}"
        )


@dataclass(frozen=True)
class Policy:
    type: ClassVar[str] = ""
    azure: ClassVar[bool] = False
    """One of Azure ML's own policies (the rest run locally only)."""

    def options(self) -> dict[str, Any]:
        """The settings that are set, by name (what the sweep file and Azure ML spell out)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class AzurePolicy(Policy):
    """Azure ML's policies apply every ``evaluation_interval`` reports from
    ``delay_evaluation`` on."""

    evaluation_interval: int = 1
    delay_evaluation: int = 0
    azure: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _at_least(self, "evaluation_interval", 1)
        _at_least(self, "delay_evaluation", 0)


@dataclass(frozen=True)
class Bandit(AzurePolicy):
    slack_factor: float | None = None
    slack_amount: float | None = None
    type: ClassVar[str] = "bandit"

    def __post_init__(self) -> None:
        super().__post_init__()
        # Azure's SDK writes the unused slack as 0.0 beside the one that is set.
        if self.slack_factor and self.slack_amount == 0:
            object.__setattr__(self, "slack_amount", None)
        elif self.slack_amount and self.slack_factor == 0:
            object.__setattr__(self, "slack_factor", None)
        if (self.slack_factor is None) == (self.slack_amount is None):
            raise SearchSpaceError(
                _PATH,
                "bandit needs exactly one of slack_factor or "
                f"slack_amount, got slack_factor={self.slack_factor!r}, "
                f"slack_amount={self.slack_amount!r}",
            )
        _at_least(self, "slack_factor", 0)
        _at_least(self, "slack_amount", 0)


@dataclass(frozen=True)
class MedianStopping(AzurePolicy):
    type: ClassVar[str] = "median_stopping"


@dataclass(frozen=True)
class TruncationSelection(AzurePolicy):
    truncation_percentage: int | None = None
    exclude_finished_jobs: bool = False
    type: ClassVar[str] = "truncation_selection"

    def __post_init__(self) -> None:
        super().__post_init__()
        pct = self.truncation_percentage
        if pct is None or not 1 <= pct <= 99:
            raise SearchSpaceError(
                f"{_PATH}.truncation_percentage", f"must be an integer from 1 to 99, got {pct!r}"
            )


@dataclass(frozen=True)
class Median(Policy):
    """Optuna's MedianPruner."""

    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    type: ClassVar[str] = "median"

    def __post_init__(self) -> None:
        for name in ("n_startup_trials", "n_warmup_steps"):
            _at_least(self, name, 0)
        _at_least(self, "interval_steps", 1)


@dataclass(frozen=True)
class Percentile(Median):
    """Optuna's PercentilePruner."""

    percentile: float = 25.0
    type: ClassVar[str] = "percentile"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.percentile < 100:
            raise SearchSpaceError(
                f"{_PATH}.percentile", f"must be between 0 and 100, got {self.percentile!r}"
            )


@dataclass(frozen=True)
class RungPolicy(Policy):
    """A policy that judges trials at rungs of epochs trained (ASHA, Hyperband): by stopping
    them (``mode: stopping``, Optuna's pruners) or by pausing them until they are promoted
    (``mode: promotion``, sweep.scheduling.promotion)."""

    min_resource: int = 1
    max_resource: int | None = None
    """The epochs a trial trains at most (unset: its own ``num_epochs``; Optuna's "auto"
    for Hyperband's stopping brackets)."""
    reduction_factor: int = 3
    mode: str = "stopping"

    def __post_init__(self) -> None:
        _at_least(self, "max_resource", 1)
        _check_rungs(self)

    def options(self) -> dict[str, Any]:
        # The default mode is not spelled out: files written before it stay as they were.
        found = super().options()
        if found.get("mode") == "stopping":
            del found["mode"]
        return found


@dataclass(frozen=True)
class Asha(RungPolicy):
    """Optuna's SuccessiveHalvingPruner, or promotion-based ASHA: a trial pauses at each
    rung and continues from its checkpoint only when it ranks in the top 1/reduction_factor
    of the trials that reached that rung."""

    min_early_stopping_rate: int = 0
    type: ClassVar[str] = "asha"

    def __post_init__(self) -> None:
        super().__post_init__()
        _at_least(self, "min_early_stopping_rate", 0)


@dataclass(frozen=True)
class Hyperband(RungPolicy):
    """Optuna's HyperbandPruner, or brackets of promotion ASHA: trials are dealt to the
    brackets in turn, bracket ``s`` starts its rungs at ``min_resource * reduction_factor**s``."""

    type: ClassVar[str] = "hyperband"


@dataclass(frozen=True)
class Forecast(Policy):
    """Stops a trial only when its learning curve's forecast at its last epoch, with the
    margin of error calibrated on the sweep's own finished curves, cannot reach the best
    value so far (sweep.scheduling.forecast). ``risk``: the accepted chance of stopping a trial that
    would have reached it."""

    risk: float = 0.05
    min_epochs: int | None = None
    """Epochs a trial trains before it is judged: by default 3 (a curve of fewer says little
    on its own), 1 where an earlier sweep's curves calibrate the margin (``warm_start``):
    they say how far a curve's first epochs are from its end."""
    min_history: int = 3
    """Finished trials needed before any is stopped (the margin is learnt from them)."""
    mode: str = "stopping"
    """``promotion``: trials pause at rungs (``min_resource * reduction_factor**k`` epochs)
    and the best by forecast, not by their value at the rung, are promoted."""
    min_resource: int = 3
    """Promotion's first rung: a curve of fewer epochs says little of its end."""
    reduction_factor: int = 3
    type: ClassVar[str] = "forecast"

    def __post_init__(self) -> None:
        if (
            isinstance(self.risk, bool)
            or not isinstance(self.risk, int | float)
            or not 0 < self.risk < 1
        ):
            raise SearchSpaceError(
                f"{_PATH}.risk",
                "must be a number between 0 and 1 (the "
                f"accepted chance of losing the winner), got {self.risk!r}",
            )
        _at_least(self, "min_epochs", 1)
        _at_least(self, "min_history", 2)
        _check_rungs(self)

    def options(self) -> dict[str, Any]:
        # Promotion's settings are spelled out only for it: stopping files stay as they were.
        found = super().options()
        if found.get("mode") == "stopping":
            for key in ("mode", "min_resource", "reduction_factor"):
                del found[key]
        return found

    def stopping(self) -> dict[str, Any]:
        """The stopping policy's own settings (what its pruner takes)."""
        return {"risk": self.risk, "min_epochs": self.min_epochs, "min_history": self.min_history}


@dataclass(frozen=True)
class NoPolicy(Policy):
    type: ClassVar[str] = "none"


TABLE: dict[str, type[Policy]] = {
    cls.type: cls
    for cls in (
        Bandit,
        MedianStopping,
        TruncationSelection,
        Median,
        Percentile,
        Asha,
        Hyperband,
        Forecast,
        NoPolicy,
    )
}
"""Every policy by its ``type``: Azure ML's three first, then Optuna's, then none."""


def field_kinds(cls: type[Policy]) -> dict[str, str]:
    """Each setting of a policy and its kind (``int``, ``number`` or ``bool``), from its
    fields: what the reader checks a file's values against."""
    kinds = {}
    for f in dataclasses.fields(cls):
        hint = str(f.type)
        kinds[f.name] = (
            "bool"
            if hint.startswith("bool")
            else "int"
            if hint.startswith("int")
            else "str"
            if hint.startswith("str")
            else "number"
        )
    return kinds
