"""Table 4 (src/actadapt/experiments/tables/table4.py) on a synthetic sessions file and on bad input."""

from __future__ import annotations

import os

from actadapt.experiments.data.url_sessions import generate_sessions, write_sessions

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


def test_table4_bad_input_is_one_clear_error(tmp_path):
    from actadapt.cli import main

    bad = tmp_path / "s.csv"
    bad.write_text("label,pages\nx,http://a.com/\n")
    assert main(["reproduce", "table4", "--preset", "smoke", "--out", str(tmp_path / "r"), "--set", f"input={bad}"]) == 2
