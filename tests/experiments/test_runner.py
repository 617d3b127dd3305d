"""Run folders: results.json schema, report, atomic records, resume after a kill, process pool."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from actadapt.experiments.config import ConfigError
from actadapt.experiments.report import RESULTS_FORMAT, mean_se
from actadapt.experiments.runner import (
    load_run,
    read_record,
    rebuild_report,
    reproduce,
    task_done,
    write_json,
)
from actadapt.experiments.tables.table1 import PAPER_TABLE1

ENV = {**os.environ, "ACTADAPT_BACKEND": "eager", "PYTHONPATH": os.pathsep.join(sys.path)}
SMALL = {"draws": "2", "depths": "1,2", "n_samples": "150"}


def _quiet(*a, **k):
    pass


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("smoke") / "run")
    results = reproduce("table1", "smoke", out, progress=False, log=_quiet)
    return out, results


def test_results_json_schema(smoke_run):
    out, results = smoke_run
    with open(os.path.join(out, "results.json")) as fh:
        on_disk = json.load(fh)
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["format"] == RESULTS_FORMAT and on_disk["table"] == "table1" and on_disk["preset"] == "smoke"
    assert on_disk["complete"] is True and on_disk["metric"] == "accuracy" and on_disk["unit"] == "%"
    assert on_disk["rows"] == ["1/Sig", "1/ReLU", "8/Sig", "8/ReLU"]
    assert on_disk["columns"] == ["Sig", "AGumb", "ReLU", "AReLU"]
    assert "folds" in on_disk["se_covers"] and on_disk["choices"]["label"].startswith("y = 1{teacher logit > 0}")
    assert len(on_disk["cells"]) == 16
    keys = {"row", "column", "metric", "mean", "se", "se_folds", "n", "n_draws", "n_folds", "majority_rate",
            "paper", "diff", "diff_in_se", "draws"}
    for c in on_disk["cells"]:
        assert keys <= set(c)
        depth, teacher = c["row"].split("/")
        assert c["paper"] == PAPER_TABLE1[(int(depth), teacher)][c["column"]]
        assert c["n_folds"] == 5 and c["n_draws"] == 1 and c["n"] == 5
        assert 0 <= c["mean"] <= 100 and c["se"] >= 0 and 0 < c["majority_rate"] <= 100


def test_cells_are_recomputed_from_the_fold_records(smoke_run):
    out, results = smoke_run
    with open(os.path.join(out, "folds.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16 * 5
    for c in results["cells"]:
        depth, teacher = c["row"].split("/")
        accs = [100 * float(r["accuracy"]) for r in rows
                if (r["depth"], r["teacher"], r["student"]) == (depth, teacher, c["column"])]
        m, se = mean_se(accs)
        assert c["mean"] == pytest.approx(m) and c["se"] == pytest.approx(se)
        assert c["diff_in_se"] == pytest.approx((m - c["paper"]) / se)


def test_report_and_figures(smoke_run):
    out, results = smoke_run
    text = open(os.path.join(out, "report.md")).read()
    for values in PAPER_TABLE1.values():
        for v in values.values():
            assert f"({v})" in text
    assert "Choices where the paper is silent" in text and "Standard error:" in text
    for name in ("fig2_alpha_histograms.png", "training_curves.png"):
        path = os.path.join(out, "figures", name)
        assert os.path.getsize(path) > 1000 and f"figures/{name}" in text
    # 2 epochs: no deep student beats its majority rate, so Figures 3-4 say so instead of drawing curves
    assert results["figure_students"] == {"AGumb": None, "AReLU": None}
    assert "no 8-layer AGumb or AReLU student beat its majority-class rate at this budget (2 epochs)" in text
    assert not os.path.exists(os.path.join(out, "figures", "fig3_agumb_curves.png"))


def test_rebuild_report_gives_the_same_results(smoke_run):
    out, results = smoke_run
    assert rebuild_report(out, log=_quiet) == results


def test_rerun_skips_finished_tasks(smoke_run):
    out, results = smoke_run
    logs = []
    again = reproduce("table1", "smoke", out, progress=False, log=logs.append)
    assert "4 of 4 tasks already done" in logs[0]
    assert again == results


def test_other_config_into_same_folder_fails(smoke_run):
    out, _ = smoke_run
    with pytest.raises(ConfigError, match=r"different config \(keys differ: epochs\)"):
        reproduce("table1", "smoke", out, overrides={"epochs": 3}, progress=False, log=_quiet)


def test_half_written_and_stale_records_are_not_trusted(tmp_path):
    out = str(tmp_path / "run")
    ov = {**SMALL, "depths": "1", "teachers": "Sig"}
    first = reproduce("table1", "smoke", out, overrides=ov, progress=False, log=_quiet)
    rec = os.path.join(out, "folds", "d1-Sig__AGumb__draw1__fold3.json")
    good = open(rec).read()
    chash = json.loads(good)["config_hash"]
    # a truncated record (as a non-atomic writer killed mid-write would leave) and a stray temp file
    with open(rec, "w") as fh:
        fh.write(good[: len(good) // 2])
    tmp = rec + ".tmp-12345"
    with open(tmp, "w") as fh:
        fh.write(good[:10])
    assert read_record(rec, chash) is None
    logs = []
    second = reproduce("table1", "smoke", out, overrides=ov, progress=False, log=logs.append)
    assert "0 of 1 tasks already done" in logs[0]
    assert not os.path.exists(tmp)
    assert second["cells"] == first["cells"] and open(rec).read().split('"task_seconds"')[0] == good.split('"task_seconds"')[0]
    # a record from another config is ignored as well
    write_json(rec, {**json.loads(good), "config_hash": "0" * 16})
    assert read_record(rec, chash) is None


def _cli(*args):
    return [sys.executable, "-m", "actadapt", "reproduce", "table1", "--preset", "smoke", *args]


@pytest.mark.slow
def test_kill_and_resume_ends_with_the_same_results(tmp_path):
    ov = {**SMALL, "n_samples": "100", "epochs": "25"}  # 4 tasks of 2 draws x 4 students x 5 folds = 40 folds each
    sets = [a for k, v in ov.items() for a in ("--set", f"{k}={v}")]
    ref_dir, run_dir = str(tmp_path / "ref"), str(tmp_path / "run")
    ref = reproduce("table1", "smoke", ref_dir, overrides=ov, progress=False, log=_quiet)

    proc = subprocess.Popen(_cli("--out", run_dir, "--workers", "1", *sets), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folds = os.path.join(run_dir, "folds")

    def n_written():
        return len([f for f in os.listdir(folds) if f.endswith(".json")]) if os.path.isdir(folds) else 0

    # kill once the first task's fold files are all there, while the second task trains
    deadline = time.time() + 240
    while time.time() < deadline and n_written() < 40:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 40 <= n_written() < 4 * 40  # part-way: some folds written, not all
    assert not os.path.exists(os.path.join(run_dir, "results.json"))
    exp, cfg, meta = load_run(run_dir)
    finished = sum(task_done(run_dir, t, meta["config_hash"]) for t in exp.tasks(cfg))
    assert 1 <= finished < 4
    partial = rebuild_report(run_dir, log=_quiet)  # `actadapt report` on an unfinished run: marked incomplete
    assert partial["complete"] is False and "incomplete run" in open(os.path.join(run_dir, "report.md")).read()

    # resume, this time with a process pool: skips the finished tasks, ends with the same numbers
    res = subprocess.run(_cli("--out", run_dir, "--workers", "2", *sets), env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"{finished} of 4 tasks already done" in res.stdout
    with open(os.path.join(run_dir, "results.json")) as fh:
        resumed = json.load(fh)
    assert resumed["cells"] == json.loads(json.dumps(ref["cells"]))
    assert open(os.path.join(run_dir, "folds.csv")).read() == open(os.path.join(ref_dir, "folds.csv")).read()


def test_a_cell_does_not_depend_on_the_other_rows_and_columns(smoke_run, tmp_path):
    # seeds derive from names, students train independently: one cell alone gives the same numbers
    _, results = smoke_run
    alone = reproduce("table1", "smoke", str(tmp_path / "one"), progress=False, log=_quiet,
                      overrides={"depths": "1", "teachers": "ReLU", "students": "AReLU"})
    (cell,) = alone["cells"]
    ref = next(c for c in results["cells"] if (c["row"], c["column"]) == ("1/ReLU", "AReLU"))
    assert cell["mean"] == pytest.approx(ref["mean"], rel=1e-6) and cell["majority_rate"] == ref["majority_rate"]
