"""Charts that stay light at thousands of trials."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reports import plots
from reports.compare import SweepData


def _data(trials: int, epochs: int = 3) -> SweepData:
    rng = np.random.default_rng(0)
    states = ["pruned" if n % 3 == 0 else "complete" for n in range(trials)]
    frame = pd.DataFrame(
        {
            "number": range(trials),
            "state": states,
            "value": rng.uniform(size=trials),
            "param_lr": rng.uniform(size=trials),
            "reason": ["median" if s == "pruned" else "" for s in states],
        }
    )
    rows = [
        {"trial": n, "epoch": e, "acc": rng.uniform()}
        for n in range(trials)
        for e in range(1 if states[n] == "pruned" else epochs)
    ]
    return SweepData(
        name="big",
        metric="acc",
        goal="maximize",
        trials=frame,
        curves=pd.DataFrame(rows),
        sweep_dir=Path("."),
    )


def _points(fig) -> int:  # type: ignore[no-untyped-def]
    return sum(sum(v is not None for v in t.y) for t in fig.data if t.mode == "lines+markers")


def test_many_trials_draw_one_line_per_state_and_lose_no_point() -> None:
    data = _data(plots.TRIALS_AS_TRACES + 1)
    fig = plots.learning_curves(data)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert sorted(t.name for t in lines) == ["complete trials", "pruned trials"]
    assert _points(fig) == len(data.curves)
    hover = {text for t in lines for text in t.text if text}
    assert hover == {f"trial {n}" for n in range(plots.TRIALS_AS_TRACES + 1)}
    (ends,) = [t for t in fig.data if t.mode == "markers"]
    assert len(ends.x) == (data.trials["state"] == "pruned").sum()


def test_few_trials_keep_a_line_each() -> None:
    data = _data(plots.TRIALS_AS_TRACES)
    fig = plots.learning_curves(data)
    assert len([t for t in fig.data if t.mode == "lines+markers"]) == plots.TRIALS_AS_TRACES
    assert _points(fig) == len(data.curves)


def test_the_page_template_is_plotlys_own_and_charts_carry_none():
    import json

    from reports import html

    # Read from plotly's file (fast): the same template a plotly figure is given.
    own = json.loads(plots.template_figure().to_json())["layout"]["template"]
    assert html._shared_template() == own
    # The page applies it to every chart; a chart's own copy would be written again per chart.
    block = html._div(plots.learning_curves(_data(5)), "c")
    figure = json.loads(block.split('id="c-figure">')[1].split("</script>")[0])
    assert "template" not in figure["layout"] and figure["data"]
