"""The second hostile-input round: what a user types never crashes the tool or floods it."""

from __future__ import annotations

import pytest

from search_spaces._errors import MAX_MESSAGE
from sweep.cli import main

MODULES = {
    "bad_name": ("x = 1\nundefined_name + 1\n", "bad_name.py:2: NameError"),
    "bad_syntax": ("def f(:\n", "bad_syntax.py:1: SyntaxError"),
    "bad_exit": ("raise SystemExit(5)\n", "bad_exit.py:1: SystemExit: 5"),
    "bad_long": ("raise RuntimeError('x' * 5000)\n", "bad_long.py:1: RuntimeError"),
}


@pytest.mark.parametrize("module", sorted(MODULES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_trainer_module_that_fails_at_import_is_one_bounded_line(
    tmp_path, monkeypatch, capsys, module, command
):
    source, where = MODULES[module]
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "s.yaml").write_text(
        f"trainer: {{entry: '{module}:train'}}\nsearch_space: "
        "{x: {type: uniform, min_value: 0, max_value: 1}}\n"
    )
    argv = [command, str(tmp_path / "s.yaml")] + (
        ["--root", str(tmp_path / "sw")] if command == "run" else []
    )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"importing {module} failed at " in err and where in err
    assert len(err) <= len("sweep: error: ") + MAX_MESSAGE + 1
    assert not (tmp_path / "sw").exists()


def test_a_huge_set_value_gives_a_bounded_message(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(
        "search_space: {learning_rate: {type: uniform, min_value: 0.01, max_value: 0.1}}\n"
    )
    assert (
        main(["validate", str(tmp_path / "s.yaml"), "--set", "trainer.entry=" + "m" * 6000 + ":f"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) <= len("sweep: error: ") + MAX_MESSAGE + 1


@pytest.mark.parametrize(
    "expression",
    [
        "{type: loguniform, min_value: -3, max_value: 1000}",
        "{type: qloguniform, min_value: -3, max_value: 800, q: 1}",
        "{type: lognormal, mu: 800, sigma: 1}",
        "{type: qlognormal, mu: 700, sigma: 3, q: 1}",
        "{type: normal, mu: 1e308, sigma: 1e308}",
    ],
)
def test_an_expression_that_overflows_is_refused_by_validate_naming_its_key(
    tmp_path, capsys, expression
):
    (tmp_path / "s.yaml").write_text(f"search_space: {{learning_rate: {expression}}}\n")
    assert main(["validate", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweep: error: search_space.learning_rate: ") and "float" in err


@pytest.mark.parametrize(
    "expression",
    [
        "{type: loguniform, min_value: -9.2, max_value: -2.3}",
        "{type: lognormal, mu: 0, sigma: 1}",
        "{type: qnormal, mu: 10, sigma: 2, q: 1}",
    ],
)
def test_ordinary_expressions_still_validate(tmp_path, expression):
    (tmp_path / "s.yaml").write_text(f"search_space: {{learning_rate: {expression}}}\n")
    assert main(["validate", str(tmp_path / "s.yaml")]) == 0


def test_ls_names_a_sweep_it_cannot_read_and_lists_the_others(tmp_path, capsys):
    from sweep import Sweep
    from sweep.backends import InProcessBackend
    from tests.sweep_tests import toy_trainers

    Sweep(
        name="good",
        search_space={"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        trainer=toy_trainers.quadratic,
        root=tmp_path,
        backend=InProcessBackend(),
        limits={"max_total_trials": 1},
    ).run()
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "sweep.yaml").write_text(
        "search_space: {x: {type: lognormal, mu: 800, sigma: 1}}\n"
    )
    assert main(["ls", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "odd" in out and "cannot be read" in out


def test_a_function_trial_that_prints_30_mb_leaves_a_capped_log_with_its_last_lines(tmp_path):
    from sweep.records.layout import trial_dir
    from sweep.records.trial_log import LOG_CAP_BYTES
    from sweep.trainers.runner import run_trial
    from sweep.trials import TrialSpec
    from tests.sweep_tests import toy_trainers

    folder = trial_dir(tmp_path, 0)
    spec = TrialSpec(
        0, {"x": 0.3, "output_dir": str(folder / "outputs")}, toy_trainers.chatty, str(folder)
    )
    run_trial(spec, lambda epoch, metrics, checkpoint: False)
    log = folder / "trial.log"
    assert LOG_CAP_BYTES <= log.stat().st_size <= LOG_CAP_BYTES + 100_000
    assert log.read_text().rstrip().endswith("THE END")
    assert "more bytes of output not kept" in log.read_text()[-30_000:]


@pytest.mark.parametrize(
    ("card", "onnx", "named"),
    [
        ("", b"\x08\x01garbage", "card.json is damaged"),
        ('{"model": {"classes": ["a"]}}', b"", "card.json is damaged"),
        (
            '{"model": {"classes": ["a", "b"], "image_size": 16, "mean": [0, 0, 0], '
            '"std": [1, 1, 1]}}',
            b"\x08\x01garbage",
            "model.onnx is damaged",
        ),
    ],
)
def test_a_damaged_model_version_is_one_line_naming_the_file(tmp_path, capsys, card, onnx, named):
    from sweep.model.registry import ModelRegistry

    (tmp_path / "model.onnx").write_bytes(b"")
    registry = tmp_path / "models"
    version = ModelRegistry(registry).register("m", {"model.onnx": tmp_path / "model.onnx"}, {})
    # Damaged after it was registered: a disk error, a hand edit.
    (version.path / "card.json").write_text(card)
    (version.path / "model.onnx").write_bytes(onnx)
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    code = main(["models", "predict", "m", str(image), "--registry", str(registry)])
    err = capsys.readouterr().err
    assert code == 2 and named in err and err.count("\n") == 1 and "Traceback" not in err


def test_download_onto_the_versions_own_folder_is_refused(tmp_path, capsys):
    from sweep.model.registry import ModelRegistry

    (tmp_path / "model.pt").write_bytes(b"weights")
    registry = ModelRegistry(tmp_path / "models")
    version = registry.register("m", {"model.pt": tmp_path / "model.pt"}, {"n": 1})
    for dest in (version.path, tmp_path / "models", tmp_path):
        code = main(
            [
                "models",
                "download",
                "m",
                str(dest),
                "--force",
                "--registry",
                str(tmp_path / "models"),
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and "inside the registry" in err and "Traceback" not in err
    assert (version.path / "model.pt").read_bytes() == b"weights"


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        (b"{}\n", "not a record of Optuna's journal"),
        (b'{"op_code": 99, "worker_id": "w"}\n', "not a record of Optuna's journal"),
        (b'{"op_code": 4, "worker_id": "w"}\n', "Optuna cannot apply it"),
        (b"garbage that is not json\n", "not a JSON record"),
    ],
)
def test_journal_damage_in_the_middle_is_named_and_resume_keeps_every_record_before(
    tmp_path, capsys, damage, what
):
    from sweep import Sweep
    from sweep.backends import InProcessBackend
    from sweep.records.layout import JOURNAL
    from tests.sweep_tests import toy_trainers

    def sweep() -> Sweep:
        return Sweep(
            name="s",
            search_space={"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
            trainer=toy_trainers.quadratic,
            root=tmp_path,
            backend=InProcessBackend(),
            limits={"max_total_trials": 4},
            sampling_algorithm={"type": "random"},
        )

    sweep().run(max_trials=2)
    journal = tmp_path / "s" / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    cut = len(lines) // 2
    journal.write_bytes(b"".join(lines[:cut]) + damage + b"".join(lines[cut:]))
    for command in (["status", "s"], ["ls"]):
        code = main([*command, "--root", str(tmp_path)])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        assert f"line {cut + 1} is damaged ({what}" in err + out
    assert code == 0  # ls lists what it can
    result = Sweep.load(
        "s", root=tmp_path, trainer=toy_trainers.quadratic, backend=InProcessBackend()
    ).resume()
    (side,) = (tmp_path / "s").glob(f"{JOURNAL}.torn-*")
    assert side.read_bytes() == damage + b"".join(lines[cut:])
    assert len(result.trials) >= 2 and main(["status", "s", "--root", str(tmp_path)]) == 0


def test_a_secret_is_scrubbed_in_its_escaped_and_quoted_forms(monkeypatch):
    import json
    from urllib.parse import quote

    from search_spaces.storage_url import scrub

    secret = "x\"y\\z'q@1:2"
    monkeypatch.setenv("PGPASSWORD", secret)
    url = "postgresql://me:${PGPASSWORD}@db/sweeps"
    for echoed in (
        secret,
        repr(secret),
        json.dumps(secret),
        quote(secret, safe=""),
        repr(secret)[1:-1],
    ):
        shown = scrub(f"connection failed for {echoed} at db:5432", url)
        assert "xyzq" not in shown.replace('"', "").replace("\\", "").replace("'", ""), shown
        assert shown.endswith(" at db:5432") and "***" in shown


def test_a_100_kb_failure_message_is_kept_whole_in_the_trial_folder_and_short_in_status(
    tmp_path, capsys
):
    from sweep import Sweep
    from sweep.backends import InProcessBackend
    from sweep.records.layout import trial_dir
    from tests.sweep_tests import toy_trainers

    Sweep(
        name="s",
        search_space={"x": {"type": "uniform", "min_value": 0, "max_value": 1}},
        trainer=toy_trainers.verbose_failure,
        root=tmp_path,
        backend=InProcessBackend(),
        limits={"max_total_trials": 1},
    ).run()
    whole = (trial_dir(tmp_path / "s", 0) / "failure.txt").read_text()
    assert len(whole) > 100_000 and whole.rstrip().endswith("THE END")
    assert main(["status", "s", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert len(out) < 1000 and "failure.txt" in out
