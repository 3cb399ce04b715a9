"""The report's charts, as plotly figures built from the trial and curve frames.

They carry no template of their own: the page (``reports.html``) draws each with the shared
``TEMPLATE``. Shown alone (``fig.show()``), a chart is plotly's bare style.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from reports.compare import SweepData
from reports.importance import MIN_TRIALS, main_effects

STATE_COLOURS = {
    "complete": "#2a9d8f",
    "pruned": "#e9c46a",
    "failed": "#e76f51",
    "running": "#8ab17d",
    "waiting": "#aaaaaa",
}
# One colour per trial (a curve is found by its colour); the state shows in the line's dash.
TRIAL_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
STATE_DASH = {"complete": "solid", "pruned": "dot", "failed": "dash"}
TRIALS_AS_TRACES = 40
# A whole-number parameter with this few distinct values (num_epochs: choice of 3, 5) is
# shown at those values only, never at 3.5.
_FEW_VALUES = 10


def few_whole_values(values: pd.Series) -> list[float] | None:
    """The sorted distinct values of a parameter that reads as a choice of whole numbers."""
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    if values.empty or values.nunique() > _FEW_VALUES or not (values == values.round()).all():
        return None
    return sorted(values.unique())


TEMPLATE = "plotly_white"


def template_figure() -> go.Figure:
    """An empty figure in the charts' template (the page writes the template once)."""
    return go.Figure(layout={"template": TEMPLATE})


def new_figure() -> go.Figure:
    """A chart without a template of its own: the page gives every chart the shared one.
    Each figure's own copy of plotly's template took 20 ms to build, copy and write, four
    fifths of a chart's cost and most of the report's at every sweep's end."""
    return go.Figure(layout={"template": "none"})


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig


def learning_curves(data: SweepData) -> go.Figure:
    """Every trial's metric by epoch; a pruned trial ends in an X carrying the pruner's reason.

    Up to ``TRIALS_AS_TRACES`` trials, a line (and a legend entry) per trial; beyond, a line
    per state, each trial's curve one segment of it with its number on hover: a trace per
    trial makes a 2,000-trial report slow to write and to open, and its colours repeat anyway.
    """
    fig = new_figure()
    curves, trials = data.curves, data.trials.set_index("number")
    if curves.empty or data.metric not in curves:
        return _layout(fig, "Learning curves (no per-epoch reports)", "epoch", data.metric)
    states = {
        number: trials.loc[number, "state"] if number in trials.index else "running"
        for number in curves["trial"].unique()
    }
    per_trial = len(states) <= TRIALS_AS_TRACES
    segments: dict[str, tuple[list[Any], list[Any], list[str]]] = {}
    ends: tuple[list[Any], list[Any], list[str]] = ([], [], [])
    for index, (number, curve) in enumerate(curves.groupby("trial")):
        state = states[number]
        x, y = (curve["epoch"] + 1).tolist(), curve[data.metric].tolist()
        if per_trial:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines+markers",
                    name=f"trial {number} ({state})",
                    line={
                        "color": TRIAL_COLOURS[index % len(TRIAL_COLOURS)],
                        "width": 1.5,
                        "dash": STATE_DASH.get(state, "solid"),
                    },
                    marker={"size": 4},
                )
            )
        else:
            xs, ys, texts = segments.setdefault(state, ([], [], []))
            xs.extend([*x, None])
            ys.extend([*y, None])
            texts.extend([f"trial {number}"] * len(x) + [""])
        if state == "pruned":
            ends[0].append(x[-1])
            ends[1].append(y[-1])
            ends[2].append(
                f"trial {number} pruned at epoch {x[-1]}: {trials.loc[number, 'reason']}"
            )
    for state, (xs, ys, texts) in segments.items():
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                text=texts,
                mode="lines+markers",
                name=f"{state} trials",
                line={
                    "color": STATE_COLOURS.get(state, "#888"),
                    "width": 1,
                    "dash": STATE_DASH.get(state, "solid"),
                },
                marker={"size": 3},
                opacity=0.6,
                hovertemplate="%{text}: %{y}<extra></extra>",
            )
        )
    if ends[0]:
        fig.add_trace(
            go.Scatter(
                x=ends[0],
                y=ends[1],
                hovertext=ends[2],
                mode="markers",
                showlegend=False,
                marker={"symbol": "x", "size": 12, "color": "#d62828"},
                hoverinfo="text",
            )
        )
    # Epochs are whole numbers: ticks on them, never at 1.5.
    last_epoch = int(curves["epoch"].max()) + 1
    fig.update_xaxes(tickmode="linear", tick0=1, dtick=max(1, math.ceil(last_epoch / 12)))
    return _layout(
        fig, "Learning curves (dotted: pruned, X where it stopped)", "epoch", data.metric
    )


