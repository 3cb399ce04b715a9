"""A file a command writes never destroys a sweep's records or a special file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from search_spaces.atomic_files import write_atomic
from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.cli import main
from tests.sweep_tests import toy_trainers


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweeps")
    Sweep(
        name="s",
        search_space={"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        trainer=toy_trainers.saving,
        root=root,
        backend=InProcessBackend(),
        trainer_args={"num_epochs": 2},
        limits={"max_total_trials": 2},
    ).run()
    return root


def _report(sweeps: Path, option: str, target: Path, capsys) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = main(["report", "s", option, str(target), "--root", str(sweeps)])
    return code, capsys.readouterr().err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_no_report_option_can_overwrite_a_sweeps_records(sweeps, tmp_path, capsys):
    folder = sweeps / "s"
    link = tmp_path / "innocent.csv"
    link.symlink_to(folder / "study.journal")
    targets = [
        folder / "study.journal",
        folder / "sweep.yaml",
        folder / "coordinator.lock",
        folder / "trials" / "0000" / "metrics.jsonl",
        folder / "best" / "card.json",
        folder / "best" / "new.csv",
        link,
    ]
    before = _snapshot(folder)
    for option in ("--csv", "--json", "--html", "--curves-csv"):
        for target in targets:
            code, err = _report(sweeps, option, target, capsys)
            assert code == 2, (option, target)
            assert err.count("\n") == 1 and "Traceback" not in err
            assert option in err and "records" in err or "model saved" in err
    assert _snapshot(folder) == before
    assert main(["status", "s", "--root", str(sweeps)]) == 0


def test_the_sweeps_own_report_files_may_be_rewritten(sweeps, capsys):
    code, err = _report(sweeps, "--csv", sweeps / "s" / "trials.csv", capsys)
    assert code == 0, err


def test_special_files_and_folders_are_refused_not_replaced(sweeps, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    kinds = {fifo: "a FIFO", tmp_path: "a folder"}
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        kinds[device] = "a device"
    except PermissionError:
        pass  # not root: the FIFO and the folder still check the rule
    for target, kind in kinds.items():
        code, err = _report(sweeps, "--csv", target, capsys)
        assert code == 2 and kind in err, err
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    if device in kinds:
        assert stat.S_ISCHR(device.stat().st_mode)
    # The library's writer refuses them too, whoever calls it.
    with pytest.raises(OSError):
        write_atomic(fifo, "x")


def test_a_link_planted_at_a_temporary_name_is_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    target = tmp_path / "out.csv"
    for pid in range(os.getpid() - 5, os.getpid() + 5):  # the old, predictable names
        (tmp_path / f".out.csv.{pid}.tmp").symlink_to(victim)
    write_atomic(target, "a,b\n")
    assert victim.read_text() == "precious" and target.read_text() == "a,b\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current
