"""How long from a script's ``mlflow.log_metric`` to the sweep's decision reaching it.

A real script logs a metric every 0.2 s into the trial's MLflow store; the trainer's report
callback records when each value arrives, and says "stop" at the 10th. The script records
when its SIGTERM arrives. Printed: log -> report (the sweep has the value), and
log -> SIGTERM (a prune has reached the process), over several runs, beside the poll interval
that bounds them. Run: .venv/bin/python benchmarks/command_latency.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from sweep.trainers.command_trial import CommandTrainer
from sweep.trainers.command_trial.trainer import POLL_S

SCRIPT = textwrap.dedent("""
    import signal, sys, time
    import mlflow
    out = sys.argv[1]
    def stopped(*_):
        open(out, "w").write(repr(time.time()))
        sys.exit(0)
    signal.signal(signal.SIGTERM, stopped)
    for i in range(100):
        mlflow.log_metric("acc", i / 100, step=i)
        time.sleep(0.2)
""")


def one_run(folder: Path) -> tuple[list[float], float]:
    (folder / "code").mkdir(parents=True)
    (folder / "code" / "logger.py").write_text(SCRIPT)
    term_file = folder / "term.txt"
    arrivals: list[tuple[int, float]] = []

    def report(epoch: int, metrics: dict) -> bool:
        arrivals.append((epoch, time.time()))
        return epoch == 9

    trainer = CommandTrainer(
        command=f"python logger.py {term_file}", metric="acc", code=str(folder / "code")
    )
    trainer({"output_dir": str(folder / "trial" / "outputs")}, report)
    from mlflow.tracking import MlflowClient

    client = MlflowClient((folder / "trial" / "mlruns").resolve().as_uri())
    run = client.search_runs([client.get_experiment_by_name("sweep-trial").experiment_id])[0]
    logged = {m.step: m.timestamp / 1000 for m in client.get_metric_history(run.info.run_id, "acc")}
    delays = [at - logged[epoch] for epoch, at in arrivals]
    term = float(term_file.read_text()) - logged[9]
    return delays, term


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    reports: list[float] = []
    terms: list[float] = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            delays, term = one_run(Path(tmp) / str(i))
        reports += delays
        terms.append(term)
    ms = [d * 1000 for d in reports]
    print(f"poll interval: {POLL_S * 1000:.0f} ms; {len(ms)} logs over {runs} runs")
    print(
        f"log_metric -> report (the sweep has the value): median {statistics.median(ms):.0f} ms"
        f", max {max(ms):.0f} ms"
    )
    tms = [t * 1000 for t in terms]
    print(
        f"log_metric -> SIGTERM in the script (a prune reached it): median "
        f"{statistics.median(tms):.0f} ms, max {max(tms):.0f} ms"
    )
    print(
        "baseline, a function trainer: report() is a direct call; the answer is there when "
        "it returns (in-process), or after one Ray round trip"
    )


if __name__ == "__main__":
    main()
