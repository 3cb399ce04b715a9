from __future__ import annotations

import math
from pathlib import Path

import pytest

from search_spaces import (
    SearchSpaceError,
    from_wandb,
    parse_search_space,
    parse_sweep,
    read_sweep_file,
    to_azure_sweep,
)
from search_spaces.azure_form import expression_to_azure
from search_spaces.expressions import FloatRange, IntRange

AZURE_SPACE = {
    "a": {"type": "choice", "values": [1, 2]},
    "b": {"type": "randint", "upper": 4},
    "c": {"type": "uniform", "min_value": 0.0, "max_value": 1.0},
    "d": {"type": "quniform", "min_value": 0.0, "max_value": 10.0, "q": 2.0},
    "e": {"type": "loguniform", "min_value": -9.2, "max_value": -2.3},
    "f": {"type": "qloguniform", "min_value": 0.0, "max_value": 3.0, "q": 1.0},
    "g": {"type": "normal", "mu": 0.0, "sigma": 1.0},
    "h": {"type": "qnormal", "mu": 0.0, "sigma": 1.0, "q": 0.5},
    "i": {"type": "lognormal", "mu": 0.0, "sigma": 1.0},
    "j": {"type": "qlognormal", "mu": 0.0, "sigma": 1.0, "q": 1.0},
}


def test_azure_form_round_trips_through_our_reader():
    config = parse_sweep(
        {
            "search_space": AZURE_SPACE,
            "sampling_algorithm": {"type": "random", "seed": 4},
            "early_termination": {"type": "bandit", "slack_factor": 0.1, "delay_evaluation": 2},
            "limits": {"max_total_trials": 9, "max_concurrent_trials": 3, "timeout": 60},
        }
    )
    azure = to_azure_sweep(config)
    assert azure["search_space"] == AZURE_SPACE
    again = parse_sweep({k: v for k, v in azure.items()})
    assert again.search_space == config.search_space
    assert again.early_termination == config.early_termination
    assert again.limits == config.limits


def test_plain_ranges_map_to_azure_with_the_same_support():
    assert expression_to_azure(FloatRange(1e-4, 1e-1, log=True), "x") == {
        "type": "loguniform",
        "min_value": math.log(1e-4),
        "max_value": math.log(1e-1),
    }
    assert expression_to_azure(IntRange(2, 6, step=2), "x") == {
        "type": "choice",
        "values": [2, 4, 6],
    }
    assert expression_to_azure(FloatRange(0.0, 1.0, step=0.25), "x")["type"] == "quniform"


def test_plain_range_without_azure_form_raises():
    with pytest.raises(SearchSpaceError, match="multiples of step"):
        expression_to_azure(FloatRange(0.1, 1.0, step=0.25), "search_space.x")


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"sampling_algorithm": "tpe"}, "runs locally only"),
        (
            {
                "sampling_algorithm": "bayesian",
                "early_termination": {"type": "bandit", "slack_factor": 0.1},
            },
            "does not support early",
        ),
        ({"early_termination": {"type": "asha"}}, "runs locally only"),
    ],
)
def test_azure_refusals_are_caught_before_submitting(extra, message):
    config = parse_sweep({"search_space": {"c": AZURE_SPACE["c"]}, **extra})
    with pytest.raises(SearchSpaceError, match=message):
        to_azure_sweep(config)


def test_wandb_config_converts_exactly():
    wandb = {
        "method": "bayes",
        "metric": {"name": "val_acc", "goal": "maximize"},
        "run_cap": 12,
        "parameters": {
            "lr_exp": {"distribution": "log_uniform", "min": -9.2, "max": -2.3},
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1},
            "bs": {"values": [16, 32]},
            "epochs": {"min": 2, "max": 8},
            "m": {"min": 0.5, "max": 0.99},
            "wd": {"distribution": "q_log_uniform_values", "min": 1, "max": 100, "q": 1},
            "fixed": {"value": "sgd"},
        },
        "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
    }
    config = parse_sweep(from_wandb(wandb))
    space = config.search_space
    assert space["lr_exp"].type == "loguniform" and space["lr_exp"].min_value == -9.2
    assert space["lr"] == FloatRange(1e-4, 0.1, log=True)
    assert space["epochs"] == IntRange(2, 8)
    assert space["m"].type == "uniform"
    assert space["wd"].type == "qloguniform" and space["wd"].max_value == pytest.approx(
        math.log(100)
    )
    assert space["fixed"].values == ("sgd",)
    assert config.sampling_algorithm.type == "bayesian"
    assert config.objective.primary_metric == "val_acc"
    assert config.limits.max_total_trials == 12
    assert config.early_termination.options["min_resource"] == 2


