"""warm_start: earlier sweeps' trials teach the new sweep's sampler, and only the sampler."""

from __future__ import annotations

import pytest
import yaml

from search_spaces import SearchSpaceError
from sweep import Sweep
from sweep.backends import InProcessBackend
from sweep.cli import main
from sweep.errors import SweepInputError
from tests.sweep_tests import toy_trainers

TOY = "tests.sweep_tests.toy_trainers:quadratic"  # peaks at x = 0.3


def _sweep(root, name, *, trials, sampling, warm=None, x=(0.0, 1.0), **settings):
    return Sweep(
        name=name,
        trainer=TOY,
        trainer_args={"num_epochs": 1},
        search_space={"x": {"type": "uniform", "min_value": x[0], "max_value": x[1]}},
        sampling_algorithm=sampling,
        limits={"max_total_trials": trials, "max_concurrent_trials": 1},
        root=root,
        backend=InProcessBackend(),
        **({"warm_start": warm} if warm else {}),
        **settings,
    )


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A finished random sweep of 16 trials: the history."""
    root = tmp_path_factory.mktemp("sweeps")
    result = _sweep(root, "first", trials=16, sampling={"type": "random", "seed": 1}).run()
    xs = [t.params["x"] for t in result.study.get_trials() if t.state.name == "COMPLETE"]
    assert len(xs) == 16
    return root, xs


def test_imported_trials_change_the_next_suggestion_and_count_for_nothing_else(first, capsys):
    root, xs = first
    journal = (root / "first" / "study.journal").read_bytes()
    tpe = {"type": "tpe", "seed": 5}
    cold = _sweep(root, "cold", trials=2, sampling=tpe).run()
    warm_sweep = _sweep(root, "warm", trials=2, sampling=tpe, warm={"from": ["first"]})
    assert warm_sweep.warm_start().taken == {"first": 16}
    warm = warm_sweep.run()
    cold_x = [t.params["x"] for t in cold.study.get_trials()]
    warm_x = [t.params["x"] for t in warm.study.get_trials()]
    # TPE starts with 10 random trials; with 16 imported it models at once, near the peak
    # the first sweep found.
    assert warm_x != cold_x
    nearest = min(abs(x - 0.3) for x in xs)
    assert abs(warm_x[0] - 0.3) < max(0.1, 3 * nearest)
    # The new sweep's own trials only: its budget, its best, its table; the old one unchanged.
    assert len(warm.study.get_trials()) == 2 and warm.best.number in (0, 1)
    assert (root / "first" / "study.journal").read_bytes() == journal
    table = (root / "warm" / "trials.csv").read_text().splitlines()
    assert len(table) == 3
    assert main(["status", "warm", "--root", str(root)]) == 0
    shown = capsys.readouterr().out
    assert "warm-started from first" in shown and len(shown.splitlines()) == 4
    # The report lists the sweep's own two trials and says where the rest came from.
    assert main(["report", "warm", "--root", str(root)]) == 0
    report = capsys.readouterr().out
    assert "warm-started from first: their trials taught the sampler" in report
    assert "Warm-started from first" in (root / "warm" / "report.html").read_text()


@pytest.mark.slow  # `sweep run` on the command line starts a local Ray
def test_a_narrowed_space_skips_and_counts_the_trials_outside_it(first, capsys):
    root, xs = first
    spec = {
        "name": "narrow",
        "trainer": {"entry": TOY, "args": {"num_epochs": 1}},
        "search_space": {"x": {"type": "uniform", "min_value": 0.0, "max_value": 0.5}},
        "sampling_algorithm": {"type": "bayesian", "seed": 2},
        "limits": {"max_total_trials": 1},
        "warm_start": {"from": "first", "trials": "all"},
    }
    (root / "narrow.yaml").write_text(yaml.safe_dump(spec))
    assert main(["run", str(root / "narrow.yaml"), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    outside = sum(x > 0.5 for x in xs)
    assert outside > 0
    assert (
        f"warm start: {16 - outside} trials ({16 - outside} from first), "
        f"{outside} skipped: x out of the new space ({outside})" in out
    )
    # Written to sweep.yaml as given, so that resume warm-starts the same way.
    saved = yaml.safe_load((root / "narrow" / "sweep.yaml").read_text())
    assert saved["warm_start"] == {"from": ["first"], "trials": "all"}


def test_best_k_takes_each_sweep_s_best_only(first):
    root, xs = first
    sweep = _sweep(
        root,
        "bestk",
        trials=1,
        sampling={"type": "tpe"},
        warm={"from": ["first"], "trials": "best:3"},
    )
    history = sweep.warm_start()
    nearest = sorted(xs, key=lambda x: abs(x - 0.3))[:3]
    assert sorted(t.params["x"] for t in history.trials) == sorted(nearest)
    assert all(t.number < 0 for t in history.trials)
    assert {t.user_attrs["imported_from"].split("#")[0] for t in history.trials} == {"first"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sampling_algorithm": {"type": "random"}}, "random sampling learns nothing"),
        ({"sampling_algorithm": {"type": "grid"}}, "grid sampling learns nothing"),
        ({"sampling_algorithm": {"type": "cmaes"}}, "keeps its own generations"),
        ({"warm_start": {"from": ["first"], "trials": "best:0"}}, "warm_start.trials"),
        ({"warm_start": {"from": ["../etc"]}}, "warm_start.from[0]"),
        ({"warm_start": {"from": ["first"], "when": 1}}, "warm_start"),
    ],
)
def test_a_warm_start_the_file_cannot_have_is_refused_in_one_sentence(tmp_path, settings, message):
    space = {"x": {"type": "choice", "values": [0.1, 0.3]}}
    data = {"warm_start": {"from": ["first"]}, "sampling_algorithm": {"type": "tpe"}, **settings}
    with pytest.raises(SearchSpaceError, match=message.replace("[", r"\[")):
        Sweep(name="refused", trainer=TOY, search_space=space, root=tmp_path, **data)


def test_an_earlier_sweep_that_is_missing_or_tuned_for_something_else_is_refused_before_start(
    first,
):
    root, _ = first
    for warm, message in (
        ({"from": ["nowhere"]}, "no sweep named 'nowhere'"),
        ({"from": ["self"]}, "names this sweep itself"),
    ):
        with pytest.raises(SweepInputError, match=message):
            _sweep(root, "self", trials=1, sampling={"type": "tpe"}, warm=warm).run()
        assert not (root / "self").exists()
    other = _sweep(
        root,
        "other",
        trials=1,
        sampling={"type": "tpe"},
        warm={"from": ["first"]},
        objective={"primary_metric": "val_acc", "goal": "minimize"},
    )
    with pytest.raises(SweepInputError, match="tuned for maximize best_val_acc"):
        other.run()
    assert not (root / "other").exists()


def test_an_earlier_sweep_whose_file_is_damaged_is_named(first, tmp_path):
    root, _ = first
    (root / "broken").mkdir()
    (root / "broken" / "sweep.yaml").write_text("search_space: [unclosed\n")
    sweep = _sweep(root, "after", trials=1, sampling={"type": "tpe"}, warm={"from": ["broken"]})
    with pytest.raises(SweepInputError, match=r"warm_start.from: .*broken/sweep.yaml does not"):
        sweep.run()
    assert not (root / "after").exists()


def test_validate_reads_the_earlier_sweeps_as_run_would(first, capsys):
    root, xs = first
    spec = {
        "name": "checked",
        "trainer": {"entry": TOY},
        "search_space": {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
        "sampling_algorithm": "gp",
        "warm_start": {"from": ["first"]},
    }
    (root / "checked.yaml").write_text(yaml.safe_dump(spec))
    assert main(["validate", str(root / "checked.yaml"), "--root", str(root)]) == 0
    assert "warm start: 16 trials (16 from first)" in capsys.readouterr().out
    spec["warm_start"] = {"from": ["missing"]}
    (root / "checked.yaml").write_text(yaml.safe_dump(spec))
    assert main(["validate", str(root / "checked.yaml"), "--root", str(root)]) == 2
    assert "warm_start.from: no sweep named 'missing'" in capsys.readouterr().err
    spec["warm_start"] = {"from": ["first"]}
    spec["compute"] = "azure:cpu-cluster"
    spec["sampling_algorithm"] = "bayesian"
    (root / "checked.yaml").write_text(yaml.safe_dump(spec))
    assert main(["validate", str(root / "checked.yaml"), "--root", str(root)]) == 2
    assert "Azure ML samples" in capsys.readouterr().err
    assert not (root / "checked").exists()


def test_from_auto_finds_only_the_same_trainer_s_sweeps_with_the_same_objective(tmp_path, capsys):
    random = {"type": "random", "seed": 3}
    _sweep(tmp_path, "same", trials=3, sampling=random).run()
    Sweep(
        name="other-args",
        trainer=TOY,
        trainer_args={"num_epochs": 2},
        search_space={"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
        sampling_algorithm=random,
        limits={"max_total_trials": 2},
        root=tmp_path,
        backend=InProcessBackend(),
    ).run()
    _sweep(
        tmp_path,
        "other-goal",
        trials=2,
        sampling=random,
        objective={"primary_metric": "val_acc", "goal": "maximize"},
    ).run()
    auto = _sweep(tmp_path, "next", trials=1, sampling={"type": "tpe"}, warm={"from": "auto"})
    assert auto.warm_start().taken == {"same": 3}
    auto.run()
    assert main(["ls", "--root", str(tmp_path)]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert listed["next"].endswith("(warm-started from auto)")
    assert "warm-started" not in listed["same"]
    alone = _sweep(
        tmp_path / "empty", "first-ever", trials=1, sampling={"type": "tpe"}, warm={"from": "auto"}
    )
    assert alone.warm_start().summary() == (
        "warm start: no earlier sweep of this trainer and objective found"
    )
    with pytest.raises(SearchSpaceError, match="give auto alone"):
        _sweep(
            tmp_path, "mixed", trials=1, sampling={"type": "tpe"}, warm={"from": ["auto", "same"]}
        )


def test_the_forecast_calibrates_its_margin_on_the_earlier_curves_from_the_first_trial(tmp_path):
    """With ``min_history: 3`` the forecast stops nothing until three of the sweep's own
    trials completed; warm-started, the earlier sweep's curves stand in for the margin (the
    best to beat stays the sweep's own), so it stops a trial before that."""
    crossing = toy_trainers.crossing_sweep(tmp_path)
    Sweep(
        name="before",
        sampling_algorithm={"type": "random", "seed": 3},
        limits={"max_total_trials": 8, "max_concurrent_trials": 1},
        **crossing,
    ).run()
    forecast = {"type": "forecast", "risk": 0.2, "min_epochs": 2, "min_history": 3}

    def first_prune(warm):  # type: ignore[no-untyped-def]
        result = Sweep(
            name="warm" if warm else "cold",
            sampling_algorithm={"type": "tpe", "seed": 2},
            early_termination=forecast,
            limits={"max_total_trials": 3, "max_concurrent_trials": 1},
            **({"warm_start": {"from": ["before"]}} if warm else {}),
            **crossing,
        ).run()
        states = [t.state.name for t in result.study.get_trials()]
        return states.index("PRUNED") if "PRUNED" in states else None

    assert first_prune(warm=False) is None  # 3 trials: never 3 completed before one runs
    assert first_prune(warm=True) in (1, 2)


