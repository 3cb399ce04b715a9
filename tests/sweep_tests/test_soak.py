"""The soak benchmark's short form (``benchmarks/soak.py``): promotion ASHA, asynchronous PBT
and command trials on a real ``ray start`` cluster whose worker nodes are killed and
re-added while the coordinator is killed with -9 and resumed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _soak_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("soak", ROOT / "benchmarks" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_short_soak_ends_every_trial_and_repeats_at_most_the_epoch_in_flight():
    soak = _soak_module()
    # Bounded by trials, not seconds: under the suite's load a 10 s share could end with
    # no command trial started, and a sweep with none complete fails.
    results = soak.soak(minutes=0.7, nodes=2, seed=0, trials={"promotion": 40, "command": 5})
    for s in results:
        report = soak.describe(s)
        assert s.returncode == 0, report
        assert len(s.lives) == 2 and s.node_kills >= 1, report  # the chaos happened
        assert s.epochs_run >= 20 and not s.unended, report
        assert not s.folders_missing and not s.folders_extra, report
        assert s.epochs_twice <= s.allowed_twice, report
        # Memory is the benchmark's to judge: a life of seconds is mostly its start.