@pytest.mark.parametrize(
    "wandb, where",
    [
        ({"parameters": {"x": {"distribution": "beta", "a": 1, "b": 2}}}, "parameters.x"),
        (
            {"parameters": {"x": {"parameters": {"y": {"values": [1]}}, "values": [2]}}},
            "parameters.x.values",
        ),
        (
            {"parameters": {"x": {"values": [1]}}, "metric": {"name": "m", "target": 0.9}},
            "metric.target",
        ),
        # Read by W&B, dropped by a conversion that ignored it: refused.
        ({"parameters": {"x": {"values": [1, 2], "probabilities": [0.9, 0.1]}}}, "parameters.x"),
        ({"parameters": {"x": {"min": 0.0, "max": 1.0, "mu": 0.5}}}, "parameters.x.mu"),
        ({"parameters": {"x": {"values": [1]}}, "program": "train.py"}, "program"),
        # W&B's s needs max_iter beside it to say where the brackets start.
        (
            {
                "parameters": {"x": {"values": [1]}},
                "early_terminate": {"type": "hyperband", "s": 2},
            },
            "early_terminate.s",
        ),
        (
            {
                "parameters": {"x": {"values": [1]}},
                "early_terminate": {"type": "hyperband", "strict": True},
            },
            "early_terminate.strict",
        ),
        ({"parameters": {"x": {"values": [1]}}, "method": "evolution"}, "method"),
    ],
)
def test_wandb_config_we_cannot_express_raises(wandb, where):
    with pytest.raises(SearchSpaceError, match="^" + where.replace(".", r"\.")):
        from_wandb(wandb)


def _wandb_inv_log_uniform(p: float, spec: dict) -> float:
    """W&B's own draw at quantile ``p`` (sweeps' ``inv_log_uniform_v1_ppf``): X = exp(-U),
    U uniform on [min, max] taken from the top; the ``_values`` form's bounds are
    log(1/max) and log(1/min)."""
    lo, hi = spec["min"], spec["max"]
    if spec["distribution"] == "inv_log_uniform_values":
        lo, hi = -math.log(hi), -math.log(lo)
    return math.exp(-(lo + (1 - p) * (hi - lo)))


def _log_uniform_quantile(p: float, expression) -> float:  # type: ignore[no-untyped-def]
    if isinstance(expression, FloatRange):
        assert expression.log
        lo, hi = math.log(expression.low), math.log(expression.high)
    else:  # an exponent form (Azure's and W&B's loguniform)
        assert expression.type == "loguniform"
        lo, hi = expression.min_value, expression.max_value
    return math.exp(lo + p * (hi - lo))


@pytest.mark.parametrize(
    "spec",
    [
        {"distribution": "inv_log_uniform", "min": 1, "max": 3},
        {"distribution": "inv_log_uniform", "min": -2.3, "max": 9.2},
        {"distribution": "inv_log_uniform_values", "min": 0.001, "max": 0.05},
    ],
)
def test_wandb_inverse_log_uniform_is_the_log_uniform_wandb_draws_from(spec):
    # The reciprocal of a log-uniform value is log-uniform: W&B's draw at every quantile is
    # ours at the same quantile.
    expression = parse_sweep(from_wandb({"parameters": {"x": spec}})).search_space["x"]
    for p in (0.0, 0.1, 0.5, 0.9, 1.0):
        assert _log_uniform_quantile(p, expression) == pytest.approx(
            _wandb_inv_log_uniform(p, spec), rel=1e-12
        )


def test_wandb_config_takes_our_settings_from_the_command_line_flags(tmp_path):
    """`sweep run wandb.yaml --trainer m:f --compute ray://…` was refused ("compute: has no
    equivalent in a sweep file"): the flags put our own sections beside W&B's keys."""
    path = tmp_path / "wandb.yaml"
    path.write_text(
        "method: random\nmetric: {name: loss}\nparameters: {lr: {min: 0.001, max: 0.1}}\n"
    )
    config = read_sweep_file(
        path,
        ["compute=ray://head:10001", "register.model_name=wb-model", "keep.checkpoints=none"],
        trainer="train:fit",
    )
    assert config.compute == "ray://head:10001"
    assert config.register is not None and config.register.model_name == "wb-model"
    assert config.keep.checkpoints == "none"
    assert config.search_space["lr"].type == "uniform"
    # A key that is neither W&B's nor one of our sections is still refused.
    with pytest.raises(SearchSpaceError, match="^lmits"):
        read_sweep_file(path, ["lmits.max_total_trials=3"], trainer="train:fit")


def test_wandb_hyperband_s_form_is_accepted():
    # W&B's documented example: s brackets below max_iter with eta 3.
    config = parse_sweep(
        {
            "method": "random",
            "metric": {"name": "acc", "goal": "maximize"},
            "parameters": {"x": {"values": [1, 2]}},
            "early_terminate": {"type": "hyperband", "s": 2, "eta": 3, "max_iter": 27},
            "trainer": {"entry": "tests.sweep_tests.toy_trainers:quadratic"},
        }
    )
    assert config.early_termination.options == {
        "min_resource": 3,
        "max_resource": 27,
        "reduction_factor": 3,
    }


