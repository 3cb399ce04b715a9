"""A sweep as it stands in its storage, and what can be done to it there: its result (the
trials table, the pick, the Pareto front), the trials a resume would run, a damaged journal
healed, a completed trial registered, a ``sweep continue`` queued. ``Sweep`` (the face) runs
sweeps; this reads and amends what they left."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

from search_spaces import SweepConfig
from search_spaces.atomic_files import write_atomic
from search_spaces.optuna_form import OptunaSpace
from sweep.coordination.study import open_study
from sweep.errors import SweepInputError
from sweep.records import layout
from sweep.records.journal import heal
from sweep.records.layout import CONFIG_FILE, JOURNAL, RESULT, trial_dir
from sweep.records.lock import SweepLock
from sweep.records.trial_attrs import CONTINUES, OVERRIDES, REASON, claim, current_params, reopen
from sweep.result import BestTrial, SweepResult
from sweep.sweep_end import pareto_front, pick_trial, trials_frame_of
from sweep.trainers.trial_kinds import TrialKind


class StoredSweep:
    """Sweep ``config``'s records under ``sweep_dir`` (its space as Optuna asks, its kind)."""

    def __init__(
        self, config: SweepConfig, space: OptunaSpace, sweep_dir: Path, kind: TrialKind
    ) -> None:
        self.config, self.space, self.sweep_dir, self.kind = config, space, sweep_dir, kind

    @property
    def name(self) -> str:
        return self.config.name

    def heal_journal(self) -> None:
        """Moves a damaged journal's bad records aside (see :func:`sweep.records.journal.heal`), so
        that the study opens; done by ``resume`` and ``continue`` themselves too."""
        if self.config.storage == "default" and not self.config.on_azure:
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

    def queue_continue(self, number: int, epochs: int) -> int:
        """Queues ``sweep continue`` of completed trial ``number`` to ``epochs`` epochs in
        all (refused in one sentence when it cannot be); the new trial's number. The caller
        holds the sweep's lock."""
        from sweep.records.budget import enqueue
        from sweep.records.checkpoint_store import CheckpointStore

        heal(self.sweep_dir / JOURNAL)
        study = open_study(self.config, self.space, self.sweep_dir, create=False)
        trials = study.get_trials(deepcopy=False)
        if not 0 <= number < len(trials):
            raise SweepInputError(
                f"--trial: sweep {self.name} has no trial {number} (it has 0 to {len(trials) - 1})"
            )
        trial = trials[number]
        if trial.state != TrialState.COMPLETE:
            state = {TrialState.FAIL: "failed"}.get(trial.state, trial.state.name.lower())
            raise SweepInputError(
                f"--trial: trial {number} is {state}; only a completed trial is trained further"
            )
        latest = CheckpointStore(trial_dir(self.sweep_dir, number)).latest()
        if latest is None:
            raise SweepInputError(
                f"--trial: trial {number} kept no checkpoint (its trainer wrote none, or "
                "it is not the best completed trial, the one whose checkpoint stays; "
                "keep: {checkpoints: all} keeps every trial's)"
            )
        if epochs <= latest.epoch + 1:
            raise SweepInputError(
                f"--epochs: trial {number} has trained {latest.epoch + 1} "
                f"epochs already; ask for more than that"
            )
        _supersede_queued_continues(study, number)
        # A PBT member goes on with the params it ended with.
        new = enqueue(
            study,
            trial.params,
            {
                CONTINUES: number,
                OVERRIDES: {**trial.user_attrs.get(OVERRIDES, {}), "num_epochs": epochs},
            },
        )
        return new

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
        return SweepResult(
            self.name, self.sweep_dir, study, self._best(study, frame), frame, pareto_front=members
        )

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
        return BestTrial(
            trial.number,
            current_params(trial, self.space.decode),
            float(trial.values[0]),
            metrics,
            model if model.exists() else None,
            steps,
            tuple(trial.values) if self.config.multi_objective else (),
        )

    def register_trial(self, number: int, *, infeasible: bool = False) -> str:
        """Registers completed trial ``number``'s model (another member of the Pareto front,
        say) as a new version of ``register.model_name``; ``NAME:VERSION``. Once per trial:
        asked again, the version it has. A trial that breaks a constraint is refused unless
        ``infeasible`` is set, and its card then says which constraints it breaks."""
        from sweep.model.best_model import register_best
        from sweep.records.outcomes import broken_constraints

        if self.config.register is None:
            raise SweepInputError(
                f"register: sweep {self.name} names no model to register "
                "under; add register: {model_name: NAME} to its file"
            )
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
                "register it all the same (its card will say so)"
            )
        chosen = dataclasses.replace(result, best=self._as_best(trials[number], result.trials))
        with SweepLock(self.sweep_dir):
            kept = self.kind.keep_best(
                self.config, chosen, self.sweep_dir / layout.REGISTERED / f"{number:04d}"
            )
        if kept is None:
            raise SweepInputError(
                f"--trial: trial {number} kept no model file (model files stay for the best "
                f"keep.models trials and every Pareto front member; keep: {{models: all}} "
                "keeps them all)"
            )
        if broken:
            card = kept / layout.CARD
            write_atomic(
                card,
                json.dumps({**json.loads(card.read_text()), "infeasible": broken}, indent=2) + "\n",
            )
        version = register_best(self.config, kept)
        return str(version)


def _supersede_queued_continues(study: optuna.Study, number: int) -> None:
    """Earlier ``sweep continue`` requests of trial ``number`` that never started (stopped
    by Ctrl-C while starting): the new request replaces them, so that neither this
    ``continue`` nor a later ``resume`` runs the old one."""
    from sweep.records.budget import pending_continues

    trials = study.get_trials(deepcopy=False)
    for waiting in pending_continues(trials):
        if (
            trials[waiting].user_attrs.get(CONTINUES) == number
            and claim(study, waiting, {}) is not None
        ):
            trial = reopen(study, waiting)
            trial.set_user_attr(REASON, "not run: a later sweep continue replaced it")
            study.tell(trial, state=TrialState.FAIL)
