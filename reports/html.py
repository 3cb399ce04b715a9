"""One self-contained HTML report: plotly's JavaScript inside, no network needed to open it.

Every string a user controls (names, values, failure messages) reaches the page through
``_text`` (escaped) or a figure's JSON (``<`` escaped), and the page's Content-Security-Policy
lets only its own inline scripts run, by hash: a payload that slipped past both still could not.
plotly.js travels compressed and every chart is SVG (no WebGL), see ``reports.bundle``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import plotly.graph_objects as go

from reports import plots
from reports.bundle import compressed_plotly, loader, plotly_js
from reports.compare import Comparison, SweepData
from reports.frames import pruning_saving
from reports.terminal import ranked

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em}th,td{padding:3px 8px;border-bottom:1px solid #eee;
text-align:right}th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}
td.l,th.l{text-align:left}.summary{background:#f7f7f2;padding:10px 14px;border-radius:6px}
.state-complete{color:#2a7d6f}.state-pruned{color:#b08900}.state-failed{color:#c0392b}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:12px}.wide{grid-column:1/3}
#js-errors{color:#c0392b}
"""

# Errors during rendering end up in the page itself, where a test (or a person) can see them.
_ERRORS = """window.addEventListener('error',function(e){var p=document.getElementById('js-errors');
if(p){p.textContent+=String(e.message)+'\\n';}});"""

_SORT = """document.querySelectorAll('table.sortable').forEach(function(t){
t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
var rows=Array.from(t.tBodies[0].rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
rows.sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v,
nx=parseFloat(x),ny=parseFloat(y);var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
return asc?c:-c;});rows.forEach(function(r){t.tBodies[0].appendChild(r);});});});});"""


def _div(fig: go.Figure, div_id: str, wide: bool = False) -> str:
    """A chart's place and its figure as a JSON data block; the loader draws it. Charts
    carry no template: the common one (7 KB) is written once, in ``_template_block``."""
    figure = json.loads(fig.to_json())
    figure.get("layout", {}).pop("template", None)  # the page's shared one applies
    return (
        f'<div class="chart{" wide" if wide else ""}"><div id="{div_id}" '
        f'data-figure="{div_id}-figure"></div><script type="application/json" '
        f'id="{div_id}-figure">{_json(figure)}</script></div>'
    )


def _json(value: object) -> str:
    # No '<' at all: a user's string cannot end the data block ('</script>').
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


@functools.cache
def _shared_template() -> dict[str, object]:
    """plotly's template as plotly ships it: its JSON file reads in 40 ms, where a Template
    object (which validates all of it) took 230 ms to 770 ms of every report's process."""
    try:
        shipped = resources.files("plotly").joinpath(
            f"package_data/templates/{plots.TEMPLATE}.json"
        )
        return dict(json.loads(shipped.read_text(encoding="utf-8")))
    except (OSError, ValueError):  # a plotly that keeps its templates elsewhere
        return dict(json.loads(plots.template_figure().to_json())["layout"]["template"])


def _template_block() -> str:
    return (
        f'<script type="application/json" id="plotly-template">{_json(_shared_template())}</script>'
    )


def _value(v: object) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _text(v: object) -> str:
    """Any value as page text: the one way a user's string reaches the HTML."""
    return html.escape(_value(v))