def test_search_space_parses_alone():
    assert set(parse_search_space(AZURE_SPACE)) == set(AZURE_SPACE)


LAUNCH = Path(__file__).parent / "wandb_launch"
TRAINER = "tests.sweep_tests.toy_trainers:quadratic"


@pytest.mark.parametrize(
    ("name", "sampling", "policy", "limits", "env"),
    [
        (
            "optuna_percentile",
            {"type": "tpe", "seed": 3},
            (
                "percentile",
                {
                    "percentile": 25.0,
                    "n_warmup_steps": 1,
                    "n_startup_trials": 2,
                    "interval_steps": 1,
                },
            ),
            (6, 2),
            {},
        ),
        # The Optuna scheduler without settings: Optuna's TPESampler and MedianPruner().
        (
            "optuna_defaults",
            {"type": "tpe"},
            ("median", {"n_startup_trials": 5, "n_warmup_steps": 0, "interval_steps": 1}),
            (4, None),
            {},
        ),
        (
            "optuna_hyperband",
            {"type": "random", "seed": 1},
            ("hyperband", {"min_resource": 1, "reduction_factor": 3}),
            (9, 3),
            {"HF_TOKEN": "${HF_TOKEN}"},
        ),
        ("standard_scheduler", {"type": "random"}, ("none", {}), (20, 2), {}),
        ("wandb_scheduler_job", {"type": "bayesian"}, ("none", {}), (5, None), {}),
    ],
)
def test_wandb_launch_configs_map_onto_our_samplers_and_policies(
    name, sampling, policy, limits, env, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    config = read_sweep_file(LAUNCH / f"{name}.yaml", trainer=TRAINER)
    assert config.trainer.entry == TRAINER
    got = {
        "type": config.sampling_algorithm.type,
        **(
            {"seed": config.sampling_algorithm.seed}
            if config.sampling_algorithm.seed is not None
            else {}
        ),
    }
    assert got == sampling
    assert (config.early_termination.type, dict(config.early_termination.options)) == policy
    assert (config.limits.max_total_trials, config.limits.max_concurrent_trials) == limits
    assert dict(config.trainer.env) == env


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("threshold_pruner", "scheduler.settings.pruner.type"),
        ("optuna_source", "scheduler.settings.optuna_source"),
        ("tpe_startup", "scheduler.settings.sampler.args.n_startup_trials"),
        ("nsga2", "scheduler.settings.sampler.type"),
    ],
)
def test_wandb_launch_settings_without_an_equivalent_are_refused_naming_it(name, where):
    with pytest.raises(SearchSpaceError) as err:
        read_sweep_file(LAUNCH / "refused" / f"{name}.yaml", trainer=TRAINER)
    assert str(err.value).startswith(where) and "W&B Launch" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_wandb_launch_config_runs_with_its_pruner(tmp_path):
    from sweep import Sweep
    from sweep.backends import InProcessBackend

    config = read_sweep_file(LAUNCH / "optuna_percentile.yaml", trainer=TRAINER)
    result = Sweep(config=config, root=tmp_path, backend=InProcessBackend()).run()
    assert result.study is not None
    assert type(result.study.pruner).__name__ == "PercentilePruner"
    assert len(result.trials) == 6


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"distribution": "int_uniform", "min": 1, "max": 4}, [1, 2, 3, 4]),
        ({"min": -2, "max": 0}, [-2, -1, 0]),  # int bounds: int_uniform, as W&B infers it
        ({"distribution": "q_uniform", "min": 16, "max": 64, "q": 16}, [16, 32, 48]),
        ({"distribution": "q_uniform", "min": 0, "max": 3}, [0, 1, 2]),  # q defaults to 1
        ({"distribution": "q_uniform", "min": 0.1, "max": 0.7, "q": 0.2}, None),
    ],
)
def test_wandb_grid_enumerates_ranges_as_wandb_does(spec, expected):
    """W&B's rule (wandb/sweeps grid_search.py): int_uniform is range(min, max + 1),
    q_uniform is numpy.arange(min, max, q), its upper end left out."""
    import numpy as np

    from search_spaces import from_wandb

    wandb_rule = (
        list(range(spec["min"], spec["max"] + 1))
        if spec.get("distribution", "int_uniform") == "int_uniform"
        else np.arange(spec["min"], spec["max"], spec.get("q", 1)).tolist()
    )
    if expected is not None:
        assert wandb_rule == expected
    grid = from_wandb({"method": "grid", "parameters": {"p": spec}})
    assert grid["search_space"]["p"] == {"type": "choice", "values": wandb_rule}
    # The same range under random sampling stays a range.
    drawn = from_wandb({"method": "random", "parameters": {"p": spec}})
    assert drawn["search_space"]["p"]["type"] != "choice"


