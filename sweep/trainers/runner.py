"""Runs one trial where a backend put it: resolves the trainer, captures its log."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sweep.errors import TrialFailed, TrialPreempted
from sweep.records.checkpoint_folder import LiveCheckpoint
from sweep.records.trial_log import TRIAL_LOG, CappedLog
from sweep.trials import SendReport, TrainFn, TrialSpec
from trainer import preemption

BUILTIN_ENTRY = "trainer"


def resolve_entry(entry: str | TrainFn) -> TrainFn:
    """The trainer function for ``trainer`` or ``package.module:function``."""
    if callable(entry):
        return entry
    if entry == BUILTIN_ENTRY:
        from trainer.fit import fit_params

        return fit_params
    module_name, _, attr = entry.partition(":")
    try:
        with _exit_raises():
            module = importlib.import_module(module_name)
    except _ExitCalled as exc:
        code, where = exc.args
        raise TrialFailed(
            f"trainer.entry: importing {module_name} called os._exit({code}) at "
            f"{where}; a trainer module must not end the process when "
            "imported"
        ) from None
    except ImportError as exc:
        raise TrialFailed(f"trainer.entry: cannot import {module_name}: {exc}") from None
    except (Exception, SystemExit) as exc:  # any bug at import, exit() included: one line
        raise TrialFailed(
            f"trainer.entry: importing {module_name} failed at "
            f"{_where(exc)}: {type(exc).__name__}: {exc}"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise TrialFailed(f"trainer.entry: {module_name} has no function {attr}")
    return fn


class _ExitCalled(BaseException):
    """``os._exit`` called while a trainer module was imported."""


@contextlib.contextmanager
def _exit_raises() -> Iterator[None]:
    """While a trainer module is imported, ``os._exit`` raises instead of ending the process:
    a module that calls it would take the coordinator (its lock held, no word said) or a
    worker with it, before any trial ran."""
    real = os._exit

    def refuse(code: int) -> None:
        caller = sys._getframe(1)
        raise _ExitCalled(code, f"{caller.f_code.co_filename}:{caller.f_lineno}")

    os._exit = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = real


def _where(exc: BaseException) -> str:
    """file:line of what went wrong: a SyntaxError's own, else the deepest frame's."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


def run_trial(
    spec: TrialSpec,
    send: SendReport,
    *,
    capture_output: bool = True,
    log_name: str = TRIAL_LOG,
    rank: int = 0,
) -> dict[str, Any]:
    """Calls the trainer; its log goes to ``trial_dir/trial.log``; failures become TrialFailed.

    The trainer gets ``params["checkpoint_dir"]``, filled with the trial's checkpoint as of
    its last report; each report sends what changed there (rank 0 only: it alone reports).
    With ``spec.checkpoints`` off there is no such folder.
    """
    trial_dir = Path(spec.trial_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    fn = resolve_entry(spec.entry)
    resume_at = getattr(fn, "resume_at", None)
    if callable(resume_at):  # a trainer that numbers its reports itself (a command trial)
        fn = resume_at(spec.first_epoch)
    live = LiveCheckpoint(
        trial_dir, rank, max_bytes=spec.max_checkpoint_bytes, store_token=spec.store_token
    )
    params = dict(spec.params)
    if spec.checkpoints:
        params["checkpoint_dir"] = str(live.fill(spec.checkpoint))
    sends = spec.checkpoints and rank == 0  # rank 0 alone reports
    last = spec.first_epoch - 1
    listens = False

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        nonlocal last
        last = max(last, epoch)
        stop = send(epoch, metrics, live.changes() if sends else None)
        # A preemption notice: a trainer that cannot save mid-epoch stops at its report.
        # Only a run that listens for one reads the flag: in a thread it is another run's
        # (the process's flag stays set after a notice that run handled).
        return stop or (listens and preemption.NOTICE.is_set())

    def preempted(reason: str) -> TrialPreempted:
        """Sends the state the notice left in the checkpoint folder (newer than the last
        report's) to the sweep, which continues the trial from it."""
        if rank == 0:
            send(last, {}, live.changes() if sends else None, notice=reason)
        return TrialPreempted(reason)

    try:
        with (
            _trial_log(trial_dir / log_name, capture_output) as log,
            _environment(spec.env),
            preemption.listening(pass_on=False) as listens,
        ):
            try:
                result = fn(params, report)
            # The built-in trainer saved where it was; a command trial's script ended by SIGTERM.
            except (preemption.Preempted, TrialPreempted) as exc:
                raise preempted(str(exc)) from None
            except TrialFailed as exc:
                if listens and preemption.NOTICE.is_set():  # a command trial's script
                    raise preempted(f"preempted after epoch {last + 1} ({exc})") from None
                raise
            except Exception as exc:
                log.write(traceback.format_exc())
                raise TrialFailed(f"{type(exc).__name__}: {exc}") from None
            if listens and preemption.NOTICE.is_set():
                raise preempted(f"preempted after epoch {last + 1}")
    finally:
        live.remove()
    if not isinstance(result, Mapping):
        raise TrialFailed(f"the trainer returned {type(result).__name__}, not a dict of metrics")
    return dict(result)


_ENV_LOCK = threading.Lock()
_env_users = 0
_env_before: dict[str, str | None] = {}


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """``trainer.env`` while trials run: a worker process runs other trials next. Trials
    in threads of one process (the in-process backend) share it; the values before are back
    when the last of them ends."""
    global _env_users
    if not env:
        yield
        return
    with _ENV_LOCK:
        for name in env:
            _env_before.setdefault(name, os.environ.get(name))
        os.environ.update(env)
        _env_users += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _env_users -= 1
            if not _env_users:
                for name, value in _env_before.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
                _env_before.clear()


@contextlib.contextmanager
def _trial_log(path: Path, capture_output: bool) -> Iterator[Any]:
    with path.open("a", buffering=1) as file, CappedLog(file) as capped:
        log: Any = capped
        if not capture_output:
            yield log
            return
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        old_level = root.level
        root.setLevel(min(old_level, logging.INFO) if old_level else logging.INFO)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield log
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
