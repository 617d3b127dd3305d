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
    (["reproduce", "table1", "--preset", "fast"], "unknown preset 'fast' for table1; valid presets: smoke, quick, paper"),
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
    assert code == 0 and "table1" in out and "smoke, quick, paper" in out and "label_rule = 'sign'" in out


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
