"""Table 2 (src/actadapt/experiments/tables/table2.py): run folder, resume inside a cell, bad input.

The experiment tests train on a tiny synthetic MNIST folder (written to ``tmp_path``), so they need no data;
one smoke run on the real files uses the ``data_root`` fixture.
"""

import json
import os

import pytest

from actadapt.experiments import ConfigError, reproduce
from actadapt.experiments.config import resolve_config
from actadapt.experiments.registry import Task, get_experiment
from actadapt.experiments.tables.table2 import PAPER_TABLE2, Table2, Table2Config

from ..data.test_mnist import make_mnist
from .resume import resumed_equals_uninterrupted

record_path = Table2().record_path

GRID = ["ReLU", "AReLU", "AGumb"]


# ------------------------------------------------------------------------------------- the experiment
SMALL = {"epochs": 2, "val_size": 50, "train_size": 100, "test_size": 0, "batch_size": 50}


@pytest.fixture
def fake_data(tmp_path):
    make_mnist(tmp_path / "data" / "mnist", n_train=300, n_test=60)
    return str(tmp_path / "data")


def _run(tmp_path, data, out="run", **over):
    return reproduce("table2", "smoke", str(tmp_path / out), overrides={**SMALL, **over}, data_dir=data,
                     log=lambda *a: None, progress=False)


def test_table2_run_folder(tmp_path, fake_data):
    res = _run(tmp_path, fake_data, conv_acts="ReLU,AGumb", fc_acts="AReLU")
    run = tmp_path / "run"
    assert res["rows"] == ["ReLU", "AGumb"] and res["columns"] == ["AReLU"] and res["complete"]
    cells = {(c["row"], c["column"]): c for c in res["cells"]}
    assert cells[("AGumb", "AReLU")]["paper"] == PAPER_TABLE2["AGumb"]["AReLU"]
    for conv in ("ReLU", "AGumb"):
        rec = json.loads((run / record_path(conv, "AReLU", 0)).read_text())
        assert rec["epochs"] == [1, 2] and len(rec["train_error"]) == len(rec["val_error"]) == len(rec["test_error"]) == 2
        assert rec["n_train"] == 100 and rec["n_val"] == 50 and rec["n_test"] == 60
        assert abs(100 * rec["accuracy"] - cells[(conv, "AReLU")]["mean"]) < 1e-9
        assert rec["accuracy"] == pytest.approx(1 - rec["test_error"][-1])
        assert abs(rec["majority_rate"] - 0.1) < 1e-9  # labels 0..9 in turn
        shapes = {k: len(v) for k, v in rec["alphas"].items()}
        assert shapes == ({"act1": 20, "act2": 50, "act3": 1000} if conv == "AGumb" else {"act3": 1000})
    assert not list(run.glob("checkpoints/*"))  # removed once each cell finished
    report = (run / "report.md").read_text()
    assert "| conv \\ fc | AReLU |" in report and "(98.8)" in report
    assert (run / "figures" / "fig6_error_curves.png").stat().st_size > 1000
    assert (run / "figures" / "alpha_histograms.png").exists()
    assert (run / "folds.csv").read_text().count("\n") == 1 + 2 * 2

    # resume: nothing to do, same numbers
    logs = []
    again = reproduce("table2", "smoke", str(run), overrides={**SMALL, "conv_acts": "ReLU,AGumb", "fc_acts": "AReLU"},
                      data_dir=fake_data, log=logs.append, progress=False)
    assert "2 of 2 tasks already done" in logs[0]
    assert again["cells"] == res["cells"]  # rebuilt from the same records


