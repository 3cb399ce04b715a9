"""Sweep files written to hurt: alias bombs, huge files, random bytes and trees, names that
become paths, passwords written into the file. Each gets one line and exit 2, quickly."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from search_spaces import SearchSpaceError, read_sweep_file
from search_spaces._errors import MAX_MESSAGE
from search_spaces.yaml_file import MAX_FILE_BYTES
from sweep.cli import main

GOOD = {"search_space": {"x": {"type": "uniform", "min_value": 0, "max_value": 1}}}


def _bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines)


@pytest.mark.parametrize(
    "where", ["trainer: {args: {data: *l8}}", "search_space: {x: {type: choice, values: [*l8]}}"]
)
def test_an_alias_bomb_is_refused_in_bounded_time_and_memory(tmp_path, where):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb() + "\n" + where + "\n")  # 9**9 = 387 million strings expanded
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(SearchSpaceError) as caught:
        read_sweep_file(path)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "aliases expand to more than" in str(caught.value)
    assert elapsed < 10 and peak < 100e6, (elapsed, peak)


def test_a_few_aliases_are_fine(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("search_space: {x: &c {type: uniform, min_value: 0, max_value: 1}, y: *c}\n")
    assert set(read_sweep_file(path).search_space) == {"x", "y"}


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(GOOD) + "# " + "x" * MAX_FILE_BYTES + "\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "a sweep file may be at most 1 MB" in err and err.count("\n") == 1


def test_messages_stay_short_whatever_the_value(tmp_path, capsys):
    path = tmp_path / "long.yaml"
    path.write_text(
        yaml.safe_dump(
            {"search_space": {"x": {"type": "uniform", "min_value": "v" * 200_000, "max_value": 1}}}
        )
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < MAX_MESSAGE + 40
    assert "search_space.x.min_value" in err


@pytest.mark.parametrize("name", ["x\n", "../outside", "a/b", ".hidden", "x\x00y"])
def test_names_that_would_escape_or_mangle_a_folder_are_refused(tmp_path, capsys, name):
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "name": name}))
    assert main(["validate", str(path)]) == 2
    assert "name" in capsys.readouterr().err
    assert main(["status", name, "--root", str(tmp_path)]) == 2
    assert "is not a sweep name" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://me:hunter2@db.example/sweeps",
        "postgresql://me:${PGUSER}x@db.example/sweeps",
        "mysql://db.example/sweeps?user=me&password=hunter2",
    ],
)
def test_a_password_written_in_the_file_is_refused_with_the_way_to_pass_it(tmp_path, capsys, url):
    path = tmp_path / "secret.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "storage": url}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "${NAME}" in err and "hunter2" not in err


def test_a_password_from_the_environment_is_accepted(tmp_path):
    path = tmp_path / "secret.yaml"
    path.write_text(
        yaml.safe_dump({**GOOD, "storage": "postgresql://me:${PGPASSWORD}@db/s?sslkey=${KEY}"})
    )
    assert read_sweep_file(path).storage.startswith("postgresql://me:${PGPASSWORD}@")


def test_an_unreadable_file_is_one_line(tmp_path, capsys):
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    assert main(["validate", str(folder)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
_TREES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "search_space",
                    "type",
                    "values",
                    "min_value",
                    "max_value",
                    "trainer",
                    "limits",
                    "early_termination",
                    "x",
                    "name",
                    "trial",
                    "command",
                    "objective",
                    "sampling_algorithm",
                    "storage",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


def _validate_once(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    code = main(["validate", str(path)])
    out = capsys.readouterr()
    assert code in (0, 2)
    assert "Traceback" not in out.err
    if code == 2:
        assert all(
            line.startswith(("sweep: error: ", "sweep: warning: ")) for line in out.err.splitlines()
        )
        assert any(line.startswith("sweep: error: ") for line in out.err.splitlines())
        assert all(len(line) < MAX_MESSAGE + 40 for line in out.err.splitlines())
    assert time.perf_counter() - started < 5


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=st.one_of(_TREES, st.fixed_dictionaries({"search_space": _TREES})))
@pytest.mark.slow
def test_random_yaml_trees_validate_or_fail_in_one_line_each(tmp_path, capsys, tree):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(tree))
    _validate_once(path, capsys)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_bytes_validate_or_fail_in_one_line_each(tmp_path, capsys, raw):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(raw)
    _validate_once(path, capsys)


def test_the_plan_stays_readable_with_huge_values(tmp_path, capsys):
    path = tmp_path / "long.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "trainer": {
                    "entry": "tests.sweep_tests.toy_trainers:quadratic",
                    "args": {"data": "digits", "note": "v" * 5000},
                },
                "search_space": {
                    "num_epochs": {"type": "choice", "values": list(range(1, 3000))},
                    "momentum" + "m" * 400: {"type": "uniform", "min_value": 0, "max_value": 1},
                },
            }
        )
    )
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr()
    assert out.out and max(len(line) for line in out.out.splitlines()) <= 160


_NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 709.0, 710.0, 1e-300, 0.0, 800.0]),
    st.integers(-(10**6), 10**6),
)
_EXPRESSIONS = st.one_of(
    st.builds(
        lambda t, lo, hi: {"type": t, "min_value": lo, "max_value": hi},
        st.sampled_from(["uniform", "loguniform"]),
        _NUMBERS,
        _NUMBERS,
    ),
    st.builds(
        lambda t, lo, hi, q: {"type": t, "min_value": lo, "max_value": hi, "q": q},
        st.sampled_from(["quniform", "qloguniform"]),
        _NUMBERS,
        _NUMBERS,
        _NUMBERS,
    ),
    st.builds(
        lambda t, mu, sigma: {"type": t, "mu": mu, "sigma": sigma},
        st.sampled_from(["normal", "lognormal"]),
        _NUMBERS,
        _NUMBERS,
    ),
    st.builds(
        lambda t, mu, sigma, q: {"type": t, "mu": mu, "sigma": sigma, "q": q},
        st.sampled_from(["qnormal", "qlognormal"]),
        _NUMBERS,
        _NUMBERS,
        _NUMBERS,
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(expression=_EXPRESSIONS, draws=st.lists(st.floats(0, 1), min_size=3, max_size=3))
# Found by a CI run: an integer q rounds the float's lowest value to an int no float holds.
@example(
    expression={"type": "quniform", "min_value": -1.7976931348623157e308, "max_value": 0.0, "q": 3},
    draws=[0.0, 0.0, 0.0],
)
@pytest.mark.slow
def test_numeric_extremes_validate_in_one_line_or_sample_finite_values(
    tmp_path, capsys, expression, draws
):
    """What validates, runs: an expression that passes ``validate`` gives a finite value at
    its latent range's ends and anywhere between."""
    import math

    from search_spaces import to_optuna

    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump({"search_space": {"learning_rate": expression}}))
    _validate_once(path, capsys)
    try:
        config = read_sweep_file(path)
    except SearchSpaceError:
        return
    space = to_optuna(config.search_space)
    ((name, dist),) = space.distributions().items()
    for u in [0.0, 1.0, *draws]:
        latent = dist.low * (1 - u) + dist.high * u  # type: ignore[attr-defined]
        value = space.decode({name: latent})["learning_rate"]
        assert math.isfinite(value), (expression, u, value)
