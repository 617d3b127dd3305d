"""examples/convert_finetune.py: clear one-line errors for missing data and foreign folders; a short real run
writes the accuracy, step times, the report and both figures (issue 12, item 5)."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("convert_finetune", os.path.join(ROOT, "examples", "convert_finetune.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_data_is_one_line_and_exit_code_2(example, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ACTADAPT_DATA", raising=False)
    assert example.main(["--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("convert_finetune: error: no data: pass --data-dir") and "\n" not in err
    assert example.main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and "\n" not in err
    assert not (tmp_path / "run").exists()  # nothing made before the data is found


def test_a_folder_of_someone_elses_files_is_refused(example, tmp_path, capsys, data_root):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "results.json").write_text("mine")
    assert example.main(["--data-dir", data_root, "--out", str(out), "--steps", "1"]) == 2
    assert "was not made by this script" in capsys.readouterr().err
    assert (out / "results.json").read_text() == "mine"


@pytest.mark.slow
def test_a_short_run_writes_results_and_figures(example, tmp_path, data_root):
    out = tmp_path / "run"
    assert example.main(["--data-dir", data_root, "--out", str(out), "--steps", "12", "--batch", "16"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["replaced_call_sites"] == 7 and results["output_change_at_conversion"] < 1e-2
    for name in ("original", "converted"):
        assert 0.0 <= results[name]["test_accuracy"] <= 1.0 and results[name]["median_step_ms"] > 0
    assert all((out / f).stat().st_size > 0 for f in example.OUTPUTS)
    assert example.main(["--data-dir", data_root, "--out", str(out), "--steps", "6", "--batch", "8"]) == 0  # its own folder
