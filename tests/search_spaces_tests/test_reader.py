from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces import (
    SearchSpaceError,
    SearchSpaceWarning,
    example_path,
    parse_sweep,
    read_sweep_file,
    to_dict,
)
from sweep.cli import main

GOOD = """\
name: ok
search_space:
  learning_rate: {type: loguniform, min_value: -9.2, max_value: -2.3}
  momentum: {type: uniform, min_value: 0.5, max_value: 0.99}
"""

# (file text, the key path the message must name). Each is one mistake a user makes.
MALFORMED = [
    (
        "search_space:\n  m: {type: uniform, min_value: 0.99, max_value: 0.5}\n",
        "search_space.m: min_value 0.99 is greater than max_value 0.5",
    ),
    ("search_space:\n  m: {type: uniform, min_value: 1, max_value: 1}\n", "search_space.m"),
    ("search_space: {}\n", "search_space: is empty"),
    ("name: x\n", "search_space: is required"),
    ("search_space:\n  m: {type: gaussian, mu: 0, sigma: 1}\n", "search_space.m.type"),
    ("search_space:\n  m: {type: uniform, min_value: 0}\n", "search_space.m.max_value"),
    (
        "search_space:\n  m: {type: uniform, min_value: a, max_value: 1}\n",
        "search_space.m.min_value",
    ),
    ("search_space:\n  m: {type: uniform, min: 0, max: 1}\n", "search_space.m.max"),
    ("search_space:\n  m: {type: choice, values: []}\n", "search_space.m.values"),
    ("search_space:\n  m: {type: choice, values: 3}\n", "search_space.m.values"),
    ("search_space:\n  m: {type: randint, upper: 0}\n", "search_space.m.upper"),
    (
        "search_space:\n  m: {type: quniform, min_value: 0, max_value: 1, q: 0}\n",
        "search_space.m.q",
    ),
    ("search_space:\n  m: {type: normal, mu: 0, sigma: -1}\n", "search_space.m.sigma"),
    ("search_space:\n  m: {type: float, low: 0, high: 1, log: true}\n", "search_space.m.low"),
    (
        "search_space:\n  m: {type: float, low: 0.1, high: 1, log: true, step: 0.1}\n",
        "search_space.m.step",
    ),
    ("search_space:\n  m: {type: int, low: 5, high: 1}\n", "search_space.m: low 5"),
    ("search_space:\n  m: {type: int, low: 1.5, high: 3}\n", "search_space.m.low"),
    ("search_space:\n  m: [1, 2]\n", "search_space.m: expected a mapping"),
    (
        "search_space:\n  m: {type: uniform, min_value: 0, max_value: 1}\n"
        "sampling_algorithm: grid\n",
        "search_space.m: grid sampling needs choice",
    ),
    (GOOD + "sampling_algorithm: annealing\n", "sampling_algorithm"),
    (GOOD + "sampling_algorithm: {type: random, seed: 1.5}\n", "sampling_algorithm.seed"),
    (GOOD + "early_termination: {type: bandit}\n", "early_termination: bandit needs"),
    (
        GOOD + "early_termination: {type: bandit, slack_factor: 0.1, slack_amount: 0.2}\n",
        "early_termination",
    ),
    (
        GOOD + "early_termination: {type: truncation_selection, truncation_percentage: 120}\n",
        "early_termination.truncation_percentage",
    ),
    (
        GOOD + "early_termination: {type: bandit, slack_factor: 0.1, evaluation_interval: -1}\n",
        "early_termination.evaluation_interval",
    ),
    (GOOD + "limits: {max_total_trials: 0}\n", "limits.max_total_trials"),
    (GOOD + "limits: {max_trials: 3}\n", "limits.max_trials: unknown key"),
    (GOOD + "limits: {timeout: -5}\n", "limits.timeout"),
    (GOOD + "objective: {primary_metric: acc, goal: up}\n", "objective.goal"),
    (GOOD + "resources: {gpus_per_trial: 1.5}\n", "resources.gpus_per_trial"),
    (GOOD + "resources: {cpus_per_trial: 0}\n", "resources.cpus_per_trial"),
    (GOOD + "resources: {distribution: mpi}\n", "resources.distribution"),
    (GOOD + "compute: kubernetes\n", "compute"),
    (GOOD + "storage: somewhere\n", "storage"),
    (GOOD + "register: {model_name: ../../etc}\n", "register.model_name"),
    (GOOD.replace("name: ok", "name: a/b"), "name"),
    (GOOD + "trainer: {args: {data: no_such_folder}}\n", "trainer.args.data"),
    (GOOD + "trainer: {entry: 'rm -rf /'}\n", "trainer.entry"),
    (GOOD + "trainer: {args: {momentum: 0.9}}\n", "search_space.momentum: is also fixed"),
    (GOOD + "colour: blue\n", "colour: unknown key"),
    (
        GOOD + "compute: azure:gpu-cluster\nsampling_algorithm: bayesian\n",
        "search_space.learning_rate: Azure ML's bayesian sampling accepts only",
    ),
    ("search_space: [\n", ":2: YAML syntax error"),
    ("- a\n- b\n", "expected a mapping at the top"),
    ("", "is empty"),
]