def history(data: SweepData) -> go.Figure:
    """Each completed trial's value in the order they started, and the best so far."""
    done = data.trials[data.trials["state"] == "complete"].sort_values("number")
    fig = new_figure()
    if not done.empty:
        best = done["value"].cummax() if data.maximize else done["value"].cummin()
        fig.add_trace(
            go.Scatter(
                x=done["number"],
                y=done["value"],
                mode="markers",
                name="trial value",
                marker={"color": "#264653"},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=done["number"],
                y=best,
                mode="lines",
                name="best so far",
                line={"shape": "hv", "color": "#e76f51"},
            )
        )
    return _layout(fig, "Optimisation history", "trial", data.metric)


def parallel_coordinates(data: SweepData) -> go.Figure:
    """Completed trials as lines across one axis per parameter and the metric, coloured by
    the metric. Drawn in SVG (lines of a scatter chart), not plotly's ``parcoords``, which
    needs WebGL: a browser without it (headless, many remote desktops) shows a grey box."""
    done = data.trials[data.trials["state"] == "complete"].sort_values("number")
    fig = new_figure()
    axes: list[tuple[str, list[float], list[float], list[str]]] = []
    for name in [*data.params, None]:
        values = done["value"] if name is None else done[f"param_{name}"]
        label = data.metric if name is None else name
        positions, ticks, texts = _axis(values)
        if name is not None and _spans_decades(values) and not few_whole_values(values):
            label = f"log10 {name}"
        axes.append((label, positions, ticks, texts))
    if done.empty or not axes:
        return _layout(fig, "Parallel coordinates (no completed trial yet)", "", "")
    value = done["value"].to_numpy(dtype=float)
    low, high = float(value.min()), float(value.max())
    # One trace per colour band (not per trial: 2,000 traces make a slow page), each trial
    # a segment of it; the best trials drawn last, on top.
    bands: dict[int, tuple[list[Any], list[Any], list[str]]] = {}
    order = sorted(range(len(done)), key=lambda k: value[k] if data.maximize else -value[k])
    labels = [a[0] for a in axes]
    for k in order:
        row = done.iloc[k]
        share = 0.5 if high == low else (value[k] - low) / (high - low)
        band = _band(share if data.maximize else 1 - share)
        hover = f"trial {row['number']}<br>" + "<br>".join(
            f"{label}: {_short(_raw(row, name))}"
            for label, name in zip(labels, [*data.params, "value"], strict=True)
        )
        xs, ys, texts = bands.setdefault(band, ([], [], []))
        xs.extend([*range(len(axes)), None])
        ys.extend([*(a[1][k] for a in axes), None])
        texts.extend([hover] * len(axes) + [""])
    for band, (xs, ys, texts) in sorted(bands.items()):
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                text=texts,
                mode="lines",
                showlegend=False,
                opacity=0.8,
                line={"color": _VIRIDIS[band], "width": 1.5},
                hovertemplate="%{text}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(  # the colour bar, from an invisible marker
            x=[None],
            y=[None],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            marker={
                "color": [low, high],
                "colorscale": "Viridis",
                "showscale": True,
                "reversescale": not data.maximize,
                "cmin": low,
                "cmax": high,
                "colorbar": {"title": data.metric},
            },
        )
    )
    # Set at once: plotly's add_annotation validates every earlier one again at each call.
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for i, (label, _, ticks, texts) in enumerate(axes):
        shapes.append(
            {
                "type": "line",
                "x0": i,
                "x1": i,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#666", "width": 1},
            }
        )
        notes.append({"x": i, "y": 1.08, "text": label, "showarrow": False, "yanchor": "bottom"})
        notes.extend(
            {
                "x": i,
                "y": tick,
                "text": text,
                "showarrow": False,
                "xanchor": "right",
                "xshift": -3,
                "font": {"size": 10, "color": "#555"},
            }
            for tick, text in zip(ticks, texts, strict=True)
        )
    fig.update_layout(shapes=shapes, annotations=notes)
    _layout(fig, "Parallel coordinates (completed trials)", "", "")
    fig.update_xaxes(visible=False, range=[-0.5, len(axes) - 0.5])
    fig.update_yaxes(visible=False, range=[-0.05, 1.2])
    return fig


