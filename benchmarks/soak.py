"""Soak: long sweeps of promotion ASHA, asynchronous PBT and command trials on a local
multi-node ``ray start`` cluster, while worker nodes are killed (their raylet, -9) and
re-added and the coordinator is killed (-9) and resumed, at seeded random times.

The cluster is a head with no CPUs and ``--nodes`` worker nodes of one CPU each, on this
machine. Each kind runs one sweep of trivial trials (0.05 s epochs; the trainer writes its
state to its checkpoint folder every epoch and notes every epoch it really ran), bounded by
the sweep's ``limits.timeout`` (``--minutes`` shared among the kinds; a resumed coordinator
starts its own timeout, so a sweep may run up to 1.4 times its share; PBT's members train
two epochs for each second of its share, half an epoch in a soak under 60 s, and its
timeout, twice the share, only guards). Printed per sweep:

- trials: how many, by state; every trial ended (none left RUNNING or WAITING) and every
  number of the study has its folder, and every folder its trial;
- epochs run twice (an epoch's note in ``ran.jsonl`` twice for one trial) against what the
  interruptions allow: each stops at most ``--nodes`` running trials, each of which may run
  the epoch in flight again;
- the coordinator's memory (RSS, MB) in each of its lives, and over the last half of the
  longest one, its last 5 s (the end report) left out (flat: within 10% of its median).

Exits 1 when a check fails. Its short form is a slow test (tests/sweep_tests/test_soak.py).

Usage: python benchmarks/soak.py [--minutes 9] [--kinds promotion pbt command] [--nodes 2]
                                 [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sweep_tests.ray_start import free_port, processes_of, token_auth  # noqa: E402

KINDS = ("promotion", "pbt", "command")
# The head notices a silent node within about 3 s instead of Ray's default 30 s or so.
FAST_HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_timeout_ms": "1000",
}
EPOCH_S = 0.05


class Cluster:
    """A ``ray start`` cluster on this machine whose worker nodes can be killed and added."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.ray = str(Path(sys.executable).parent / "ray")
        self.temp = tempfile.mkdtemp(prefix="sws", dir="/tmp")  # Ray's socket paths are short
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
        self.nodes: list[int] = []  # each worker node's raylet
        self.added = 0
        self.address = f"ray:127.0.0.1:{self.port}"
        self._common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats"]

    def start(self) -> None:
        subprocess.run(
            [
                self.ray,
                "start",
                "--head",
                f"--port={self.port}",
                f"--temp-dir={self.temp}",
                "--include-dashboard=false",
                "--num-cpus=0",
                *self._common,
            ],
            env={**self.env, **FAST_HEALTH_CHECKS},
            cwd=self.cwd,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def _raylets(self) -> set[int]:
        return {pid for pid in processes_of(self.temp) if _is_raylet(pid)}

    def add_node(self) -> None:
        before = self._raylets()
        # A node joins in the head's authentication mode (token by default since Ray 2.59).
        env = {**self.env, "RAY_AUTH_MODE": "token"} if token_auth() else self.env
        # Each node its own temp folder, as each machine of a real cluster has its own disk:
        # nodes sharing one would share Ray's unpacked working_dir, and one node's clean-up
        # would remove it from under the other's workers.
        self.added += 1
        subprocess.run(
            [
                self.ray,
                "start",
                f"--address=127.0.0.1:{self.port}",
                "--num-cpus=1",
                f"--temp-dir={self.temp}n{self.added}",
                *self._common,
            ],
            env=env,
            cwd=self.cwd,
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.nodes.extend(sorted(self._raylets() - before))

    def kill_node(self, rng: random.Random) -> None:
        victim = self.nodes.pop(rng.randrange(len(self.nodes)))
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)  # the node's raylet: its workers end with it

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in processes_of(self.temp):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(1)
        for i in range(self.added + 1):
            subprocess.run(["rm", "-rf", self.temp + (f"n{i}" if i else "")], check=False)
        # `ray start` leaves the cluster's address here; a later bare ray.init() would try to
        # join that dead cluster.
        Path(tempfile.gettempdir(), "ray", "ray_current_cluster").unlink(missing_ok=True)


def _is_raylet(pid: int) -> bool:
    try:
        first = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    return first.endswith(b"/raylet") or first == b"raylet"


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _pbt_epochs(timeout_s: int) -> int:
    """Each PBT member's epochs for a share of ``timeout_s`` seconds."""
    return max(8, timeout_s // 2 if timeout_s < 60 else 2 * timeout_s)


def sweep_file(
    kind: str, folder: Path, nodes: int, timeout_s: int, seed: int, trials: int | None = None
) -> Path:
    """The sweep file of one kind: as many trials as fit in ``timeout_s``; with ``trials``,
    that many (promotion and command trials), the timeout four times longer, as a guard."""
    limits: dict = {"max_concurrent_trials": nodes, "timeout": timeout_s}
    if trials is not None:
        limits["timeout"] = 4 * timeout_s
    if kind == "promotion":
        doc: dict = {
            "name": "soak-promotion",
            "trainer": {
                "entry": "tests.sweep_tests.toy_trainers:checkpointing",
                "args": {"num_epochs": 9, "epoch_s": EPOCH_S},
            },
            "search_space": {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
            "objective": {"primary_metric": "best_val_acc", "goal": "maximize"},
            "sampling_algorithm": {"type": "random", "seed": seed},
            "early_termination": {
                "type": "asha",
                "mode": "promotion",
                "min_resource": 1,
                "reduction_factor": 3,
            },
            "limits": {"max_total_trials": trials or 100_000, **limits},
        }
    elif kind == "pbt":
        doc = {
            "name": "soak-pbt",
            "trainer": {
                "entry": "tests.sweep_tests.toy_trainers:pbt_curve",
                # Members that finish well inside the timeout: under the test suite's load
                # 20 epochs of a 10 s share left no member complete, and a sweep with no
                # completed trial fails. A long soak's members train about two epochs a
                # second of its share: at half that, once reports got cheaper (2026-12-07),
                # they ended in 15 s of 180, before the first node was killed.
                "args": {"num_epochs": _pbt_epochs(timeout_s), "epoch_s": EPOCH_S},
            },
            "search_space": {"lr": {"type": "loguniform", "min_value": -9.2, "max_value": -2.3}},
            "objective": {"primary_metric": "acc", "goal": "maximize"},
            "sampling_algorithm": {
                "type": "pbt",
                "population_size": 2 * nodes + 2,
                "perturbation_interval": 2,
                "synchronous": False,
                "seed": seed,
            },
            # The members' epochs bound a PBT sweep; its timeout only guards a stalled one.
            "limits": {**limits, "timeout": 2 * timeout_s},
        }
    else:
        # An Azure ML sweep job as written, its trials the user's own script.
        doc = {
            "$schema": "https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json",
            "type": "sweep",
            "name": "soak-command",
            "experiment_name": "soak",
            "trial": {
                "code": str(Path(__file__).parent / "soak_command"),
                "command": f"{sys.executable} epochs.py --x ${{{{search_space.x}}}} "
                f"--epochs 9 --sleep {EPOCH_S}",
                "environment": "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest",
            },
            "search_space": {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
            "objective": {"primary_metric": "acc", "goal": "maximize"},
            "sampling_algorithm": {"type": "random", "seed": seed},
            "early_termination": {"type": "median_stopping", "delay_evaluation": 3},
            "limits": {"max_total_trials": trials or 100_000, **limits},
            "compute": "azureml:cpu-cluster",
        }
    path = folder / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Life:
    """One coordinator process: its memory samples (seconds since the sweep began, MB)."""

    pid: int
    rss: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Soaked:
    kind: str
    seconds: float
    returncode: int
    lives: list[Life]
    node_kills: int
    counts: dict[str, int]
    unended: list[int]
    folders_missing: list[int]
    folders_extra: list[str]
    failures: dict[str, int]
    slots: int
    epochs_run: int
    epochs_twice: int
    restarts: int
    stderr_tail: str = ""

    @property
    def memory_flat(self) -> tuple[bool, float, float, float]:
        """Over the last half of the longest life's samples (its last 5 s left out): flat,
        min, median, max."""
        life = max(self.lives, key=lambda lv: len(lv.rss))
        # The last 5 s left out: the end of the sweep (its report and trials table) is a
        # one-off, not a trend.
        running = [mb for t, mb in life.rss if t <= life.rss[-1][0] - 5] or [0.0]
        half = running[len(running) // 2 :]
        mid = statistics.median(half)
        return (max(half) <= 1.1 * mid and min(half) >= 0.9 * mid, min(half), mid, max(half))

    @property
    def interruptions(self) -> int:
        return self.node_kills + len(self.lives) - 1

    @property
    def allowed_twice(self) -> int:
        """Each interruption stops at most ``slots`` running trials, each of which may run
        the epoch it was in again."""
        return self.interruptions * self.slots

    @property
    def passed(self) -> bool:
        return (
            self.returncode == 0
            and not self.unended
            and not self.folders_missing
            and not self.folders_extra
            and self.epochs_twice <= self.allowed_twice
            and self.memory_flat[0]
        )


def _coordinator(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_AUTH_MODE")}
    env["PYTHONPATH"] = str(ROOT)  # the toy trainers, on every node
    return subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", *args],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def soak_one(
    kind: str,
    cluster: Cluster,
    folder: Path,
    *,
    share_s: int,
    nodes: int,
    seed: int,
    trials: int | None = None,
) -> Soaked:
    rng = random.Random(f"{seed}-{kind}")
    path = sweep_file(kind, folder, nodes, share_s, seed, trials)
    name = yaml.safe_load(path.read_text())["name"]
    root = folder / "sweeps"
    started = time.monotonic()
    proc = _coordinator(
        ["run", str(path), "--compute", cluster.address, "--root", str(root)], folder
    )
    lives = [Life(proc.pid)]
    # Node kills all along (one node stays up); the coordinator killed once, early, so the
    # last life is the longer part of the sweep.
    next_node_kill = started + rng.uniform(0.2, 0.5) * share_s
    coordinator_kill = started + max(3.0, rng.uniform(0.15, 0.35) * share_s)
    readd_at: float | None = None
    node_kills = 0
    hard_stop = started + (5 if trials else 2) * share_s + 120
    while proc.poll() is None:
        now = time.monotonic()
        mb = _rss_mb(proc.pid)
        if mb is not None:
            lives[-1].rss.append((now - started, mb))
        if readd_at is not None and now >= readd_at:
            cluster.add_node()
            readd_at = None
        elif readd_at is None and now >= next_node_kill and len(cluster.nodes) > 1:
            cluster.kill_node(rng)
            node_kills += 1
            readd_at = now + 3
            next_node_kill = now + rng.uniform(8, 20)
        # Killed once it has started a trial: a coordinator killed before it made its study
        # (Ray's start takes seconds on a loaded machine) leaves nothing to resume.
        if now >= coordinator_kill and any((root / name / "trials").glob("*/")):
            coordinator_kill = float("inf")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            time.sleep(1)
            proc = _coordinator(["resume", name, "--root", str(root)], folder)
            lives.append(Life(proc.pid))
        if now >= hard_stop:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.5)
    _, err = proc.communicate()
    seconds = time.monotonic() - started
    (folder / f"{kind}.stderr.log").write_text(err)
    while len(cluster.nodes) < nodes:
        cluster.add_node()
    return _check(kind, root / name, seconds, proc.returncode, lives, node_kills, nodes, err)


def _check(
    kind: str,
    sweep_dir: Path,
    seconds: float,
    returncode: int,
    lives: list[Life],
    node_kills: int,
    slots: int,
    err: str,
) -> Soaked:
    import optuna

    from sweep.coordination.study import open_storage
    from sweep.records.layout import trial_dir
    from sweep.records.trial_attrs import LOSSES, PREEMPTIONS, REASON, REPLACES, RESTARTS

    storage = open_storage("default", sweep_dir)
    try:
        study = optuna.load_study(study_name=sweep_dir.name, storage=storage)
    except KeyError:
        raise AssertionError(
            f"{kind}: the sweep made no study (exit {returncode}): {err[-2000:]}"
        ) from None
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        state = t.state.name.lower()
        counts[state] = counts.get(state, 0) + 1
    unended = [t.number for t in trials if not t.state.is_finished()]
    failures: dict[str, int] = {}
    for t in trials:
        if t.state.name == "FAIL":
            # Digits vary (epochs, numbers, pids): the kind of failure is what counts.
            why = "".join("N" if c.isdigit() else c for c in str(t.user_attrs.get(REASON, "")))
            failures[why[:120]] = failures.get(why[:120], 0) + 1
    folders = {p.name for p in (sweep_dir / "trials").iterdir() if p.is_dir()}
    expected = {trial_dir(sweep_dir, t.number).name for t in trials}
    twice = restarts = run = 0
    for t in trials:
        ran = trial_dir(sweep_dir, t.number) / "outputs" / "ran.jsonl"
        epochs = [json.loads(x)["epoch"] for x in ran.open()] if ran.exists() else []
        run += len(epochs)
        twice += len(epochs) - len(set(epochs))
        # A start after an interruption: a continuation from the trial's checkpoint (after a
        # loss or a preemption notice), or a run again under a new number.
        # (A run again after a loss carries the loss count, so it is not counted twice.)
        attrs = t.user_attrs
        restarts += sum(int(attrs.get(k, 0)) for k in (RESTARTS, PREEMPTIONS, LOSSES))
        restarts += REPLACES in attrs and LOSSES not in attrs
    return Soaked(
        kind=kind,
        seconds=seconds,
        returncode=returncode,
        lives=lives,
        node_kills=node_kills,
        counts=counts,
        unended=unended,
        folders_missing=sorted(
            t.number for t in trials if trial_dir(sweep_dir, t.number).name not in folders
        ),
        folders_extra=sorted(folders - expected),
        failures=failures,
        slots=slots,
        epochs_run=run,
        epochs_twice=twice,
        restarts=restarts,
        stderr_tail=err[-2000:] if returncode else "",
    )


def describe(s: Soaked) -> str:
    flat, low, mid, high = s.memory_flat
    lives = "; ".join(
        f"life {i + 1}: {min(mb for _, mb in lv.rss):.0f}-{max(mb for _, mb in lv.rss):.0f} MB "
        f"over {lv.rss[-1][0] - lv.rss[0][0]:.0f} s"
        for i, lv in enumerate(s.lives)
        if lv.rss
    )
    by_state = ", ".join(f"{n} {state}" for state, n in sorted(s.counts.items()))
    lines = [
        f"{s.kind}: {sum(s.counts.values())} trials in {s.seconds:.0f} s ({by_state}); "
        f"{len(s.lives)} coordinator lives, {s.node_kills} nodes killed; exit {s.returncode}",
        f"  ended: {'all' if not s.unended else f'NOT {s.unended[:10]}'}; folders: "
        + (
            "one per trial"
            if not (s.folders_missing or s.folders_extra)
            else f"MISSING {s.folders_missing[:10]} EXTRA {s.folders_extra[:10]}"
        ),
        f"  epochs run: {s.epochs_run}, twice: {s.epochs_twice} (allowed: {s.allowed_twice}, "
        f"the epoch in flight of {s.slots} trials per interruption; continuations from a "
        f"checkpoint, promotions and PBT turns included: {s.restarts})",
        f"  coordinator memory: {lives}; last half of the longest life {low:.0f}-{high:.0f} MB "
        f"around {mid:.0f} ({'flat' if flat else 'NOT flat'})",
    ]
    for why, n in sorted(s.failures.items(), key=lambda kv: -kv[1]):
        lines.append(f"  failed x{n}: {why}")
    if s.stderr_tail:
        lines.append("  stderr: " + s.stderr_tail.replace("\n", "\n    "))
    return "\n".join(lines)


@contextlib.contextmanager
def cluster_of(nodes: int, cwd: Path) -> Iterator[Cluster]:
    cluster = Cluster(cwd)
    try:
        cluster.start()
        for _ in range(nodes):
            cluster.add_node()
        yield cluster
    finally:
        cluster.stop()


def soak(
    minutes: float,
    kinds: tuple[str, ...] = KINDS,
    nodes: int = 2,
    seed: int = 0,
    folder: Path | None = None,
    trials: dict[str, int] | None = None,
) -> list[Soaked]:
    """``folder``: where the sweeps are kept (default: a temporary folder, removed);
    ``trials``: a kind's sweep ends after that many trials (promotion, command), its
    timeout only a guard (the short form: a sweep bounded by seconds alone ended with no
    trial complete, and failed, when the test suite's load slowed the command trials'
    start)."""
    share_s = max(10, int(minutes * 60 / len(kinds) / 1.4))
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak")))
        folder.mkdir(parents=True, exist_ok=True)
        cluster = stack.enter_context(cluster_of(nodes, folder))
        return [
            soak_one(
                kind,
                cluster,
                folder,
                share_s=share_s,
                nodes=nodes,
                seed=seed,
                trials=(trials or {}).get(kind),
            )
            for kind in kinds
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=9.0)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the sweeps in this folder")
    args = parser.parse_args()
    print(
        f"soak: {', '.join(args.kinds)} on a head and {args.nodes} one-CPU nodes, "
        f"about {args.minutes:g} min, seed {args.seed}",
        flush=True,
    )
    results = soak(args.minutes, tuple(args.kinds), args.nodes, args.seed, args.keep)
    for s in results:
        print(describe(s), flush=True)
    sys.exit(0 if all(s.passed for s in results) else 1)


if __name__ == "__main__":
    main()
