from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweep.cli import main
from sweep.errors import SweepInputError
from sweep.model.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]


def _files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "m.pt").write_bytes(os.urandom(4096))
    (tmp_path / "m.onnx").write_bytes(os.urandom(4096))
    return {"model.pt": tmp_path / "m.pt", "model.onnx": tmp_path / "m.onnx"}


def _register_many(root: str, src: str, barrier, count: int) -> None:  # type: ignore[no-untyped-def]
    registry = ModelRegistry(root)
    files = {"model.pt": Path(src) / "m.pt", "model.onnx": Path(src) / "m.onnx"}
    barrier.wait()
    for i in range(count):
        registry.register("pt-dnn", files, {"writer": os.getpid(), "i": i})


def test_versions_are_numbered_and_never_overwritten(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    files = _files(tmp_path)
    first = registry.register("pt-dnn", files, {"n": 1})
    second = registry.register("pt-dnn", files, {"n": 2})
    assert (first.version, second.version) == (1, 2)
    assert registry.get("pt-dnn").version == 2
    assert registry.get("pt-dnn:1").card == {"n": 1}
    assert (first.path / "model.pt").read_bytes() == files["model.pt"].read_bytes()


def test_concurrent_registration_gets_distinct_complete_versions(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _files(src)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_register_many, args=(str(tmp_path / "models"), str(src), barrier, 10))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    versions = ModelRegistry(tmp_path / "models").versions("pt-dnn")
    assert [v.version for v in versions] == list(range(1, 21))
    writers = {v.card["writer"] for v in versions}
    assert len(writers) == 2
    for v in versions:
        assert {p.name for p in v.path.iterdir()} == {"model.pt", "model.onnx", "card.json"}


@pytest.mark.slow
def test_a_killed_write_leaves_no_version(tmp_path):
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)  # copying from it blocks: the writer is caught mid-write
    script = (
        "import sys; from pathlib import Path; from sweep.model.registry import ModelRegistry; "
        f"ModelRegistry({str(tmp_path / 'models')!r}).register('pt-dnn', "
        f"{{'model.pt': Path({str(fifo)!r})}}, {{}})"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    staging = tmp_path / "models" / "pt-dnn"
    for _ in range(100):
        if staging.exists() and any(staging.iterdir()):
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    registry = ModelRegistry(tmp_path / "models")
    assert registry.versions("pt-dnn") == []
    assert registry.names() == []
    with pytest.raises(SweepInputError, match="no model named"):
        registry.get("pt-dnn")


def test_a_failed_copy_cleans_up(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(FileNotFoundError):
        registry.register("pt-dnn", {"model.pt": tmp_path / "missing.pt"}, {})
    assert list((tmp_path / "models" / "pt-dnn").iterdir()) == []


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "..", "x" * 200])
def test_names_that_escape_the_registry_are_refused(tmp_path, name):
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(SweepInputError, match="model name"):
        registry.register(name, _files(tmp_path), {})
    assert not (tmp_path / "evil").exists()


def test_cli_refuses_bad_refs_with_exit_2(tmp_path, capsys):
    assert main(["models", "show", "../etc", "--registry", str(tmp_path)]) == 2
    assert main(["models", "show", "pt-dnn:zero", "--registry", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "model name '../etc'" in err and "Traceback" not in err