def _axis(values: pd.Series) -> tuple[list[float], list[float], list[str]]:
    """Each trial's place on an axis from 0 (bottom) to 1, and the ticks: a choice's levels,
    else the lowest and highest value (on a log scale where they span decades)."""
    levels = few_whole_values(values)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if levels is None and not numeric:
        codes, labels = pd.factorize(values.astype(str), sort=True)
        n = max(len(labels) - 1, 1)
        return (
            [c / n for c in codes],
            [i / n for i in range(len(labels))],
            [str(v) for v in labels],
        )
    shown = values.astype(float)
    if levels is None and _spans_decades(values):
        shown = shown.map(math.log10)
    low, high = float(shown.min()), float(shown.max())
    span = (high - low) or 1.0
    positions = [(v - low) / span if high > low else 0.5 for v in shown]
    if levels is not None:
        return (
            positions,
            [(v - low) / span if high > low else 0.5 for v in levels],
            [f"{v:g}" for v in levels],
        )
    ends = [float(values.min()), float(values.max())]
    return (
        positions,
        [0.0, 1.0] if high > low else [0.5],
        [f"{v:.3g}" for v in (ends if high > low else ends[:1])],
    )


def _spans_decades(values: pd.Series) -> bool:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return bool(numeric and (values > 0).all() and values.max() / max(values.min(), 1e-300) > 100)


def _raw(row: pd.Series, name: str) -> Any:
    return row["value"] if name == "value" else row[f"param_{name}"]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


_VIRIDIS = (
    "#440154",
    "#482878",
    "#3e4989",
    "#31688e",
    "#26828e",
    "#1f9e89",
    "#35b779",
    "#6ece58",
    "#b5de2b",
    "#fde725",
)


def _band(share: float) -> int:
    return min(int(share * len(_VIRIDIS)), len(_VIRIDIS) - 1)


def importances(data: SweepData) -> go.Figure:
    """Each parameter's share of the metric's variance it explains alone (see importance)."""
    fig = new_figure()
    title = "Parameter importances (main effects)"
    raw = main_effects(data.trials, data.params)
    if not raw:
        return _layout(
            fig,
            f"{title}: needs {MIN_TRIALS} or more completed trials with different values",
            "",
            "",
        )
    fig.add_trace(
        go.Bar(
            x=list(raw.values()),
            y=list(raw),
            orientation="h",
            marker={"color": "#2a9d8f"},
            hovertemplate="%{y}: explains %{x:.0%} of the variance<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(range=[0, max(1e-9, *raw.values()) * 1.05], tickformat=".0%")
    return _layout(fig, title, "share of the metric's variance explained alone (ω²)", "")


def slices(data: SweepData) -> list[go.Figure]:
    """One scatter per parameter: its value against the metric, coloured by state."""
    figures = []
    frame = data.trials[data.trials["value"].notna()]
    for name in data.params:
        fig = new_figure()
        for state, group in frame.groupby("state"):
            fig.add_trace(
                go.Scatter(
                    x=group[f"param_{name}"],
                    y=group["value"],
                    mode="markers",
                    name=str(state),
                    marker={"color": STATE_COLOURS.get(str(state), "#888"), "size": 8},
                    hovertext=[f"trial {n}" for n in group["number"]],
                )
            )
        values = frame[f"param_{name}"]
        levels = few_whole_values(values)
        if levels is not None:
            fig.update_xaxes(tickvals=levels)
        elif (
            pd.api.types.is_numeric_dtype(values)
            and (values > 0).all()
            and len(values)
            and values.max() / max(values.min(), 1e-300) > 100
        ):
            fig.update_xaxes(type="log")
        figures.append(_layout(fig, f"Slice: {name}", name, data.metric))
    return figures


def pbt_schedule(data: SweepData) -> go.Figure | None:
    """PBT: each member's params over epochs (a row per member, coloured by the first
    numeric parameter, on a log scale where it spans decades), and an arrow per copy from
    the donor's row to the member's at the epoch it copied. None for other sweeps."""
    if "schedule" not in data.trials:
        return None
    rows = data.trials.dropna(subset=["schedule"]).sort_values("number")
    numeric = [
        p
        for p in data.params
        if pd.api.types.is_numeric_dtype(data.trials[f"param_{p}"])
        and not pd.api.types.is_bool_dtype(data.trials[f"param_{p}"])
    ]
    main = numeric[0] if numeric else None
    xs, ys, colours, texts = [], [], [], []
    arrows: list[dict[str, Any]] = []  # set at once, as in parallel_coordinates
    fig = new_figure()
    for row in rows.to_dict("records"):
        steps, last = row["schedule"], int(row["epochs_run"] or 0)
        for i, step in enumerate(steps):
            end = steps[i + 1]["epoch"] if i + 1 < len(steps) else max(last, step["epoch"] + 1)
            for epoch in range(step["epoch"], end):
                xs.append(epoch + 1)
                ys.append(f"trial {row['number']}")
                colours.append(step["params"].get(main) if main else 0)
                texts.append(
                    ", ".join(
                        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                        for k, v in step["params"].items()
                    )
                )
            if "from" in step:
                arrows.append(
                    {
                        "x": step["epoch"] + 0.5,
                        "y": f"trial {row['number']}",
                        "ax": step["epoch"] + 0.5,
                        "ay": f"trial {step['from']}",
                        "xref": "x",
                        "yref": "y",
                        "axref": "x",
                        "ayref": "y",
                        "showarrow": True,
                        "arrowhead": 2,
                        "arrowwidth": 1.2,
                        "arrowcolor": "#444",
                        "hovertext": f"trial {row['number']} copied trial "
                        f"{step['from']} after {step['epoch']} epochs",
                    }
                )
    if arrows:
        fig.update_layout(annotations=arrows)
    values = pd.Series(colours, dtype=float)
    log = bool(main and (values > 0).all() and values.max() / max(values.min(), 1e-300) > 10)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            text=texts,
            hovertemplate="epoch %{x}, %{y}: %{text}<extra></extra>",
            showlegend=False,
            marker={
                "symbol": "square",
                "size": 14,
                "color": values.map(math.log10) if log else values,
                "colorscale": "Viridis",
                "showscale": main is not None,
                "colorbar": {"title": f"log10 {main}" if log else (main or "")},
            },
        )
    )
    fig.update_yaxes(
        categoryorder="array", categoryarray=[f"trial {n}" for n in rows["number"]][::-1]
    )
    return _layout(
        fig, "PBT: each member's params by epoch (arrows: copied a checkpoint)", "epoch", "member"
    )


