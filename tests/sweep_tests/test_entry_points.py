"""What starting the tool costs and says: light imports, a resume with nothing to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from search_spaces import EarlyTermination
from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.cli import main
from sweep.errors import SweepInputError
from sweep.scheduling.pruners import make_pruner

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("optuna", "pandas", "torch", "ray", "plotly")


@pytest.mark.parametrize(
    "code",
    [
        "import sweep",
        "from sweep.cli import build_parser; build_parser()",
        "from sweep.cli import main; main(['validate', "
        "'search_spaces/examples/azure_job/job.yml'])",
    ],
)
def test_entry_points_import_nothing_heavy(code):
    probe = (
        f"{code}\nimport sys\nprint('LOADED:' + ' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[-1] == "LOADED:", out[-1]


def test_resume_of_a_finished_sweep_says_so_and_runs_nothing(tmp_path, capsys):
    Sweep(
        name="done",
        trainer="tests.sweep_tests.toy_trainers:quadratic",
        search_space={"x": {"type": "choice", "values": [0.1, 0.3]}},
        limits={"max_total_trials": 2},
        root=tmp_path,
        backend=InProcessBackend(),
    ).run()
    journal = (tmp_path / "done" / "study.journal").read_bytes()
    assert main(["resume", "done", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sweep done is finished: its 2 trials ran, nothing to resume")
    assert (tmp_path / "done" / "study.journal").read_bytes() == journal
    assert Sweep.load("done", root=tmp_path).trials_left(3) == 1


def test_an_unknown_policy_type_is_an_error_not_a_silent_no_op():
    with pytest.raises(SweepInputError, match="early_termination.type: 'sometimes'"):
        make_pruner(EarlyTermination("sometimes"))


def test_no_import_cycles_between_or_inside_packages():
    from tests.import_graph import cycles, group_graph, module_graph, package_graph

    graph = module_graph(ROOT)
    assert len(graph) > 80  # the checker read the project
    assert cycles(graph) == []
    assert cycles(package_graph(graph)) == []  # reports never reaches back into sweep
    groups = group_graph(graph)
    assert {"sweep.records", "sweep.scheduling", "sweep.coordination"} <= set(groups)
    assert cycles(groups) == []  # sweep's groups are layered


def test_the_readme_pictures_the_house_as_it_is():
    from tests.import_graph import mermaid, module_graph

    assert mermaid(module_graph(ROOT)) in (ROOT / "README.md").read_text()


def test_the_import_checker_finds_a_cycle_of_modules_and_of_packages(tmp_path):
    from tests.import_graph import cycles, group_graph, module_graph, package_graph

    for pkg in ("sweep", "reports"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "sweep" / "a.py").write_text("from reports.b import g\n")
    (tmp_path / "reports" / "b.py").write_text("def g():\n    from sweep.a import f\n")
    graph = module_graph(tmp_path, ("sweep", "reports"))
    assert cycles(graph) == [["reports.b", "sweep.a"]]
    assert cycles(package_graph(graph)) == [["reports", "sweep"]]
    # Two groups of one package that use each other, with no module cycle between them.
    for group, text in (("low", "from sweep.high.c import h\n"), ("high", "")):
        (tmp_path / "sweep" / group).mkdir()
        (tmp_path / "sweep" / group / "__init__.py").write_text("")
        (tmp_path / "sweep" / group / "m.py").write_text(text)
    (tmp_path / "sweep" / "high" / "c.py").write_text("from sweep.low.d import k\n")
    (tmp_path / "sweep" / "low" / "d.py").write_text("")
    graph = module_graph(tmp_path, ("sweep",))
    assert cycles(graph) == []
    assert cycles(group_graph(graph)) == [["sweep.high", "sweep.low"]]


def test_a_library_run_prints_nothing_and_logs_its_progress(tmp_path, capfd, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        Sweep(
            name="quiet",
            trainer="tests.sweep_tests.toy_trainers:quadratic",
            search_space={"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
            limits={"max_total_trials": 2},
            root=tmp_path,
            backend=InProcessBackend(),
        ).run()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    progress = [
        r.getMessage() for r in caplog.records if r.name == "sweep.coordination.coordinator"
    ]
    assert any(m.startswith("trial 0 started: x=") for m in progress)
    assert any(m.startswith("trial 1 complete with ") for m in progress)


def test_register_with_a_trainer_that_saves_no_model_says_so(tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="sweep.api"):
        result = Sweep(
            name="nomodel",
            trainer="tests.sweep_tests.toy_trainers:quadratic",
            search_space={"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
            limits={"max_total_trials": 1},
            root=tmp_path,
            register={"model_name": "m", "root": str(tmp_path / "models")},
            backend=InProcessBackend(),
        ).run()
    assert result.registered is None
    assert "register: nothing registered as m" in caplog.text


@pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"], ["run"]])
def test_validate_dry_run_and_run_refuse_the_same_file(tmp_path, monkeypatch, capsys, command):
    """One set of checks: a file whose every trial would fail (ImageNet weights that are not
    in the local cache) is refused by all three, with the same sentence, before anything."""
    import yaml

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    (tmp_path / "space.yaml").write_text(
        yaml.safe_dump(
            {
                "trainer": {"args": {"data": "digits", "weights": "imagenet"}},
                "search_space": {
                    "learning_rate": {"type": "uniform", "min_value": 0.01, "max_value": 0.1}
                },
            }
        )
    )
    code = main(
        [command[0], str(tmp_path / "space.yaml"), *command[1:], "--root", str(tmp_path / "sweeps")]
        if command[0] == "run"
        else [command[0], str(tmp_path / "space.yaml")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert (
        "trainer.args.weights: ImageNet weights for resnet18 are not in torchvision's "
        "local cache" in err
    )
    assert not (tmp_path / "sweeps").exists()