@pytest.mark.parametrize("text, expected", MALFORMED, ids=[m[1][:40] for m in MALFORMED])
def test_malformed_file_is_one_sentence_and_exit_2(tmp_path, capsys, text, expected):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    before = sorted(tmp_path.rglob("*"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err
    # One line per problem, each a sentence of its own.
    assert all(line.startswith("sweep: error: ") for line in err.strip().splitlines())
    assert sorted(tmp_path.rglob("*")) == before


def test_every_problem_of_a_file_is_reported_at_once(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text(
        "search_space:\n"
        "  lr: {type: uniform, min_value: 1, max_value: 0}\n"
        "  m: {type: choice, values: []}\n"
        "objective: {primary_metric: acc, goal: up}\n"
        "limits: {max_total_trials: 0, max_trials: 3}\n"
        "colour: blue\nshape: round\n"
    )
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    for where in (
        "search_space.lr",
        "search_space.m.values",
        "objective.goal",
        "limits.max_trials",
        "colour",
        "shape",
    ):
        assert any(line.startswith(f"sweep: error: {where}") for line in lines), (where, lines)


def test_there_are_at_least_25_malformed_cases():
    assert len(MALFORMED) >= 25


def test_binary_file_is_refused(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    assert main(["validate", str(path)]) == 2
    assert "binary" in capsys.readouterr().err


def test_python_tags_execute_nothing(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "space.yaml"
    path.write_text(f"search_space: !!python/object/apply:os.system ['touch {marker}']\n")
    assert main(["validate", str(path)]) == 2
    assert not marker.exists()
    # safe_load refuses the tag itself, and the message names the file and line.
    assert f"{path}:1:" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("search_space: {}\n")
    with pytest.raises(SearchSpaceError):
        main(["--debug", "validate", str(path)])


def test_loguniform_bounds_that_look_like_values_warn(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("search_space:\n  lr: {type: loguniform, min_value: 0.0001, max_value: 0.1}\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_sweep_file(path)
    messages = [str(w.message) for w in caught if w.category is SearchSpaceWarning]
    assert messages and "min_value: -9.21" in messages[0]


def test_shipped_examples_are_valid(tmp_path):
    (tmp_path / "fowl_data" / "train").mkdir(parents=True)
    (tmp_path / "fowl_data" / "val").mkdir()
    digits = read_sweep_file(example_path("digits"))
    assert digits.trainer.args["data"] == "digits"
    fowl_text = example_path("fowl").read_text()
    (tmp_path / "fowl.yaml").write_text(fowl_text)
    fowl = read_sweep_file(tmp_path / "fowl.yaml")
    assert set(fowl.search_space) == {"learning_rate", "momentum", "num_epochs"}
    assert fowl.early_termination.type == "bandit"


def test_defaults_are_filled():
    config = parse_sweep({"search_space": {"x": {"type": "choice", "values": [1]}}})
    assert config.limits.max_total_trials == 20
    assert config.objective.primary_metric == "best_val_acc"
    assert config.compute == "local" and config.storage == "default"


# --- YAML -> model -> YAML is the identity --------------------------------------------------

_exprs = st.one_of(
    st.builds(
        lambda v: {"type": "choice", "values": v},
        st.lists(st.integers(-5, 5) | st.text("abc", min_size=1), min_size=1, max_size=4),
    ),
    st.builds(lambda u: {"type": "randint", "upper": u}, st.integers(1, 99)),
    st.builds(
        lambda a, d: {"type": "uniform", "min_value": a, "max_value": a + d},
        st.floats(-5, 5),
        st.floats(0.5, 5),
    ),
    st.builds(
        lambda a, d, q: {"type": "qloguniform", "min_value": a, "max_value": a + d, "q": q},
        st.floats(-5, 5),
        st.floats(0.5, 5),
        st.sampled_from([0.5, 1, 2]),
    ),
    st.builds(
        lambda m, s: {"type": "qlognormal", "mu": m, "sigma": s, "q": 1},
        st.floats(-2, 2),
        st.floats(0.1, 2),
    ),
    st.builds(
        lambda a, d: {"type": "int", "low": a, "high": a + d, "step": 2},
        st.integers(0, 9),
        st.integers(0, 9),
    ),
)
_files = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a", "b-1", "c.d"]),
        "search_space": st.dictionaries(st.sampled_from(["x", "y", "z"]), _exprs, min_size=1),
        "sampling_algorithm": st.sampled_from(
            ["random", "tpe", {"type": "random", "seed": 3, "rule": "sobol"}]
        ),
        "early_termination": st.sampled_from(
            [
                {"type": "bandit", "slack_amount": 0.2, "delay_evaluation": 3},
                {"type": "median_stopping", "evaluation_interval": 2},
                {"type": "truncation_selection", "truncation_percentage": 20},
                {"type": "none"},
            ]
        ),
        "limits": st.fixed_dictionaries({"max_total_trials": st.integers(1, 50)}),
    }
)


@pytest.mark.filterwarnings("ignore::search_spaces.SearchSpaceWarning")
@settings(max_examples=150, deadline=None)
@given(_files)
def test_yaml_model_yaml_is_the_identity(data):  # type: ignore[no-untyped-def]
    config = parse_sweep(data)
    again = to_dict(config)
    assert parse_sweep(again) == config
    assert to_dict(parse_sweep(again)) == again
    for key, expr in data["search_space"].items():
        assert again["search_space"][key] == expr


def test_example_round_trips_through_yaml_text(tmp_path: Path):
    import yaml

    config = read_sweep_file(example_path("digits"))
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(to_dict(config)))
    assert read_sweep_file(path) == config


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"WANDB_API_KEY": "abc123"}, "trainer.env.WANDB_API_KEY: looks like a secret"),
        ({"9LIVES": "x"}, "trainer.env.9LIVES: is not an environment variable name"),
        ({"OK": ["a"]}, "trainer.env.OK: expected text"),
    ],
)
def test_trainer_env_refuses_secrets_written_in_the_file_and_bad_names(env, says):
    data = {**_good(), "trainer": {"entry": "trainer", "env": env}}
    with pytest.raises(SearchSpaceError) as err:
        parse_sweep(data)
    assert says in str(err.value)


def test_trainer_env_keeps_references_and_validate_refuses_an_unset_one(
    tmp_path, capsys, monkeypatch
):
    data = {
        **_good(),
        "trainer": {"entry": "trainer", "env": {"HF_TOKEN": "${MY_HF_TOKEN}", "DEBUG": 1}},
    }
    assert dict(parse_sweep(data).trainer.env) == {"HF_TOKEN": "${MY_HF_TOKEN}", "DEBUG": "1"}
    import yaml

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.delenv("MY_HF_TOKEN", raising=False)
    assert main(["validate", str(tmp_path / "s.yaml")]) == 2
    assert "trainer.env: uses ${MY_HF_TOKEN}, which is not set here" in capsys.readouterr().err
    monkeypatch.setenv("MY_HF_TOKEN", "hf_x")
    assert main(["validate", str(tmp_path / "s.yaml")]) == 0


def _good() -> dict:
    import yaml

    return yaml.safe_load(GOOD)
