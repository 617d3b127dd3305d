"""A model whose loss or weights become non-finite is marked diverged, never reported as a valid result."""

import json
import math

import pytest
import torch

from actadapt.cli import main

TINY = ["--set", "depths=1", "--set", "teachers=ReLU", "--set", "students=Sig,AGumb", "--set", "n_samples=40",
        "--set", "epochs=2", "--set", "folds=2", "--set", "backend=eager"]


def test_nonfinite_checks_numbers_tensors_and_modules():
    from actadapt.experiments.divergence import nonfinite, nonfinite_rows

    assert not nonfinite(1.0, 3, torch.ones(3), torch.arange(3), [0.5, (torch.zeros(2),)], None)
    assert nonfinite(math.nan) and nonfinite(-math.inf) and nonfinite(torch.tensor([1.0, math.inf]))
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    assert not nonfinite(net)
    net[1].running_var[0] = math.nan  # a buffer counts as much as a weight
    assert nonfinite(net)
    with pytest.raises(TypeError):
        nonfinite("nan")
    flags = nonfinite_rows([torch.tensor([[1.0, 2.0], [math.nan, 0.0], [0.0, 0.0]]), torch.tensor([[0.0], [0.0], [math.inf]])])
    assert flags.tolist() == [False, True, True]


def test_batched_students_flag_each_diverged_model():
    from actadapt.experiments.models.students import StudentSpec, TrainSettings, train_batched

    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = (X[:, 0] > 0).long()
    specs = [StudentSpec(act, 1, 2, X[:30], y[:30], X[30:], y[30:]) for act in ("Sig", "AGumb", "ReLU")]
    fine = train_batched(specs, TrainSettings(width=4, epochs=2))
    assert fine.diverged_epoch == [None, None, None]
    broken = train_batched(specs, TrainSettings(width=4, epochs=3, lr=1e30))
    assert all(e is not None and 1 <= e <= 3 for e in broken.diverged_epoch)


def test_a_diverged_run_is_marked_in_records_results_and_report(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["reproduce", "table1", "--preset", "smoke", "--out", str(out), "--workers", "1", *TINY,
                 "--set", "lr=1e30"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    res = json.loads((out / "results.json").read_text())
    assert res["complete"] is True and res["diverged"] is True
    assert sorted(res["diverged_records"]) == sorted(
        f"folds/d1-ReLU__{s}__draw0__fold{k}.json" for s in ("Sig", "AGumb") for k in (0, 1))
    rec = json.loads((out / "folds" / "d1-ReLU__AGumb__draw0__fold0.json").read_text())
    assert rec["diverged"] is True and rec["diverged_epoch"] in (1, 2)
    report = (out / "report.md").read_text()
    assert report.splitlines()[2].startswith("**Diverged: 4 trained model(s) ended with a non-finite loss")
    assert "warning: 4 trained model(s) diverged" in captured.out
    # `actadapt report` rebuilds the same marks
    assert main(["report", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["diverged_records"] == res["diverged_records"]


def test_a_finite_run_is_not_marked(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "table1", "--preset", "smoke", "--out", str(out), "--workers", "1", *TINY]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["diverged"] is False and res["diverged_records"] == []
    assert json.loads((out / "folds" / "d1-ReLU__AGumb__draw0__fold0.json").read_text())["diverged"] is False
    assert "Diverged" not in (out / "report.md").read_text() and "diverged" not in capsys.readouterr().out