def test_the_plan_says_the_forecast_learns_from_the_earlier_curves(first, capsys):
    root, _ = first
    settings = {"early_termination": {"type": "forecast"}, "warm_start": {"from": ["first"]}}
    spec = yaml.safe_dump(
        {
            "name": "planned",
            "trainer": {"entry": TOY, "args": {"num_epochs": 1}},
            "search_space": {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
            "sampling_algorithm": {"type": "tpe"},
            **settings,
        }
    )
    path = root / "planned.yaml"
    path.write_text(spec)
    assert main(["run", str(path), "--dry-run", "--root", str(root)]) == 0
    plan = capsys.readouterr().out
    assert (
        "calibrate the forecast's margin" in plan
        and "forecast judges trials from epoch 1" in plan
        and "the 5 of them most like each new trial bound where it ends" in plan
    )
    settings["early_termination"] = {"type": "forecast", "min_epochs": 3}
    path.write_text(yaml.safe_dump({**yaml.safe_load(spec), **settings}))
    assert main(["run", str(path), "--dry-run", "--root", str(root)]) == 0
    assert "from epoch 1" not in capsys.readouterr().out
    # Promotion judges at its rungs, with the same calibrated forecast.
    settings["early_termination"] = {"type": "forecast", "mode": "promotion"}
    path.write_text(yaml.safe_dump({**yaml.safe_load(spec), **settings}))
    assert main(["run", str(path), "--dry-run", "--root", str(root)]) == 0
    plan = capsys.readouterr().out
    assert "calibrate the forecast's margin" in plan and "from epoch 1" not in plan


def test_the_new_sweep_s_constraints_are_judged_afresh_on_the_old_trials_results(first):
    """The first sweep had no constraints; this one demands val_acc >= 0.95, which holds
    only within 0.2236 of the peak: each old trial's recorded result says whether it meets
    it, and TPE sees the violations (its constrained model avoids the broken region)."""
    root, xs = first
    demand = {"constraints": ["val_acc >= 0.95"]}
    strict = _sweep(
        root,
        "strict",
        trials=2,
        sampling={"type": "tpe", "seed": 4},
        warm={"from": ["first"]},
        **demand,
    )
    history = strict.warm_start()
    assert len(history.trials) == 16 and not history.skipped
    for trial in history.trials:
        broken = trial.constraints["val_acc >= 0.95"] > 0
        assert broken == (abs(trial.params["x"] - 0.3) > 0.2236), trial.params
    # TPE's constrained model reads the imported violations as it reads the sweep's own.
    ran = strict.run()
    assert [t.state.name for t in ran.study.get_trials()] == ["COMPLETE", "COMPLETE"]
    # best:K takes the feasible ones first, whatever the old sweep's order.
    feasible = sum(abs(x - 0.3) <= 0.2236 for x in xs)
    best = _sweep(
        root,
        "strict3",
        trials=1,
        sampling={"type": "tpe"},
        warm={"from": ["first"], "trials": f"best:{feasible + 1}"},
        **demand,
    ).warm_start()
    assert sum(t.constraints["val_acc >= 0.95"] <= 0 for t in best.trials) == feasible
    # A constraint on a metric the old trials never recorded: nothing can be judged.
    none = _sweep(
        root,
        "latency",
        trials=1,
        sampling={"type": "tpe"},
        warm={"from": ["first"]},
        constraints=["latency_ms <= 5"],
    ).warm_start()
    assert none.trials == [] and none.skipped == {"latency_ms not recorded": 16}
    assert "16 skipped: latency_ms not recorded (16)" in none.summary()


def test_validate_hints_at_warm_start_where_a_forecast_could_learn_from_earlier_sweeps(
    first, capsys
):
    root, _ = first
    spec = {
        "name": "next",
        "trainer": {"entry": TOY, "args": {"num_epochs": 1}},
        "search_space": {"x": {"type": "uniform", "min_value": 0.0, "max_value": 1.0}},
        "sampling_algorithm": {"type": "tpe"},
        "early_termination": {"type": "forecast"},
    }
    path = root / "next.yaml"

    def said(**changes):  # type: ignore[no-untyped-def]
        path.write_text(yaml.safe_dump({**spec, **changes}))
        assert main(["validate", str(path), "--root", str(root)]) == 0
        return capsys.readouterr().out

    # The module's other tests leave more sweeps of this trainer under the same root.
    hint = next(line for line in said().splitlines() if line.startswith("hint: "))
    assert "of this trainer and objective here (" in hint and "first" in hint
    assert "warm_start: {from: auto}" in hint
    assert main(["run", str(path), "--dry-run", "--root", str(root)]) == 0
    assert hint in capsys.readouterr().out
    # Nothing to say: warm-started already, a sampler that cannot take it, another
    # policy, another trainer's arguments.
    assert "{from: auto}" not in said(warm_start={"from": ["first"]})
    assert "{from: auto}" not in said(sampling_algorithm={"type": "random"})
    assert "{from: auto}" not in said(early_termination={"type": "median_stopping"})
    assert "{from: auto}" not in said(trainer={"entry": TOY, "args": {"num_epochs": 2}})