def _table(data: SweepData) -> str:
    frame = ranked(data)
    # Restarts only when a trial continued from its checkpoint: most sweeps have none.
    restarts = "restarts" in frame and bool(frame["restarts"].any())
    lineage = "lineage" in frame  # PBT
    cols = [
        "number",
        "state",
        "value",
        *[f"param_{p}" for p in data.params],
        "epochs_run",
        "epochs_asked",
        *(["restarts"] if restarts else []),
        "duration_s",
        *(["lineage"] if lineage else []),
        "reason",
    ]
    labels = [
        "#",
        "state",
        data.metric,
        *data.params,
        "epochs run",
        "epochs asked",
        *(["restarts"] if restarts else []),
        "time s",
        *(["copied (PBT)"] if lineage else []),
        "reason",
    ]
    head = "".join(
        f'<th class="{"l" if c in ("state", "lineage", "reason") else ""}">{_text(lab)}</th>'
        for c, lab in zip(cols, labels, strict=True)
    )
    rows = []
    for row in frame.to_dict("records"):
        cells = []
        for c in cols:
            v = row.get(c)
            cls = (
                f"l state-{_text(v)}"
                if c == "state"
                else ("l" if c in ("lineage", "reason") else "")
            )
            raw = "" if v is None or (isinstance(v, float) and v != v) else str(v)
            cells.append(f'<td class="{cls}" data-v="{html.escape(raw)}">{_text(v)}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _summary(data: SweepData) -> str:
    counts = data.trials["state"].value_counts().to_dict()
    done = ranked(data)
    done = done[done["state"] == "complete"]
    parts = [
        f"<b>{_text(data.name)}</b>: {_text(data.goal)} {_text(data.metric)}; "
        + ", ".join(f"{n} {_text(s)}" for s, n in sorted(counts.items()))
    ]
    if not done.empty:
        best = done.iloc[0]
        params = ", ".join(f"{_text(p)} = {_text(best[f'param_{p}'])}" for p in data.params)
        parts.append(
            f"Best: trial {_text(best['number'])} with {_text(data.metric)} "
            f"<b>{_text(best['value'])}</b> ({params})"
        )
    saving = pruning_saving(data.trials)
    parts.append(_text(saving[:1].upper() + saving[1:] + "."))
    if data.lineage:
        parts.append(_text(data.lineage[:1].upper() + data.lineage[1:] + "."))
    return '<div class="summary">' + "<br>".join(parts) + "</div>"


def _sweep_section(data: SweepData, index: int) -> Iterable[str]:
    yield f"<h2>{_text(data.name)}</h2>"
    yield _summary(data)
    yield "<h3>Trials</h3>" + _table(data)
    yield '<div class="charts">'
    yield _div(plots.learning_curves(data), f"curves-{index}", wide=True)
    yield _div(plots.history(data), f"history-{index}")
    yield _div(plots.importances(data), f"importances-{index}")
    yield _div(plots.parallel_coordinates(data), f"parallel-{index}", wide=True)
    schedule = plots.pbt_schedule(data)
    if schedule is not None:
        yield _div(schedule, f"pbt-{index}", wide=True)
    front = plots.pareto(data)
    if front is not None:
        yield _div(front, f"pareto-{index}", wide=True)
    for j, fig in enumerate(plots.slices(data)):
        yield _div(fig, f"slice-{index}-{j}")
    yield "</div>"


def build_html(
    comparison: Comparison, path: str | Path | None = None, *, compressed: bool = True
) -> str:
    """The whole report as one HTML document; written to ``path`` when given.
    ``compressed=False`` inlines plotly.js as it comes (4.8 MB; what the report benchmark
    compares against).

    Example:
        >>> from reports import build_html
        >>> from sweep import compare
        >>> build_html(compare(["digits-resnet18"]), "report.html")  # doctest: +SKIP
    """
    names = ", ".join(s.name for s in comparison.sweeps)
    body: list[str] = [f"<h1>Sweep report: {_text(names)}</h1>", '<pre id="js-errors"></pre>']
    if len(comparison.sweeps) > 1:
        body.append(
            "<h2>Side by side</h2>" + "".join(_summary(s) + "<br>" for s in comparison.sweeps)
        )
    for i, data in enumerate(comparison.sweeps):
        body.extend(_sweep_section(data, i))
    bundle = ""
    head_scripts = f"<script>{_ERRORS}</script>"
    if compressed:
        packed, size = compressed_plotly()
        bundle = (
            f'<script type="application/octet-stream" id="plotly-bundle" '
            f'data-bytes="{size}">{packed}</script>'
        )
    else:
        head_scripts += f"<script>{plotly_js()}</script>"
    page_body = (
        "\n".join(body) + _template_block() + bundle + f"<script>{loader()}</script>"
        f"<script>{_SORT}</script>"
    )
    policy = content_security_policy(
        head_scripts + page_body, extra=(plotly_js(),) if compressed else ()
    )
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        f"<title>Sweep report: {_text(names)}</title><style>{_STYLE}</style>"
        f"{head_scripts}</head><body>{page_body}</body></html>"
    )
    if path is not None:
        from search_spaces.atomic_files import write_atomic

        write_atomic(Path(path), page)
    return page


# The page's own scripts carry no attributes; data blocks (type=...) never run.
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def content_security_policy(markup: str, extra: Iterable[str] = ()) -> str:
    """Scripts: only the inline ones in ``markup`` and the ``extra`` ones the page's loader
    inserts, by their SHA-256 (no handler attributes, no injected tags, no eval); plotly
    styles its charts inline and draws with data: images."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
        for m in [*_SCRIPT.findall(markup), *extra]
    )
    return (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; worker-src blob:"
    )
