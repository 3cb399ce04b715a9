"""What one Azure ML trial runs: ``python -m sweep.azure.trial --entry … --metric … --KEY VALUE…``.

Azure ML's sweep samples the parameters and passes them as flags; this calls the trainer with
the sweep's ``fn(params, report)`` signature, and ``report`` logs every metric to MLflow with
the epoch as its step, so that Azure ML's early termination sees the primary metric under
the objective's name. Azure ends a terminated trial itself, so ``report`` never says stop.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml

LogMetrics = Callable[[dict[str, float], int], None]


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``--key value`` pairs; values typed as YAML reads them (``0.1`` a float, ``sgd`` a str)."""
    params: dict[str, Any] = {}
    it = iter(pairs)
    for flag in it:
        if not flag.startswith("--"):
            raise SystemExit(f"sweep.azure.trial: expected --KEY VALUE, got {flag!r}")
        try:
            value = next(it)
        except StopIteration:
            raise SystemExit(f"sweep.azure.trial: {flag} has no value") from None
        params[flag[2:]] = yaml.safe_load(value) if value else value
    return params


def mlflow_logger() -> LogMetrics:
    try:
        import mlflow
    except ImportError:
        raise SystemExit(
            "sweep.azure.trial: mlflow is needed to log metrics in Azure ML "
            "(the environment sweep builds includes it)"
        ) from None

    def log(metrics: dict[str, float], step: int) -> None:
        mlflow.log_metrics(
            {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}, step=step
        )

    return log


def run(entry: str, metric: str, params: dict[str, Any], log: LogMetrics) -> dict[str, Any]:
    from sweep.trainers.runner import resolve_entry

    fn = resolve_entry(entry)
    last = [-1]

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        log(dict(metrics), epoch)
        last[0] = epoch
        return False

    result = dict(fn(params, report))
    if metric not in result:
        raise SystemExit(
            f"sweep.azure.trial: the trainer returned no {metric!r} "
            f"(it returned: {', '.join(sorted(result)) or 'nothing'})"
        )
    log(
        {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)},
        last[0] + 1,
    )
    return result


def main(argv: Sequence[str] | None = None, log: LogMetrics | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweep.azure.trial")
    parser.add_argument("--entry", required=True)
    parser.add_argument("--metric", required=True)
    known, rest = parser.parse_known_args(argv)
    result = run(known.entry, known.metric, parse_params(rest), log or mlflow_logger())
    print(f"{known.metric} = {result[known.metric]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