def test_a_diverging_cell_stops_and_is_marked(tmp_path, fake_data):
    res = _run(tmp_path, fake_data, conv_acts="AGumb", fc_acts="AReLU", lr=1e30, epochs=3)
    rec = json.loads((tmp_path / "run" / record_path("AGumb", "AReLU", 0)).read_text())
    assert rec["diverged"] is True and rec["epochs"][-1] == rec["diverged_epoch"]
    assert res["diverged"] is True and res["diverged_records"] == [record_path("AGumb", "AReLU", 0)]
    assert "**Diverged: 1 trained model(s)" in (tmp_path / "run" / "report.md").read_text()
    assert not list((tmp_path / "run").glob("checkpoints/*"))


def _cell(fake_data, conv, fc, **over):
    cfg = resolve_config(Table2Config, {**SMALL, "conv_acts": [conv], "fc_acts": [fc], "data_dir": fake_data, **over})
    task = Task(f"{conv}__{fc}__r0", {"conv": conv, "fc": fc, "repeat": 0, "epochs": cfg.epochs}, (record_path(conv, fc, 0),))
    return get_experiment("table2"), cfg, task


def _record(run_dir, conv, fc):
    return json.loads(open(os.path.join(run_dir, record_path(conv, fc, 0))).read())


def test_a_cell_is_deterministic(tmp_path, fake_data):
    exp, cfg, task = _cell(fake_data, "Sig", "Swish")
    exp.run_task(cfg, task, str(tmp_path / "a"))
    exp.run_task(cfg, task, str(tmp_path / "b"))
    a, b = _record(tmp_path / "a", "Sig", "Swish"), _record(tmp_path / "b", "Sig", "Swish")
    for key in ("train_loss", "val_loss", "test_error", "alphas", "accuracy"):
        assert a[key] == b[key]


def test_resume_inside_a_cell_from_the_checkpoint(tmp_path, fake_data):
    exp, cfg, _ = _cell(fake_data, "AReLU", "AGumb", epochs=3)
    resumed_equals_uninterrupted(exp, cfg, tmp_path)


@pytest.mark.parametrize("over, message", [
    ({"conv_acts": "ReLU,Tanh"}, "'conv_acts': unknown value 'Tanh'; valid choices: ReLU, AReLU, AGumb, Sig, Swish"),
    ({"fc_acts": "ReLU,ReLU"}, "expected no repeated names"),
    ({"val_size": 300}, "'val_size': expected fewer than the 300 training images, got 300"),
    ({"backend": "gpu"}, "'backend': unknown value 'gpu'"),
])
def test_bad_config(tmp_path, fake_data, over, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        _run(tmp_path, fake_data, **over)


def test_no_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("ACTADAPT_DATA", raising=False)
    with pytest.raises(ConfigError, match=r"no MNIST data folder: give --data-dir or set \$ACTADAPT_DATA"):
        _run(tmp_path, None)


def test_smoke_on_real_mnist(tmp_path, data_root):
    res = reproduce("table2", "smoke", str(tmp_path / "run"), overrides={"conv_acts": "AGumb", "fc_acts": "AReLU"},
                    data_dir=data_root, log=lambda *a: None, progress=False)
    (cell,) = res["cells"]
    assert cell["epochs_done"] == 2 and 0.0 <= cell["mean"] <= 100.0
    rec = json.loads((tmp_path / "run" / record_path("AGumb", "AReLU", 0)).read_text())
    assert (rec["n_train"], rec["n_val"], rec["n_test"]) == (400, 200, 300)
    assert rec["train_loss"][-1] < rec["train_loss"][0]  # it trains (the real test is the quick preset)


def test_a_probe_times_a_cells_first_steps_without_writing_its_record(tmp_path, fake_data):
    from actadapt.experiments.probe import probe_steps

    exp, cfg, task = _cell(fake_data, "AReLU", "AGumb", epochs=3)
    with probe_steps(2) as probe:
        exp.run_task(cfg, task, str(tmp_path))
    assert probe.stopped and len(probe.step_seconds) == 2 and probe.steps_per_epoch == 2  # 100 images, batch 50
    assert not os.path.exists(os.path.join(str(tmp_path), record_path("AReLU", "AGumb", 0)))
