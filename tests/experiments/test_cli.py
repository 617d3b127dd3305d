"""The ``actadapt`` command: bad input gives one clear line and exit code 2, never a traceback."""

import os
import subprocess
import sys

import pytest

from actadapt.cli import main

ENV = {**os.environ, "ACTADAPT_BACKEND": "eager", "PYTHONPATH": os.pathsep.join(sys.path)}


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "table9"], "unknown table 'table9'; valid tables: table1"),
    (["reproduce", "table1", "--preset", "fast"], "unknown preset 'fast' for table1; valid presets: smoke, quick, study, paper"),
    (["reproduce", "table1", "--preset", "smoke", "--set", "students=Sig,Tanh"],
     "'students': unknown value 'Tanh'; valid choices: Sig, AGumb, ReLU, AReLU, Swish"),
    (["reproduce", "table1", "--preset", "smoke", "--set", "n_samples=-5"], "'n_samples': expected a value >= 10, got -5"),
    (["reproduce", "table1", "--preset", "smoke", "--set", "epcohs=3"], "unknown config key 'epcohs'; valid keys:"),
    (["reproduce", "table1", "--preset", "smoke", "--set", "epochs"], "--set expects key=value, got 'epochs'"),
    (["reproduce", "table1", "--workers", "-2"], "argument --workers: expected a positive integer, got -2"),
    (["reproduce", "table1", "--seed", "x"], "argument --seed: expected an integer, got 'x'"),
    (["reproduce", "table1", "--config", "/nonexistent/c.yaml"], "config file '/nonexistent/c.yaml' does not exist"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["reproduce", "table1", "--data-dir", "/nonexistent/data"], "data root '/nonexistent/data' is not a folder"),
    (["report", "/nonexistent/run"], "'/nonexistent/run' is not a run folder: no config.json"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert err.startswith("actadapt: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unwritable_out_folder(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = _run(capsys, "reproduce", "table1", "--preset", "smoke", "--out", str(blocker / "run"))
    assert code == 2 and f"cannot write to output folder '{blocker / 'run'}'" in err and err.count("\n") == 1


def test_config_file_typo(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 2\nlable_rule: median\n")
    code, _, err = _run(capsys, "reproduce", "table1", "--preset", "smoke", "--config", str(cfg), "--out", str(tmp_path / "r"))
    assert code == 2 and "unknown config key 'lable_rule'; valid keys:" in err and "label_rule" in err


def test_module_entry_point_exit_code():
    res = subprocess.run([sys.executable, "-m", "actadapt", "reproduce", "table9"], env=ENV, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("actadapt: error: unknown table 'table9'; valid tables: table1")
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_help_and_list(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "reproduce" in out and "report" in out and "demo" in out
    code, out, _ = _run(capsys, "list")
    assert code == 0 and "table1" in out and "smoke, quick, study, paper" in out and "label_rule = 'sign'" in out
    # each preset's resolved values, not only the defaults
    assert "preset quick: n_samples=5000, max_majority=0.95, max_redraws=1000, epochs=[100, 40], draws=3" in out
    assert "preset quick: epochs=3, momentum=0.9" in out and "preset paper: the defaults" in out  # table2
    assert "preset study: epochs=3, momentum=0.9, repeats=3" in out and "preset study: folds=10" in out  # tables 2, 4


def test_reproduce_and_report_commands(capsys, tmp_path):
    out_dir = str(tmp_path / "run")
    code, out, err = _run(capsys, "reproduce", "table1", "--preset", "smoke", "--out", out_dir, "--workers", "1",
                          "--set", "depths=1", "--set", "teachers=ReLU", "--set", "students=AGumb,AReLU")
    assert code == 0, err
    assert "1/ReLU" in out and "[97.4]" in out and "[98.0]" in out
    code, out2, _ = _run(capsys, "report", out_dir)
    assert code == 0 and out2.splitlines()[-3:] == out.splitlines()[-3:]


def test_demo_prints_fitted_alphas(capsys):
    code, out, _ = _run(capsys, "demo", "--epochs", "2")
    assert code == 0
    assert "held-out accuracy" in out and "fitted alpha" in out
    assert "gumbel" in out and "exponential" in out


# ------------------------------------------------------------------------------------- malformed run folders
_TINY = ["--set", "depths=1", "--set", "teachers=ReLU", "--set", "students=AGumb", "--set", "n_samples=40",
         "--set", "epochs=1", "--set", "folds=2", "--set", "backend=eager"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    assert main(["reproduce", "table1", "--preset", "smoke", "--out", str(out), "--workers", "1", *_TINY]) == 0
    return out


def _meta(tiny_run):
    import json

    return json.loads((tiny_run / "config.json").read_text())


@pytest.mark.parametrize("edit, message", [
    (lambda m: "{not json", "is not valid JSON (Expecting property name"),
    (lambda m: "[1, 2]", "is malformed: it holds a JSON list, expected an object"),
    (lambda m: "null", "is malformed: it holds a JSON NoneType, expected an object"),
    (lambda m: {k: v for k, v in m.items() if k != "table"}, "is malformed: the key 'table' is missing"),
    (lambda m: {**m, "table": 5}, "is malformed: 'table' is 5, expected a JSON string"),
    (lambda m: {**m, "config": None}, "is malformed: 'config' is None, expected a JSON object"),
    (lambda m: {**m, "format": "something-else"}, "is malformed: 'format' is 'something-else'"),
    (lambda m: {**m, "config": {**m["config"], "lr": None}}, "config key 'lr': expected a number, got None"),
    (lambda m: {**m, "config": {**m["config"], "students": None}}, "config key 'students': expected a string, got None"),
    (lambda m: {**m, "config": {**m["config"], "lr": float("nan")}}, "config key 'lr': expected a finite number, got nan"),
    (lambda m: {**m, "config": {**m["config"], "epochs": "many"}}, "config key 'epochs': expected an integer, got 'many'"),
    (lambda m: {**m, "config_hash": "0" * 16}, "its config_hash does not match its config"),
])
def test_report_on_a_malformed_run_folder_is_one_line(tiny_run, tmp_path, capsys, edit, message):
    import json
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    new = edit(_meta(tiny_run))
    (run / "config.json").write_text(new if isinstance(new, str) else json.dumps(new))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    code, _, err = _run(capsys, "report", str(run))
    assert code == 2 and err.startswith("actadapt: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err and "config.json" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # nothing rewritten


def test_report_on_a_malformed_record_is_one_line(tiny_run, tmp_path, capsys):
    import json
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    rec_path = run / "folds" / "d1-ReLU__AGumb__draw0__fold1.json"
    rec = json.loads(rec_path.read_text())
    del rec["accuracy"]  # the config hash still matches: a hand-edited record
    rec_path.write_text(json.dumps(rec))
    code, _, err = _run(capsys, "report", str(run))
    assert code == 2 and "holds a malformed record (KeyError: 'accuracy')" in err and err.count("\n") == 1