NESTED = {
    "method": "random",
    "parameters": {
        "lr": {"values": [0.1]},
        "optimizer": {
            "parameters": {
                "name": {"values": ["adam", "sgd"]},
                "momentum": {"distribution": "q_uniform", "min": 0.5, "max": 0.9, "q": 0.2},
            }
        },
    },
}


def test_wandb_nested_parameters_reach_the_trainer_as_the_mapping_wandb_gives(tmp_path):
    """W&B's run config holds a nested parameter as a mapping (``config.optimizer.name``);
    the trainer gets the same, each value drawn from its own range."""
    from sweep import Sweep
    from sweep.backends import InProcessBackend

    seen = []

    def fit(params, report):  # type: ignore[no-untyped-def]
        seen.append(params["optimizer"])
        return {"loss": 1.0}

    converted = from_wandb({**NESTED, "metric": {"name": "loss"}})
    Sweep(
        **converted,
        trainer=fit,
        root=tmp_path,
        backend=InProcessBackend(),
        limits={"max_total_trials": 12, "max_concurrent_trials": 1},
    ).run()
    assert len(seen) == 12
    assert all(set(o) == {"name", "momentum"} for o in seen)
    assert {o["name"] for o in seen} == {"adam", "sgd"}
    momenta = {o["momentum"] for o in seen}
    assert len(momenta) > 1 and all(abs(m / 0.2 - round(m / 0.2)) < 1e-9 for m in momenta)


def test_wandb_grid_takes_every_combination_of_nested_values_as_wandb_does():
    grid = from_wandb({**NESTED, "method": "grid"})["search_space"]["optimizer"]
    # q_uniform's upper end left out (numpy.arange), as at the top level
    assert grid == {
        "type": "choice",
        "values": [{"name": n, "momentum": m} for n in ("adam", "sgd") for m in (0.5, 0.7)],
    }
    with pytest.raises(SearchSpaceError, match=r"^parameters\.optimizer\.parameters\.m"):
        from_wandb(
            {
                "method": "grid",
                "parameters": {
                    "optimizer": {
                        "parameters": {"m": {"distribution": "uniform", "min": 0, "max": 1}}
                    }
                },
            }
        )


def test_a_nested_grid_too_large_to_hold_is_refused_before_it_is_made():
    wide = {"distribution": "int_uniform", "min": 1, "max": 1000}
    with pytest.raises(SearchSpaceError, match="grid points; at most"):
        from_wandb(
            {
                "method": "grid",
                "parameters": {"n": {"parameters": {f"p{i}": wide for i in range(8)}}},
            }
        )


def test_wandb_grid_ranges_that_are_mistakes_are_refused_naming_them():
    from search_spaces import SearchSpaceError, from_wandb

    for spec, message in [
        ({"distribution": "int_uniform", "min": 0, "max": 10**9}, "grid points; at most"),
        ({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0}, "must be greater than 0"),
        ({"distribution": "q_uniform", "min": 1, "max": 1}, "holds no grid point"),
        ({"distribution": "int_uniform", "min": 0.5, "max": 3}, "integer min and max"),
    ]:
        with pytest.raises(SearchSpaceError, match=message) as caught:
            from_wandb({"method": "grid", "parameters": {"p": spec}})
        assert "parameters.p" in str(caught.value)


def test_wandb_launchs_grid_config_validates_and_says_how_many_grid_points(tmp_path):
    """`sweep validate` took W&B's own grid example for an error ("grid sampling needs choice
    expressions only"); Azure ML's grid keeps Azure's rule (choices only)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep.cli",
            "validate",
            str(LAUNCH / "grid_ranges.yaml"),
            "--trainer",
            TRAINER,
        ],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert run.returncode == 0, run.stderr
    assert "grid: 24 points (4 x 3 x 2)" in run.stdout  # epochs 1-4, x 0.1/0.3/0.5, arch
    azure = tmp_path / "azure.yaml"
    azure.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json\n"
        "type: sweep\n"
        "trial:\n"
        "  command: python train.py --epochs ${{search_space.epochs}}\n"
        "  environment: azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest\n"
        "compute: azureml:cpu\n"
        "sampling_algorithm: grid\n"
        "search_space: {epochs: {type: randint, upper: 5}}\n"
        "objective: {primary_metric: acc, goal: maximize}\n"
        "limits: {max_total_trials: 4}\n"
    )
    refused = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "validate", str(azure)],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert refused.returncode == 2
    assert "search_space.epochs" in refused.stderr and "grid" in refused.stderr
