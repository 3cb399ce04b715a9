"""The ``sweep`` command line: one module per command group, errors turned into exit codes."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from search_spaces import SearchSpaceError, clip_message
from sweep.errors import SweepError, SweepInputError, SweepInterrupted
from trainer.errors import TrainerInputError

EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
_USER_PATH_ERRORS = {
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EACCES,
    errno.EPERM,
    errno.EEXIST,
    errno.EROFS,
    errno.ENAMETOOLONG,
}

DESCRIPTION = """\
Hyperparameter sweeps for PyTorch: Optuna samples and prunes, Ray runs the trials.

A sweep file (space.yaml) names the trainer, the search space (Azure ML's expressions),
the objective, the sampler, the early-termination policy and the limits. Start with
  sweep validate search_spaces/examples/digits.yaml
  sweep run search_spaces/examples/digits.yaml
then look at the result with
  sweep status digits-resnet18    sweep best digits-resnet18    sweep models list

Checkpoints: a trial owns a folder, params["checkpoint_dir"] for a trainer function and
$SWEEP_CHECKPOINT_DIR for a command trial. What the trainer has written there when it
reports an epoch is kept by the coordinator; a trial that runs again (sweep resume after a
crash, a lost worker or node, a retry, a trial_timeout) starts with the folder as of its last
report and reports the next epoch. The built-in trainer checkpoints every epoch.
"""

EPILOG = """\
exit codes: 0 success, 1 a failure while running, 2 bad input (file, flag, data).
Add --debug to any command to see the traceback behind an error."""


def _ignore_more_interrupts() -> None:
    """After the first Ctrl-C the exit is under way: more presses would only cut Ray's
    shutdown short (in an atexit handler, with a traceback) and leave its processes behind."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse exits with 2 already; keep its one line and drop the usage block's noise.
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from sweep.cli import models_cmd, replay_cmd, report_cmd, run_cmd, status_cmd

    parser = _Parser(
        prog="sweep",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    run_cmd.register(sub)
    status_cmd.register(sub)
    report_cmd.register(sub)
    replay_cmd.register(sub)
    models_cmd.register(sub)
    return parser


def _import_from_here() -> None:
    """A trainer module in the folder the command runs in imports, as under ``python -m``
    (the ``sweep`` script alone puts only its own folder on the path): ``trainer: {entry:
    train:fit}`` beside the sweep file works without installing it. Absolute, so that a
    local Ray's workers, which get this path, find it too."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    level = logging.DEBUG if debug else logging.WARNING
    # The level on the handler too: a library that sets its own logger to INFO (Optuna, a
    # line per trial) would otherwise drown the live view through propagation.
    shown = logging.StreamHandler()
    shown.setLevel(level)
    shown.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[shown])
    warnings.showwarning = _show_warning
    _import_from_here()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except SweepInterrupted as exc:
        _ignore_more_interrupts()
        print(f"sweep: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (SearchSpaceError, SweepInputError, TrainerInputError) as exc:
        if debug:
            raise
        for line in str(exc).splitlines():  # a file with several problems: one line each
            print(f"sweep: error: {clip_message(line)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SweepError as exc:
        if debug:
            raise
        print(f"sweep: failed: {clip_message(' '.join(str(exc).split()))}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        # A path the user gave that cannot be written (a missing folder, no permission, a
        # folder where a file should go) is bad input; a full disk or an I/O error is not.
        if debug or exc.errno is None:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        if exc.errno in _USER_PATH_ERRORS:
            print(f"sweep: error: {where}{exc.strerror}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"sweep: failed: {where}{exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _ignore_more_interrupts()
        print("sweep: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    # Our own warnings are advice for the user: one line, no source location.
    from search_spaces import SearchSpaceWarning

    if issubclass(category, SearchSpaceWarning):
        print(f"sweep: warning: {message}", file=sys.stderr)
    else:
        print(
            warnings.formatwarning(message, category, filename, lineno, line),
            file=sys.stderr,
            end="",
        )


def entry() -> None:
    """The ``sweep`` command: ``main``, then an exit that skips the interpreter's teardown.

    Everything a command writes is closed (or committed) before ``main`` returns; what is
    left at exit is freeing the modules torch, Ray, Optuna and pandas brought in, 0.3 s of
    every command (a tenth of a short sweep's time over Ray's own start and stop). Python's
    own order is kept for what matters: other threads joined, then the atexit handlers
    (Ray's stop, logging's flush), then the streams."""
    import atexit
    import threading

    code = main()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            code = code or 1
    os._exit(code)