def pareto(data: SweepData) -> go.Figure | None:
    """Several objectives: every completed trial by its first two objectives, the Pareto
    front highlighted and joined (in its order along the first), trials that break a
    constraint marked with an X. None for a sweep of one objective."""
    if len(data.objectives) < 2 or "values" not in data.trials:
        return None
    done = data.trials[
        (data.trials["state"] == "complete")
        & data.trials["values"].map(lambda v: isinstance(v, list))
    ]
    (x_name, x_goal), (y_name, y_goal) = data.objectives[:2]
    fig = new_figure()
    everyone = pd.Series(True, index=done.index)
    feasible = done["feasible"].ne(False) if "feasible" in done else everyone
    on_front = done["pareto"].eq(True) if "pareto" in done else ~everyone
    groups = (
        ("trials", done[feasible & ~on_front], "circle", "#8ab17d", 8),
        ("Pareto front", done[on_front], "diamond", "#d62828", 12),
        ("breaks a constraint", done[~feasible], "x", "#999999", 9),
    )
    for name, rows, symbol, colour, size in groups:
        if rows.empty:
            continue
        rows = rows.sort_values("values", key=lambda s: s.map(lambda v: v[0]))
        text = [
            f"trial {r['number']}<br>"
            + "<br>".join(f"{p} = {_short(r[f'param_{p}'])}" for p in data.params)
            for r in rows.to_dict("records")
        ]
        fig.add_trace(
            go.Scatter(
                x=[v[0] for v in rows["values"]],
                y=[v[1] for v in rows["values"]],
                text=text,
                mode="lines+markers" if name == "Pareto front" else "markers",
                name=name,
                line={"shape": "hv", "color": colour, "width": 1.5, "dash": "dot"},
                marker={"symbol": symbol, "size": size, "color": colour},
                hovertemplate="%{text}<br>" + f"{x_name} %{{x}}<br>{y_name} %{{y}}<extra></extra>",
            )
        )
    title = "Pareto front" + (
        f" (the first two of {len(data.objectives)} objectives)" if len(data.objectives) > 2 else ""
    )
    arrows = {"maximize": "higher is better", "minimize": "lower is better"}
    return _layout(fig, title, f"{x_name} ({arrows[x_goal]})", f"{y_name} ({arrows[y_goal]})")
