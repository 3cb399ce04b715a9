"""Small trainers with the sweep's signature, importable on Ray workers."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _ray_node() -> str | None:
    """The Ray node this runs on (hex id), or None outside Ray."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return str(ray.get_runtime_context().get_node_id())


def _mark(params: dict, name: str, payload: dict) -> None:
    folder = Path(params["output_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("a") as f:
        f.write(json.dumps(payload) + "\n")


def quadratic(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Peaks at x = 0.3; records every epoch it really ran and when it ran."""
    _mark(params, "span.jsonl", {"start": time.time(), "pid": os.getpid()})
    best = -math.inf
    for epoch in range(int(params.get("num_epochs", 3))):
        time.sleep(float(params.get("epoch_s", 0.0)))
        acc = 1 - (params["x"] - 0.3) ** 2 + 0.01 * epoch
        best = max(best, acc)
        _mark(params, "ran.jsonl", {"epoch": epoch})
        if report(epoch, {"val_acc": acc, "best_val_acc": best}):
            break
    _mark(params, "span.jsonl", {"end": time.time()})
    return {"best_val_acc": best, "val_acc": acc}


def failing(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    if params["x"] > 0.5:
        raise RuntimeError(f"exploded at x={params['x']:.3f}")
    return quadratic(params, report)


def flaky(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Fails the first time it sees a trial folder's params, works on the retry."""
    flag = Path(params["output_dir"]).parent.parent / f"seen-{params['x']:.6f}"
    if not flag.exists():
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.write_text("")
        raise RuntimeError("first attempt fails")
    return quadratic(params, report)


def hanging(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    if params["x"] > 0.5:
        time.sleep(3600)
    return quadratic(params, report)


def wrong_metric(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    report(0, {"accuracy": 0.5})
    return {"accuracy": 0.5, "loss": 1.0}


def nan_metric(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    for epoch in range(3):
        if report(epoch, {"best_val_acc": float("nan")}):
            break
    return {"best_val_acc": 0.5}


def slow(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """For the kill -9 test: each epoch takes a while (0.5 s unless ``epoch_s`` says)."""
    return quadratic({**params, "epoch_s": params.get("epoch_s", 0.5)}, report)


# A payload that marks the page when it runs: the report tests look for the mark.
XSS = '<img src=x onerror="document.body.dataset.pwned=1">'
XSS_SCRIPT = "</script><script>document.body.dataset.pwned=2</script>"


def hostile(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Puts script payloads in everything a trainer controls: metric names, failures."""
    if params["x"] > 0.7:
        raise RuntimeError(f"exploded {XSS} {XSS_SCRIPT}")
    for epoch in range(2):
        report(epoch, {XSS: params["x"] + epoch})
    return {XSS: params["x"] + 1}


def saving(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Writes a 100 kB model file and a plot, as a real script would, then trains."""
    out = Path(params["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.pt").write_bytes(b"\0" * 100_000)
    (out / "curve.png").write_bytes(b"png")
    return quadratic(params, report)


def gpu_probe(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Records the card Ray assigned (CUDA_VISIBLE_DEVICES) and its rank, then waits until
    ``together`` processes of the sweep have recorded theirs (a barrier: it passes only if
    they all run at once) and says whether they did."""
    trials = Path(params["output_dir"]).parent.parent
    record = {
        "pid": os.getpid(),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "rank": os.environ.get("RANK", "0"),
        "world": os.environ.get("WORLD_SIZE", "1"),
    }
    _mark(params, f"probe-rank{record['rank']}.jsonl", record)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(list(trials.glob("*/outputs/probe-rank*.jsonl"))) >= int(params["together"]):
            break
        time.sleep(0.2)
    together = len(list(trials.glob("*/outputs/probe-rank*.jsonl"))) >= int(params["together"])
    _mark(params, f"together-rank{record['rank']}.jsonl", {"together": together})
    time.sleep(0.5)  # rank 0's end ends the other ranks of its trial: let them write first
    report(0, {"best_val_acc": params["x"]})
    return {"best_val_acc": params["x"]}


_POISONED = []


def gpu_poison(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """The first call leaves its process broken and fails; later calls record what they see."""
    record = {
        "start": time.time(),
        "pid": os.getpid(),
        "poisoned": bool(_POISONED),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cuda_before": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "failed_next": False,
    }
    first = (
        not Path(params["output_dir"])
        .parent.parent.joinpath("0000", "outputs", "probe.jsonl")
        .exists()
    )
    if first:
        record["failed_next"] = True
        _mark(params, "probe.jsonl", record)
        _POISONED.append(True)
        os.environ["CUDA_VISIBLE_DEVICES"] = "99"
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    _mark(params, "probe.jsonl", record)
    report(0, {"best_val_acc": params["x"]})
    return {"best_val_acc": params["x"]}


def checkpointing(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Keeps its progress in ``checkpoint_dir`` (state.json, and weights.bin, which changes
    every other epoch) and continues from it; records every epoch it really ran and every
    start (the epoch it started from, its process and the Ray node's raylet, its parent).

    ``fail_at`` raises, ``die_at`` ends its process and ``hang_at`` hangs, the first time it
    reaches that epoch; ``die_always_at`` ends it every time; ``sigterm_at`` sends its own
    process SIGTERM (a preemption notice) and trains on, as a trainer that cannot save
    mid-epoch does, until its report says stop.
    """
    ckpt = Path(params.get("checkpoint_dir") or params["output_dir"]) / "."  # none: no folder
    state_file = ckpt / "state.json"
    start, best = 0, -math.inf
    if "checkpoint_dir" in params and state_file.exists():
        state = json.loads(state_file.read_text())
        start, best = state["epoch"] + 1, state["best"]
    _mark(
        params,
        "span.jsonl",
        {
            "start": time.time(),
            "from": start,
            "pid": os.getpid(),
            "raylet": os.getppid(),
            "node": _ray_node(),
        },
    )
    trial = Path(params["output_dir"]).parent
    told = {
        k: v for k, v in params.items() if k.startswith("checkpoint_") and k != "checkpoint_dir"
    }
    Path(params["output_dir"]).mkdir(parents=True, exist_ok=True)
    (Path(params["output_dir"]) / "told.json").write_text(json.dumps(told))
    acc = best
    for epoch in range(start, int(params.get("num_epochs", 3))):
        time.sleep(float(params.get("epoch_s", 0.0)))
        # Once per params: a trial run again under a new number has the same ones.
        once = trial.parent / f"once-{params['x']:.9f}-at-{epoch}"
        if epoch == params.get("fail_at") and not once.exists():
            once.write_text("")
            raise RuntimeError(f"failed at epoch {epoch}")
        if epoch == params.get("die_at") and not once.exists():
            once.write_text("")
            os._exit(1)
        if epoch == params.get("die_always_at"):
            os._exit(1)
        if epoch == params.get("hang_at") and not once.exists():
            once.write_text("")
            time.sleep(3600)
        if epoch == params.get("sigterm_at") and not once.exists():
            once.write_text("")
            os.kill(os.getpid(), signal.SIGTERM)
            # Python hears a signal on the main thread; a trainer in another thread (a Ray
            # worker's) trains on meanwhile: the notice lands within this epoch.
            from trainer import preemption

            preemption.NOTICE.wait(5.0)
        acc = 1 - (params["x"] - 0.3) ** 2 + 0.01 * epoch
        best = max(best, acc)
        _mark(params, "ran.jsonl", {"epoch": epoch})
        if epoch % 2 == 0:
            (ckpt / "weights.bin").write_bytes(bytes([epoch % 256]) * 10_000)
        tmp = ckpt / "state.json.tmp"
        tmp.write_text(json.dumps({"epoch": epoch, "best": best}))
        os.replace(tmp, state_file)
        if report(epoch, {"val_acc": acc, "best_val_acc": best}):
            break
    return {"best_val_acc": best, "val_acc": acc}


def slow_checkpointing(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """For the kill -9 and node-loss tests: each epoch takes a while."""
    return checkpointing({**params, "epoch_s": params.get("epoch_s", 0.5)}, report)


def chatty(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Prints 30 MB (a runaway debug print), then its last words, then trains."""
    line = "x" * 999
    for _ in range(30_000):
        print(line)
    print("THE END")
    return quadratic(params, report)


def verbose_failure(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    raise RuntimeError("line one\n" + "z" * 100_000 + " THE END")


class CtrlCAfter:
    """A listener that presses Ctrl-C in the coordinator after ``reports`` reports."""

    def __init__(self, reports: int) -> None:
        self.left = reports

    def trial_started(self, number, params):  # type: ignore[no-untyped-def]
        pass

    def trial_reported(self, number, epoch, value):  # type: ignore[no-untyped-def]
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt

    def trial_ended(self, number, state, value, reason):  # type: ignore[no-untyped-def]
        pass


class OnceAtEpoch:
    """A listener that calls ``act()`` once, when a trial first reports ``epoch`` (0-based)."""

    def __init__(self, epoch: int, act: Callable[[], object]) -> None:
        self.epoch, self.act, self.done = epoch, act, False

    def trial_started(self, number, params):  # type: ignore[no-untyped-def]
        pass

    def trial_reported(self, number, epoch, value):  # type: ignore[no-untyped-def]
        if epoch == self.epoch and not self.done:
            self.done = True
            self.act()

    def trial_ended(self, number, state, value, reason):  # type: ignore[no-untyped-def]
        pass


def curve_gain(lr: float, acc: float) -> float:
    """A toy learning curve whose best learning rate falls as accuracy rises (from 0.1 at
    acc 0 to 1e-4 at acc 1): a fixed rate is right for one stretch of the curve only."""
    best_lr = 0.1 * 10 ** (-3 * acc)
    return 0.2 * (1 - acc) * math.exp(-(((math.log10(lr) - math.log10(best_lr)) / 0.4) ** 2))


def pbt_curve(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Climbs ``curve_gain`` with ``params['lr']``, its accuracy kept in its checkpoint; each
    report says the accuracy it started the epoch from (``start_acc``) and the rate used."""
    state_file = Path(params["checkpoint_dir"]) / "state.json"
    start, acc = 0, 0.0
    if state_file.exists():
        state = json.loads(state_file.read_text())
        start, acc = state["epoch"] + 1, state["acc"]
    lr = float(params["lr"])
    for epoch in range(start, int(params["num_epochs"])):
        time.sleep(float(params.get("epoch_s", 0.0)))
        before, acc = acc, acc + curve_gain(lr, acc)
        _mark(params, "ran.jsonl", {"epoch": epoch})
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"epoch": epoch, "acc": acc}))
        os.replace(tmp, state_file)
        if report(epoch, {"acc": acc, "start_acc": before, "lr": lr}):
            break
    return {"acc": acc}


def env_echo(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Writes the environment variables named in ``params['echo']`` (comma-separated), as
    its process sees them, to ``output_dir/env.json``; then trains as ``quadratic``."""
    seen = {name: os.environ.get(name) for name in str(params["echo"]).split(",")}
    folder = Path(params["output_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "env.json").write_text(json.dumps(seen))
    return quadratic(params, report)


def tradeoff(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Accuracy rises with ``x`` and so does the cost (a latency): a Pareto front along x.
    ``x`` a choice of a few values makes ties (equal values, several trials)."""
    x = float(params["x"])
    acc = round(1 - (1 - x) ** 2, 6)
    cost = round(1 + 4 * x, 6)
    folder = Path(params["output_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.pt").write_bytes(b"w" * 100)  # what keep.models keeps or drops
    for epoch in range(int(params.get("num_epochs", 2))):
        if report(epoch, {"acc": acc * (epoch + 1) / 2}):
            break
    return {"acc": acc, "latency_ms": cost + float(params.get("slow", 0.0)), "val_acc": acc}


def crossing(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Learning curves that cross: a larger ``x`` starts slower and ends higher, as a lower
    learning rate does (asymptote 0.7 + 0.25 x, rate 1.5 - 1.3 x per epoch)."""
    x = float(params["x"])
    value = 0.0
    for epoch in range(int(params.get("num_epochs", 9))):
        value = (0.7 + 0.25 * x) * (1 - math.exp(-(1.5 - 1.3 * x) * (epoch + 1)))
        if report(epoch, {"val_acc": value, "best_val_acc": value}):
            break
    return {"best_val_acc": value}


def crossing_sweep(root: Path) -> dict:
    """``Sweep`` settings of a sweep of ``crossing`` curves over x in [0, 1], 9 epochs, run
    in this process under ``root`` (name, sampling and limits are the test's)."""
    from sweep.backends import InProcessBackend

    return {
        "trainer": crossing,
        "trainer_args": {"num_epochs": 9},
        "search_space": {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
        "root": root,
        "backend": InProcessBackend(),
    }


def silent(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """Reports nothing per epoch: only its result."""
    return {"best_val_acc": float(params["x"])}


def tradeoff_per_epoch(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """``tradeoff`` whose reports carry both objectives every epoch (a latency is known from
    the architecture, before the weights are any good): accuracy climbs, latency is fixed."""
    x = float(params["x"])
    acc, cost = round(1 - (1 - x) ** 2, 6), round(1 + 4 * x, 6)
    for epoch in range(int(params.get("num_epochs", 3))):
        if report(epoch, {"acc": acc * (epoch + 1) / 3, "latency_ms": cost}):
            break
    return {"acc": acc, "latency_ms": cost}


def tradeoff_checkpointing(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """``tradeoff_per_epoch`` that keeps the epoch it reached in ``checkpoint_dir`` and
    continues from it (what promotion needs), recording each epoch it ran in ``ran.txt``
    beside its output, so a test can tell that no epoch ran twice."""
    x = float(params["x"])
    acc, cost = round(1 - (1 - x) ** 2, 6), round(1 + 4 * x, 6)
    state = Path(params["checkpoint_dir"]) / "epoch.txt"
    start = int(state.read_text()) + 1 if state.exists() else 0
    epochs = int(params.get("num_epochs", 3))
    for epoch in range(start, epochs):
        with (Path(params["output_dir"]).parent / "ran.txt").open("a") as ran:
            ran.write(f"{epoch}\n")
        state.write_text(str(epoch))
        if report(epoch, {"acc": acc * (epoch + 1) / epochs, "latency_ms": cost}):
            break
    return {"acc": acc, "latency_ms": cost}


def pbt_uneven(params: dict, report) -> dict:  # type: ignore[no-untyped-def]
    """``pbt_curve`` where trial 0 is twenty times slower than the others (a member on a busy
    node, or a bigger one)."""
    slow = Path(params["output_dir"]).parent.name == "0000"
    return pbt_curve({**params, "epoch_s": 0.2 if slow else 0.01}, report)
