"""Several coordinators on one study in a database (``storage: postgresql://…``).

Each coordinator owns the trials it started (its id on the trial) and keeps a heartbeat for
each of them in the database (Optuna's heartbeat table, the database's clock). A trial
whose heartbeat is older than ``GRACE_S`` belongs to a coordinator that died: the first live
coordinator to fail it in the database (one transaction; the others find it finished) runs it
again under a new number, once. Nothing here applies to the journal file, which has one
coordinator at a time (its lock).
"""

from __future__ import annotations

import datetime
import os
import socket
import uuid
import warnings
from collections.abc import Iterable
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from sweep.records.budget import replaced_numbers
from sweep.records.trial_attrs import COORDINATOR, paused_at

HEARTBEAT_S = 5
"""How often a coordinator says its trials are alive."""
GRACE_S = 30
"""How long a trial may go without a heartbeat before it counts as its coordinator's loss
(``SWEEP_STALE_AFTER_S`` changes it)."""
STALE_AFTER_VAR = "SWEEP_STALE_AFTER_S"


def grace_s() -> float:
    """``GRACE_S``, or the environment's ``SWEEP_STALE_AFTER_S``: shorter where a dead
    coordinator's trials should be taken over sooner, longer where a live one may stall
    (a machine swapping). At least two heartbeats, so a live coordinator is never taken
    for dead."""
    from sweep.errors import SweepInputError

    raw = os.environ.get(STALE_AFTER_VAR)
    if raw is None or raw == "":
        return float(GRACE_S)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 2 * HEARTBEAT_S:  # NaN too
        raise SweepInputError(
            f"{STALE_AFTER_VAR}: expected seconds, {2 * HEARTBEAT_S} or more (two heartbeats), "
            f"got {raw!r}"
        )
    return value


def coordinator_id() -> str:
    """This process's name as a coordinator: readable, and unique even across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def shared(storage: BaseStorage) -> bool:
    """Whether the study is in a database that several coordinators may share."""
    return isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage)


def beat(study: optuna.Study, trial_ids: Iterable[int]) -> None:
    """Records that this coordinator's trials are alive."""
    storage = study._storage
    if not shared(storage):
        return
    for trial_id in trial_ids:
        storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]


def claim_stale(study: optuna.Study) -> list[FrozenTrial]:
    """The trials of dead coordinators that this one has just failed in the database (each
    claimed by exactly one live coordinator), for it to run again."""
    storage = study._storage
    if not shared(storage):
        return []
    claimed = []
    stale = storage._get_stale_trial_ids(study._study_id)  # type: ignore[attr-defined]
    for trial_id in [*stale, *_never_beaten(storage, study._study_id)]:
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                claimed.append(storage.get_trial(trial_id))
        except UpdateFinishedTrialError:
            continue  # another coordinator claimed it first
    return claimed


def _never_beaten(storage: BaseStorage, study_id: int) -> list[int]:
    """RUNNING trials with no heartbeat at all, started over ``GRACE_S`` ago: a coordinator
    died between asking for the trial and its first heartbeat (Optuna's stale-trial check
    passes over them, and they would stay RUNNING for ever). Times are this machine's
    clock against the asking coordinator's (Optuna's ``datetime_start``)."""
    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy.orm import selectinload

    storage = getattr(storage, "_backend", storage)  # under Optuna's cache
    if not isinstance(storage, RDBStorage):
        return []
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=grace_s())
    with _create_scoped_session(storage.scoped_session, True) as session:
        running = (
            session.query(models.TrialModel)
            .options(selectinload(models.TrialModel.heartbeats))
            .filter(models.TrialModel.state == TrialState.RUNNING)
            .filter(models.TrialModel.study_id == study_id)
            .all()
        )
        return [
            t.trial_id
            for t in running
            if not t.heartbeats and t.datetime_start is not None and t.datetime_start < cutoff
        ]


def quiet_ask(study: optuna.Study, distributions: dict[str, Any]) -> optuna.Trial:
    """``study.ask``, without Optuna's warning that heartbeats are meant for ``optimize``:
    the coordinator records them itself (see ``beat``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return study.ask(distributions)


def running_elsewhere(trials: Iterable[FrozenTrial], me: str) -> set[int]:
    """RUNNING trials another coordinator owns: not to be touched."""
    return {
        t.number
        for t in trials
        if t.state == TrialState.RUNNING and t.user_attrs.get(COORDINATOR) not in (None, me)
    }


class SharedStudy:
    """One coordinator's side of a shared study: its heartbeats, the trials it claims from
    dead coordinators, and the budget as every coordinator together has spent it."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.me = coordinator_id()
        self._last_beat = 0.0

    def tick(self, active_ids: Iterable[int], now: float) -> list[FrozenTrial]:
        """Every HEARTBEAT_S: this coordinator's trials are alive; the stale ones of dead
        coordinators are claimed (returned, to run again)."""
        if now - self._last_beat < HEARTBEAT_S:
            return []
        self._last_beat = now
        beat(self.study, active_ids)
        return claim_stale(self.study)

    def others_running(self) -> bool:
        """Whether another coordinator's trials still run (alive, or not yet found stale):
        the study is not done until they end or are claimed. Asked while this one runs
        none, so a RUNNING trial of no coordinator is one whose coordinator died before it
        said so: it is claimed once ``GRACE_S`` passed (``claim_stale``)."""
        trials = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        orphans = [t for t in trials if COORDINATOR not in t.user_attrs and not paused_at(t)]
        return bool(running_elsewhere(trials, self.me) or orphans)

    def over_budget(self, number: int, total: int) -> bool:
        """Whether trial ``number``, just asked for, is beyond ``total`` once every
        coordinator's trials are counted in the order the database numbered them (two
        coordinators asking at once: the later one's trial does not run)."""
        trials = self.study.get_trials(deepcopy=False)
        uncounted = replaced_numbers(trials)
        counted = [
            t.number for t in trials if t.state != TrialState.WAITING and t.number not in uncounted
        ]
        return number in counted and counted.index(number) >= total
