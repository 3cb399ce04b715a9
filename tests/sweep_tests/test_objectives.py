"""Several objectives and constraints: the Pareto front, the pick, what is kept, what is
refused, and the views (status, best, report)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.cli import main
from tests.browser import drew_svg, rendered_dom
from tests.sweep_tests import toy_trainers

ROOT = Path(__file__).resolve().parents[2]
OBJECTIVES = [
    {"primary_metric": "acc", "goal": "maximize"},
    {"primary_metric": "latency_ms", "goal": "minimize"},
]
# x a choice of few values and slow a choice: equal values in several trials (ties).
SPACE = {
    "x": {"type": "choice", "values": [0.1, 0.3, 0.5, 0.7, 0.9]},
    "slow": {"type": "choice", "values": [0.0, 2.0]},
}


def _run(root: Path, **extra) -> Sweep:  # type: ignore[no-untyped-def]
    sweep = Sweep(
        name="mo",
        search_space=SPACE,
        trainer=toy_trainers.tradeoff,
        root=root,
        backend=InProcessBackend(),
        objective=OBJECTIVES,
        constraints=["latency_ms <= 4.5"],
        sampling_algorithm={"type": "nsga2", "seed": 1},
        limits={"max_total_trials": 16},
        **extra,
    )
    sweep.run()
    return sweep


def _dominates(a: list[float], b: list[float]) -> bool:  # acc up, latency down
    return a[0] >= b[0] and a[1] <= b[1] and a != b


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("mo")
    _run(root, keep={"models": 1})
    return root


def test_the_front_is_the_non_dominated_feasible_set_ties_included(swept, capsys):
    assert main(["status", "mo", "--root", str(swept), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["trials"]
    done = [r for r in rows if r["state"] == "complete"]
    assert len(done) == 16 and all(len(r["values"]) == 2 for r in done)
    feasible = [r for r in done if r["values"][1] <= 4.5]
    assert {r["number"] for r in done if r["feasible"]} == {r["number"] for r in feasible}
    expected = {
        r["number"]
        for r in feasible
        if not any(_dominates(o["values"], r["values"]) for o in feasible)
    }
    assert main(["best", "mo", "--root", str(swept), "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    front = {m["trial"] for m in best["pareto_front"]}
    assert front == expected
    assert {r["number"] for r in rows if r.get("pareto")} == expected
    values = [tuple(m["values"]) for m in best["pareto_front"]]
    assert len(values) > len(set(values)), "the seed should give tied front members"


def test_the_pick_meets_the_constraints_and_is_best_on_the_first_objective(swept, capsys):
    assert main(["best", "mo", "--root", str(swept), "--json"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert main(["status", "mo", "--root", str(swept), "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out)["trials"] if r["state"] == "complete"]
    top = max(r["values"][0] for r in rows)
    assert any(r["values"][0] == top and not r["feasible"] for r in rows), (
        "an infeasible trial should be better on the first objective"
    )
    feasible_top = max(r["values"][0] for r in rows if r["feasible"])
    assert best["values"][0] == feasible_top and best["values"][1] <= 4.5
    assert best["trial"] in {m["trial"] for m in best["pareto_front"]}


def test_every_front_member_keeps_its_model_files(swept, capsys):
    assert main(["best", "mo", "--root", str(swept), "--json"]) == 0
    front = {m["trial"] for m in json.loads(capsys.readouterr().out)["pareto_front"]}
    kept = {int(p.parent.parent.name) for p in swept.glob("mo/trials/*/outputs/weights.pt")}
    # keep.models: 1 keeps the pick (on the front itself); the front stays whole.
    assert kept == front


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"compute": "azure:gpu"}, "objective: Azure ML sweep jobs take one objective"),
        (
            {"sampling_algorithm": {"type": "cmaes"}},
            "sampling_algorithm: cmaes takes one objective",
        ),
        (
            {"early_termination": {"type": "median"}},
            "early_termination: median judges one per-epoch value; with several objectives "
            "use one of asha, hyperband, median_stopping, truncation_selection",
        ),
        ({"constraints": ["latency_ms =< 5"]}, "constraints[0]"),
        ({"objective": [OBJECTIVES[0], OBJECTIVES[0]]}, "objective[1].primary_metric"),
    ],
)
def test_validate_refuses_what_several_objectives_cannot_do(tmp_path, change, says):
    doc = {
        "name": "mo",
        "trainer": {"entry": "tests.sweep_tests.toy_trainers:tradeoff"},
        "search_space": SPACE,
        "objective": OBJECTIVES,
        "sampling_algorithm": {"type": "nsga2"},
        **change,
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(doc))
    done = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "validate", "space.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, (
        done.stderr
    )


@pytest.mark.slow
def test_the_report_has_a_pareto_chart_and_a_front_table(swept, tmp_path):
    from reports import build_html
    from reports.plots import pareto
    from reports.terminal import render
    from sweep import compare

    data = compare(["mo"], swept).sweeps[0]
    fig = pareto(data)
    assert fig is not None
    names = [t.name for t in fig.data]
    assert "Pareto front" in names and "breaks a constraint" in names
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert len(front.x) == int(data.trials["pareto"].sum())
    text = render(data)
    assert "Pareto front:" in text and "latency_ms (min)" in text
    page = tmp_path / "report.html"
    build_html(compare(["mo"], swept), page)
    assert drew_svg(rendered_dom(page, tmp_path / "p"), "pareto-0")


@pytest.mark.slow
def test_accuracy_against_latency_with_the_built_in_trainer_and_register_another_member(
    tmp_path, capsys
):
    """The built-in trainer measures each model; the pick is registered as version 1 and
    another front member (or another kept trial) by `sweep register --trial`."""
    root, registry = tmp_path / "sweeps", tmp_path / "models"
    result = Sweep(
        name="pareto",
        root=root,
        backend=InProcessBackend(),
        trainer="trainer",
        trainer_args={
            "data": "digits",
            "batch_size": 64,
            "num_epochs": 1,
            "threads": 1,
            "device": "cpu",
            "learning_rate": 0.05,
            "measure": ["latency_ms", "params_m"],
        },
        search_space={
            # Two trials, each trained and exported once to measure it (MobileNet's export
            # takes twice ResNet-18's); the larger images cost more latency.
            "image_size": {"type": "choice", "values": [16, 24]},
        },
        objective=[
            {"primary_metric": "best_val_acc", "goal": "maximize"},
            {"primary_metric": "latency_ms", "goal": "minimize"},
        ],
        sampling_algorithm="grid",
        limits={"max_total_trials": 2},
        register={"model_name": "pareto", "root": str(registry)},
    ).run()
    assert result.best is not None and result.registered == "pareto:1"
    assert all(len(m.values) == 2 and m.values[1] > 0 for m in result.pareto_front)
    others = [m.number for m in result.pareto_front if m.number != result.best.number] or [
        n
        for n in range(2)
        if n != result.best.number
        and (root / "pareto" / "trials" / f"{n:04d}" / "outputs" / "model.pt").exists()
    ]
    assert main(["register", "pareto", "--trial", str(others[0]), "--root", str(root)]) == 0
    assert "as pareto:2" in capsys.readouterr().out
    card = json.loads((registry / "pareto" / "2" / "card.json").read_text())
    assert card["trial"] == others[0] and [o["primary_metric"] for o in card["objectives"]] == [
        "best_val_acc",
        "latency_ms",
    ]
    assert (registry / "pareto" / "2" / "model.onnx").is_file()
