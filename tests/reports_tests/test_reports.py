"""Reports from a real sweep: frames, the terminal table, the HTML file in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from reports import build_html
from reports.terminal import render
from sweep import Sweep, compare
from sweep.backends import InProcessBackend
from sweep.cli import main
from tests.browser import drew_svg, rendered_dom
from tests.sweep_tests import toy_trainers

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps")
    common = {
        "search_space": {
            "x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0},
            "opt": {"type": "choice", "values": ["sgd", "adamw"]},
        },
        "trainer": toy_trainers.failing,
        "root": root,
        "trainer_args": {"num_epochs": 4},
        "early_termination": {"type": "bandit", "slack_amount": 0.02},
        "limits": {"max_total_trials": 10, "max_concurrent_trials": 1},
    }
    for name, seed in (("alpha", 0), ("beta", 1)):
        Sweep(
            name=name,
            backend=InProcessBackend(),
            sampling_algorithm={"type": "random", "seed": seed},
            **common,
        ).run()
    return root


def test_frames_have_one_row_per_trial_and_one_per_epoch(sweeps):
    comparison = compare(["alpha", "beta"], sweeps)
    trials = comparison.trials
    assert len(trials) == 20 and set(trials["sweep"]) == {"alpha", "beta"}
    assert {
        "number",
        "state",
        "value",
        "param_x",
        "param_opt",
        "epochs_run",
        "epochs_asked",
        "reason",
        "start",
        "duration_s",
    } <= set(trials.columns)
    assert set(trials["state"]) == {"complete", "pruned", "failed"}
    curves = comparison.curves
    per_trial = curves.groupby(["sweep", "trial"]).size()
    ran = trials[trials["state"] != "failed"].set_index(["sweep", "number"])["epochs_run"]
    assert (per_trial.loc[ran.index] == ran).all()
    assert {"epoch", "val_acc", "best_val_acc"} <= set(curves.columns)


def test_terminal_table_is_ranked_and_fits_100_columns(sweeps):
    data = compare(["alpha"], sweeps).sweeps[0]
    text = render(data)
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert "\033[" not in text
    rows = [line for line in lines if re.match(r"\s+\d+\s+\d+ complete", line)]
    values = [float(r.split()[3]) for r in rows]
    assert values == sorted(values, reverse=True) and values
    assert "pruning saved" in text and "best: trial" in text


def test_report_cli_writes_csv_json_and_html(sweeps, tmp_path, capsys):
    args = [
        "report",
        "alpha",
        "beta",
        "--root",
        str(sweeps),
        "--csv",
        str(tmp_path / "t.csv"),
        "--json",
        str(tmp_path / "t.json"),
        "--html",
        str(tmp_path / "r.html"),
    ]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "t.csv").read_text().startswith("sweep,number,state")
    payload = json.loads((tmp_path / "t.json").read_text())
    assert len(payload["trials"]) == 20 and payload["curves"]
    assert main(["report", "alpha", "--root", str(sweeps)]) == 0
    assert "sweep alpha: maximize best_val_acc" in capsys.readouterr().out


def test_html_is_self_contained(sweeps, tmp_path):
    page = build_html(compare(["alpha", "beta"], sweeps), tmp_path / "r.html")
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']https?://", page)
    assert "Side by side" in page and "pruned at epoch" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_html_renders_every_chart_in_headless_chromium(sweeps, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    path = tmp_path / "report.html"
    build_html(compare(["alpha"], sweeps), path)
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'p'}",
        "--virtual-time-budget=15000",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=180
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    chart_ids = re.findall(
        r'<div id="((?:curves|history|importances|parallel|slice)-[\d-]+)"', html
    )
    assert len(chart_ids) >= 6
    for chart in chart_ids:
        start = html.index(f'id="{chart}"')
        assert 'class="main-svg"' in html[start : start + 20000], f"{chart} drew no SVG"
    errors = re.search(r'<pre id="js-errors">(.*?)</pre>', html, re.S)
    assert errors is not None and errors.group(1).strip() == ""
    assert not [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1280,2400", path.as_uri()],
        capture_output=True,
        timeout=180,
    )
    assert shot.is_file() and shot.stat().st_size > 10_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_optuna_dashboard_serves_the_sweep_storage(sweeps):
    port = _free_port()
    exe = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen(
        [
            str(exe),
            str(sweeps / "alpha" / "study.journal"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        summaries = None
        for _ in range(60):
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/studies", timeout=2
                ) as response:
                    summaries = json.load(response)["study_summaries"]
                break
            except OSError:
                time.sleep(0.5)
        assert summaries is not None, "the dashboard did not start"
        (study,) = summaries
        assert study["study_name"] == "alpha"
        url = f"http://127.0.0.1:{port}/api/studies/{study['study_id']}?after=0"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert len(json.load(response)["trials"]) == 10
    finally:
        proc.terminate()
        proc.wait(10)


def test_charts_read_as_a_person_expects(sweeps):
    from reports import plots

    data = compare(["alpha"], sweeps).sweeps[0]
    curves = plots.learning_curves(data)
    lines = [t for t in curves.data if t.mode == "lines+markers"]
    assert len({t.line.color for t in lines}) == min(len(lines), len(plots.TRIAL_COLOURS))
    assert curves.layout.xaxis.dtick == 1 and curves.layout.xaxis.tick0 == 1  # whole epochs
    pruned = [t for t in lines if "(pruned)" in t.name]
    assert pruned and all(t.line.dash == "dot" for t in pruned)
    import pandas as pd

    assert plots.few_whole_values(pd.Series([3, 5, 3, 5])) == [3, 5]
    assert plots.few_whole_values(pd.Series([0.1, 0.25])) is None


@pytest.mark.slow
def test_report_runs_no_script_a_user_put_in_any_field(tmp_path):
    """Payloads in parameter names and values, the metric name and failure messages: the page
    shows them as text; and a payload that got past escaping is still blocked by the CSP."""
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    xss = toy_trainers.XSS
    Sweep(
        name="hostile",
        backend=InProcessBackend(),
        trainer=toy_trainers.hostile,
        root=tmp_path,
        objective={"primary_metric": xss, "goal": "maximize"},
        search_space={
            "x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0},
            xss: {"type": "choice", "values": [xss, toy_trainers.XSS_SCRIPT]},
        },
        sampling_algorithm={"type": "random", "seed": 3},
        limits={"max_total_trials": 8, "max_concurrent_trials": 1},
    ).run()
    page = (tmp_path / "hostile" / "report.html").read_text()
    assert 'http-equiv="Content-Security-Policy"' in page
    # The second layer on its own: a raw payload, as if escaping had missed one field.
    leaked = tmp_path / "leaked.html"
    leaked.write_text(page.replace("<h3>Trials</h3>", f"<h3>Trials</h3>{xss}"))
    for path, raw_tags in ((tmp_path / "hostile" / "report.html", 0), (leaked, 1)):
        dom, log = _dump_dom(browser, path, tmp_path)
        # The page's own scripts all pass its policy; only the planted payload is refused.
        assert ("Content Security Policy" in log) == bool(raw_tags), log[-2000:]
        body = re.search(r"<body[^>]*>", dom)
        assert body is not None and "pwned" not in body.group(0), f"script ran in {path.name}"
        assert dom.count("<img") == raw_tags
        assert dom.count('class="main-svg"') >= 6, "the CSP stopped the charts"


def _dump_dom(browser: str, path: Path, tmp_path: Path) -> tuple[str, str]:
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=15000",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=180
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout, dom.stderr


def test_what_pruning_saved_is_true_when_trials_do_not_say_what_they_asked():
    import pandas as pd

    from reports.frames import pruning_saving

    unknown = pd.DataFrame(
        {
            "state": ["complete", "complete", "pruned", "pruned"],
            "epochs_run": [4, 4, 1, 2],
            "epochs_asked": [None] * 4,
        }
    )
    assert pruning_saving(unknown) == (
        "2 pruned trials ran 3 epochs; against the completed "
        "trials' 4 epochs each, pruning saved about 5 (an "
        "estimate)"
    )
    known = unknown.assign(epochs_asked=[4, 4, 4, 4])
    assert pruning_saving(known) == "pruning saved 5 of 16 epochs asked (31%)"
    assert pruning_saving(unknown[unknown.state == "complete"]) == "nothing was pruned"


def test_the_live_view_shows_a_job_files_planned_epochs():
    from search_spaces import example_path, read_sweep_file
    from sweep.scheduling.verdicts import fixed_epochs

    job = read_sweep_file(example_path("digits").parent / "azure_job" / "job.yml")
    assert fixed_epochs(job) == 4  # its inputs.num_epochs
    digits = read_sweep_file(example_path("digits"))
    assert fixed_epochs(digits) is None  # num_epochs is in its search space


@pytest.mark.slow
def test_report_is_under_2_mb_and_draws_every_chart_without_webgl(sweeps, tmp_path):
    """plotly.js travels compressed; every chart is SVG, so a browser without WebGL (here:
    Chromium with its 3D APIs off) draws them all."""
    import json as _json

    path = tmp_path / "report.html"
    page = build_html(compare(["alpha", "beta"], sweeps), path)
    assert path.stat().st_size < 2_000_000
    figures = re.findall(
        r'<script type="application/json" id="[^"]+-figure">(.*?)</script>', page, re.S
    )
    assert len(figures) >= 8
    for figure in figures:
        kinds = {trace.get("type", "scatter") for trace in _json.loads(figure)["data"]}
        assert not [k for k in kinds if k == "parcoords" or k.endswith("gl")], kinds
    dom = rendered_dom(path, tmp_path / "p", "--disable-3d-apis", "--disable-webgl")
    ids = re.findall(r'<div id="([\w-]+)" data-figure=', dom)
    assert len(ids) == len(figures)
    for chart in ids:
        assert drew_svg(dom, chart), f"{chart} drew no SVG"
    assert "WebGL" not in re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    assert re.search(r'<pre id="js-errors">\s*</pre>', dom)


def test_the_compressed_bundle_is_plotly_js_byte_for_byte():
    import gzip

    from reports.bundle import ALPHABET, compressed_plotly, encode85, plotly_js

    def decode85(text: str, size: int) -> bytes:  # what the page's loader does
        out = bytearray()
        for i in range(0, len(text), 5):
            value = 0
            for letter in text[i : i + 5]:
                value = value * 85 + ALPHABET.index(letter)
            out += value.to_bytes(4, "big")
        return bytes(out[:size])

    assert len(set(ALPHABET)) == 85 and not set(ALPHABET) & set("<&\\\"'` ")
    assert decode85(encode85(b"\x00\xff\x10abc"), 6) == b"\x00\xff\x10abc"
    packed, size = compressed_plotly()
    assert gzip.decompress(decode85(packed, size)).decode() == plotly_js()
