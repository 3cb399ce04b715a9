"""What the study keeps on each trial besides Optuna's own fields: the one owner of the
attribute keys, of "the params a trial trains with now" and of "reopen a trial".

Every decision the coordinator and its schedulers take about a trial lives in these
attributes, so that ``resume`` after a crash (or another coordinator of a shared study)
reads where the sweep was; a report reads them through ``sweep.records.trials_table``. A new
attribute is one constant here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

REASON = "reason"
"""Why the trial ended as it did (pruned, failed, not run), in one line."""
REPLACES = "replaces"
"""The trial this one runs again from its start (a retry, an interruption): not counted."""
ATTEMPT = "attempt"
"""How many retries (``trainer.retries``) the trial and those it replaces spent."""
EPOCHS = "epochs"
"""Epochs trained when it ended (a pruned trial's reports may be fewer than its epochs)."""
RESTARTS = "restarts"
"""How often the trial continued from its checkpoint (after a crash, a loss or a retry)."""
LOSSES = "losses"
"""How often its worker, node or coordinator was lost under it."""
PREEMPTIONS = "preemptions"
"""How often it stopped on a preemption notice and continued from the state it saved."""
CONTINUES = "continues"
"""A trial made by ``sweep continue``: the trial whose checkpoint it starts from."""
OVERRIDES = "overrides"
"""Trainer arguments it trains with instead of its sampled ones (``sweep continue``'s
``num_epochs``, PBT's explored params)."""
PAUSED = "paused_at"
"""The rung (epochs trained) a trial waits at; absent or 0 when it is not paused."""
PROMOTED = "promoted_from"
"""The rungs (epochs trained) a trial was promoted from."""
BRACKET = "bracket"
"""Hyperband with promotion: the bracket a trial was dealt to."""
LINEAGE = "lineage"
"""PBT, per exploit: ``{"epoch": epochs trained, "from": donor trial, "params": new params}``."""
NODES = "nodes"
"""The Ray nodes it ran on, in order (a short id each; a new one when a run after a loss or a
preemption started elsewhere)."""
COORDINATOR = "coordinator"
"""The coordinator that runs it, in a shared study (host:pid:id)."""
SPACE_CHANGES = "space_changes"
"""A study attribute, not a trial's: ``sweep resume --space``'s changes of the search space,
``[{"from_trial": N, "params": [names]}]``; trials from N on were sampled in the new one."""


def carried(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What a trial that runs again under a new number keeps of the one it replaces: being a
    ``sweep continue`` trial (its source and its params' changes)."""
    return {k: attrs[k] for k in (CONTINUES, OVERRIDES) if k in attrs}


def current_params(
    trial: FrozenTrial | optuna.Trial, decode: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """The params a trial trains with now: as sampled, then as its overrides (PBT's last
    exploit, ``sweep continue``'s epochs) left them."""
    return {**decode(trial.params), **trial.user_attrs.get(OVERRIDES, {})}


def reopen(study: optuna.Study, number: int) -> optuna.Trial:
    """A live handle on trial ``number`` (to set attributes, report, tell), as ``ask`` gives
    one for a new trial."""
    return optuna.Trial(study, study.get_trials(deepcopy=False)[number]._trial_id)


def nodes_after(attrs: Mapping[str, Any], node: str) -> list[str] | None:
    """The trial's ``NODES`` once a run of it reported from ``node``; None when that is the
    node it ran on last (nothing to record)."""
    seen = [str(n) for n in attrs.get(NODES, [])]
    return None if seen[-1:] == [node] else [*seen, node]


def paused_at(trial: FrozenTrial) -> int:
    """The rung a trial waits at, 0 when it does not wait."""
    return int(trial.user_attrs.get(PAUSED) or 0)


def promoted_from(trial: FrozenTrial) -> list[int]:
    return [int(r) for r in trial.user_attrs.get(PROMOTED, [])]


def claim(
    study: optuna.Study,
    number: int,
    distributions: dict[str, optuna.distributions.BaseDistribution],
) -> optuna.Trial | None:
    """Starts queued trial ``number`` (Optuna's ``ask`` starts whichever waited longest, which
    may be another ``continue``'s); None when it is not waiting any more."""
    frozen = study.get_trials(deepcopy=False)[number]
    if frozen.state != TrialState.WAITING:
        return None
    try:
        if not study._storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
            return None
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    trial = reopen(study, number)
    for name, distribution in distributions.items():
        trial._suggest(name, distribution)  # the queued params, as ask does
    return trial
