"""Table 4 (src/actadapt/experiments/tables/table4.py) on a synthetic sessions file and on bad input."""

from __future__ import annotations

import csv
import os

from actadapt.experiments.data.url_sessions import generate_sessions, write_sessions

from .resume import resumed_equals_uninterrupted


# ------------------------------------------------------------------------------------------ table4 (user data)
def test_table4_runs_on_a_synthetic_sessions_file(tmp_path):
    from actadapt.experiments.runner import reproduce

    path = write_sessions(str(tmp_path / "s.jsonl"), generate_sessions(200, seed=4))
    out = str(tmp_path / "run")
    overrides = {"input": path, "sample": 0, "folds": 2, "epochs": 1, "conv_acts": "AGumb", "fc_acts": "AReLU",
                 "embedding": "learned"}
    res = reproduce("table4", "smoke", out, overrides=overrides, progress=False, log=lambda *a: None)
    (cell,) = res["cells"]
    assert (cell["row"], cell["column"], cell["n_folds"]) == ("AGumb", "AReLU", 2)
    assert 0 <= cell["mean"] <= 100 and cell["paper"] == 68.2
    assert res["cells_recall"][0]["paper"] == 68.1
    conf = res["confusion"]["AGumb-AReLU"]
    assert sum(map(sum, conf)) == sum(res["data"]["counts"].values())  # every session tested once
    report = open(os.path.join(out, "report.md")).read()
    assert "The data differ" in report and "Confusion matrix" in report and "deduplicated by tokens" in report
    # folds.csv and the figures, as every grid table writes them
    with open(os.path.join(out, "folds.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["conv"], r["fc"], r["fold"]) for r in rows] == [("AGumb", "AReLU", "0"), ("AGumb", "AReLU", "1")]
    assert {float(r["precision"]) for r in rows} and all(r["final_train_loss"] for r in rows)
    for name in ("error_curves.png", "alpha_histograms.png"):
        assert os.path.getsize(os.path.join(out, "figures", name)) > 1000 and f"figures/{name}" in report


def test_table4_bad_input_is_one_clear_error(tmp_path):
    from actadapt.cli import main

    bad = tmp_path / "s.csv"
    bad.write_text("label,pages\nx,http://a.com/\n")
    assert main(["reproduce", "table4", "--preset", "smoke", "--out", str(tmp_path / "r"), "--set", f"input={bad}"]) == 2

def test_a_fold_resumes_from_its_checkpoint(tmp_path):
    from actadapt.experiments.config import resolve_config
    from actadapt.experiments.tables.table4 import PRESETS, Table4, Table4Config

    path = write_sessions(str(tmp_path / "s.jsonl"), generate_sessions(120, seed=4))
    cfg = resolve_config(Table4Config, PRESETS["smoke"], {
        "input": path, "sample": 0, "folds": 2, "epochs": 3, "conv_acts": "AGumb", "fc_acts": "AReLU"})
    resumed_equals_uninterrupted(Table4(), cfg, tmp_path)  # Word2Vec, Adam and the batch order continue exactly
