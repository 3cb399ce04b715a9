from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

# Tests run on 2 CPUs: keep each torch process on one thread so parallel trials don't fight.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def make_image_folder(
    root: Path,
    classes: tuple[str, ...] = ("chickens", "turkeys"),
    per_class: tuple[int, int] = (12, 4),
    size: int = 24,
) -> Path:
    """An ImageFolder-layout data set of real PNG/JPEG files whose classes differ in colour."""
    from PIL import Image

    rng = random.Random(0)
    for split, count in zip(("train", "val"), per_class, strict=True):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                base = [40, 40, 40]
                base[label % 3] = 200
                colour = tuple(min(255, c + rng.randint(-30, 30)) for c in base)
                image = Image.new("RGB", (size + rng.randint(0, 8), size), colour)
                suffix = ".png" if i % 2 else ".jpg"
                image.save(folder / f"{name}_{i}{suffix}")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "fowl_data")


MODULE_SECONDS = json.loads((Path(__file__).parent / "module_seconds.json").read_text())
"""Each module's seconds in a measured run of the suite (``--durations=0``, summed per module;
2 CPUs, 2 processes). Only the order depends on it: a stale figure costs minutes, not
correctness."""


@pytest.hookimpl(trylast=True)  # after sweep_tests/conftest.py has marked what starts Ray
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first, each module's own order kept: the suite runs a module per
    process at a time (``--dist loadfile --no-loadscope-reorder``; xdist's own order, by
    number of tests, left a one-test minute-long module for last), and a long module left
    for last keeps one process busy while the other has nothing to do. A module not
    measured yet counts 10 s a slow test."""
    slow: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        slow[module] = slow.get(module, 0) + bool(item.get_closest_marker("slow"))
    place = {module: i for i, module in enumerate(slow)}

    def order(item: pytest.Item) -> tuple[float, int]:
        module = item.nodeid.split("::")[0]
        return -MODULE_SECONDS.get(module, 10.0 * slow[module]), place[module]

    items.sort(key=order)


def _ray_running() -> bool:
    ray = __import__("sys").modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):  # type: ignore[no-untyped-def]
    """A test not marked slow that starts Ray in this process fails: ``-m "not slow"`` is
    the inner loop, Ray-free (a `sweep run` on the command line slipped in once)."""
    before = _ray_running()
    outcome = yield
    if not before and _ray_running() and item.get_closest_marker("slow") is None:
        outcome.force_exception(AssertionError(f"{item.nodeid} starts Ray but is not marked slow"))


def pytest_configure(config: pytest.Config) -> None:
    """The worker nodes of the suite's ``ray start`` clusters import ``sweep`` as a cluster's
    nodes do, from the installed package: installed from another clone (a test run there
    re-points the editable install), they ran that clone's code, and four tests failed
    after four minutes each with "No module named 'sweep'" in Ray's logs only."""
    if hasattr(config, "workerinput"):  # the xdist controller checks once for all
        return
    import subprocess
    import sys

    found = subprocess.run(
        [sys.executable, "-c", "import sweep; print(sweep.__file__)"],
        cwd="/",
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
    ).stdout.strip()
    here = Path(__file__).resolve().parents[1]
    if Path(found or "/").resolve().parent.parent != here:
        pytest.exit(
            f"this Python's sweep package is {found or 'not installed'}, not this clone's: "
            f"run `{sys.executable} -m pip install --no-deps -e {here}` first",
            returncode=4,
        )
