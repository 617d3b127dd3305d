"""``actadapt report --status`` (src/actadapt/experiments/status.py): run folders built from small synthetic
records (config.json by the runner, folds.csv by the table's own writer), verdicts, archives, bad folders."""

import json
import os

import pytest

from actadapt.cli import main
from actadapt.experiments import ConfigError, get_experiment
from actadapt.experiments.config import resolve_config
from actadapt.experiments.rundir import RunFolderError, write_json
from actadapt.experiments.runner import prepare_run_dir
from actadapt.experiments.status import MARKER, claim_rows, read_run, report_status, status_markdown

GRID = ("ReLU", "AReLU", "AGumb")


def make_run(path, table, preset, records, overrides=None, diverged=(), sessions=None):
    """A run folder as `actadapt reproduce` leaves it, but for the records: config.json, folds.csv (from
    ``records``, by the table's writer) and a results.json of an older version (no ``paired``)."""
    exp = get_experiment(table)
    cfg = resolve_config(exp.config_class, exp.presets[preset], overrides or {})
    chash = prepare_run_dir(str(path), exp, preset, cfg, tasks=[])
    exp.write_folds_csv(records, str(path))
    write_json(os.path.join(path, "results.json"), {"format": "actadapt-results/1", "config_hash": chash,
                                                    "complete": True, "diverged": bool(diverged),
                                                    "diverged_records": list(diverged),
                                                    **({"sessions": sessions} if sessions else {})}, root=str(path))
    return str(path)


def grid_records(values, unit="fold", majority=0.5):
    """Table 3/4-style records: ``values[(conv, fc)]`` = the accuracy (%) per fold."""
    return [{"conv": conv, "fc": fc, unit: k, "accuracy": v / 100, "precision": v / 100, "recall": v / 100,
             "majority_rate": majority, "diverged": False}
            for (conv, fc), vs in values.items() for k, v in enumerate(vs)]


BASE = [79.0, 80.0, 78.5, 79.5, 80.5]


def table3_values(**cells):
    """Every cell of the 3x3 grid at BASE + an offset (default 0), ``cells["AGumb_AReLU"] = [...]`` overrides."""
    out = {(c, f): list(BASE) for c in GRID for f in GRID}
    for key, vs in cells.items():
        out[tuple(key.split("_"))] = vs
    return out


def _by_label(run):
    return {(row["metric"], row["comparison"].label): row for row in claim_rows(run)}


def test_verdicts_from_a_synthetic_table3_run(tmp_path):
    values = table3_values(
        ReLU_AReLU=list(BASE),  # identical to ReLU/ReLU: within ±0.3 of the paper's 0.0 -> reproduced
        AGumb_ReLU=[50.0] * 5,  # at chance, paper -26.8 -> reproduced (a chance-level AGumb/ReLU is the paper's too)
        AGumb_AGumb=[50.0, 50.1, 50.0, 50.0, 50.2],  # both AGumb/AGumb and AGumb/ReLU at chance -> not decidable
        AGumb_AReLU=[b + d for b, d in zip(BASE, [0.5, -0.5, 1.0, -1.0, 0.2])],  # paper +25.1 vs ours ~0 ...
        AReLU_AGumb=[b + d for b, d in zip(BASE, [-1.0, -1.2, -0.9, -1.1, -1.0])],  # paper +0.4, ours -1.04
    )
    run = read_run(make_run(tmp_path / "run", "table3", "quick", grid_records(values)))
    rows = _by_label(run)
    assert len(rows) == 16  # 8 cells vs ReLU/ReLU, 4 adaptive FC, 4 adaptive conv
    r = rows[("accuracy", "ReLU/AReLU - ReLU/ReLU")]
    assert r["verdict"] == "reproduced" and r["reason"].startswith("rule 4") and r["ours"]["n"] == 5
    assert r["ours"]["ties"] == 5 and r["paper"] == 0.0
    r = rows[("accuracy", "AGumb/ReLU - ReLU/ReLU")]
    assert r["verdict"] == "reproduced" and "AGumb/ReLU at chance level in every unit" in r["reason"]
    r = rows[("accuracy", "AGumb/AGumb - AGumb/ReLU")]
    assert r["verdict"] == "not decidable here" and r["reason"].startswith("rule 3")
    r = rows[("accuracy", "AGumb/AReLU - AGumb/ReLU")]  # ~29 points above a chance-level cell
    assert r["verdict"] == "reproduced" and r["paper"] == 25.1
    r = rows[("accuracy", "AReLU/AGumb - AReLU/ReLU")]
    assert r["verdict"] == "not reproduced" and r["ours"]["mean"] == pytest.approx(-1.04)
    assert r["ours"]["favour_b"] == 5
    r = rows[("accuracy", "AReLU/AReLU - ReLU/ReLU")]  # paper -0.6, ours exactly 0: interval [0, 0] excludes p
    assert r["verdict"] == "not reproduced" and r["reason"].startswith("rule 8")


def test_missing_cells_and_two_presets_side_by_side(tmp_path):
    quick = make_run(tmp_path / "t3-quick", "table3", "quick", grid_records(table3_values()))
    study_values = {("AGumb", f): [77.0 + d for d in (0.1, 0.3, -0.2, 0.0, 0.4)] for f in GRID}
    study_values[("AGumb", "AReLU")] = [51.0, 52.0, 50.5, 53.0, 51.5]
    study = make_run(tmp_path / "t3-study", "table3", "study", grid_records(study_values))
    text = status_markdown([read_run(study), read_run(quick)], out="docs/REPRODUCTION.md")
    assert text.startswith(MARKER + "\n")
    lines = text.splitlines()
    # quick before study, whatever the order given; each claim has a row per preset
    summary = [line for line in lines if line.startswith("| table3 |")]
    assert [s.split(" | ")[1] for s in summary] == ["quick", "study"]
    assert f"actadapt report --status {quick} {study} --out docs/REPRODUCTION.md" in text
    claim = next(i for i, line in enumerate(lines) if line.startswith("| AGumb/AReLU - AGumb/ReLU | +25.10 | quick |"))
    study_row = lines[claim + 1]
    assert study_row.startswith("|  |  | study | -25.52 ± 0.42 | [-26.67, -24.37] | 0 / 5 / 0 |")
    assert "not reproduced" in study_row and "rule 7" in study_row
    # the study run has the AGumb row only: the other claims' cells are missing there
    study_rows = [line for line in lines if line.startswith("|  |  | study |")]
    assert len(study_rows) == 16 and sum("| not decidable here | rule 1: cell" in line for line in study_rows) == 14
    assert sum(line.endswith("| rule 1: cell ReLU/ReLU not in this run |") for line in study_rows) == 3  # AGumb row
    assert sum("rule 1: cell ReLU/AReLU and cell ReLU/ReLU not in this run" in line for line in study_rows) == 1
    assert "| quick | " in text and "settings beside the preset" in text


def test_table1_and_table2_folds_csv(tmp_path):
    t1 = [{"depth": 1, "teacher": "Sig", "student": s, "draw": d, "fold": f, "accuracy": acc, "majority_rate": 0.6,
           "positive_rate": 0.4, "n_train": 80, "n_test": 20, "teacher_redraw": 0, "train_loss": [0.3]}
          for s, base in (("Sig", 0.90), ("AGumb", 0.92), ("ReLU", 0.93), ("AReLU", 0.93)) for d in range(2)
          for f in range(2) for acc in [base + 0.01 * (d + f)]]
    # Table 1's folds.csv has no diverged column: results.json's diverged_records say which
    bad = os.path.join("folds", "d1-Sig__AGumb__draw1__fold1.json")
    run = read_run(make_run(tmp_path / "t1", "table1", "quick", t1, {"depths": [1], "epochs": [100], "teachers": ["Sig"]},
                            diverged=[bad], sessions=[{"seconds": 300.0}, {"seconds": 155.5}]))
    rows = _by_label(run)
    agumb = rows[("accuracy", "1/Sig: AGumb - Sig")]
    assert agumb["ours"]["n"] == 3 and agumb["ours"]["excluded"] == 1
    assert agumb["ours"]["mean"] == pytest.approx(2.0) and agumb["paper"] == 1.7
    assert rows[("accuracy", "1/Sig: AReLU - ReLU")]["ours"]["ties"] == 4
    assert rows[("accuracy", "8/Sig: AGumb - Sig")]["reason"] == "rule 1: cell 8/Sig/AGumb and cell 8/Sig/Sig not in this run"
    text = status_markdown([run])
    assert "quick* |" in text and "epochs=[100], depths=[1], teachers=['Sig']" in text and "| 8 min (2 sessions) |" in text
    # Table 2: one folds.csv row per epoch; the accuracy is 1 - the last epoch's test error
    curves = ("train_error", "train_loss", "val_error", "val_loss", "test_error", "test_loss", "train_seconds")
    t2 = [{"conv": c, "fc": f, "repeat": r, "epochs": [1, 2], **{k: [0.5, 0.5] for k in curves},
           "test_error": [0.5, 0.01 + 0.001 * r + (0.002 if c == "AGumb" else 0)]}
          for c in GRID for f in GRID for r in range(3)]
    run = read_run(make_run(tmp_path / "t2", "table2", "study", t2))
    r = _by_label(run)[("accuracy", "AGumb/ReLU - ReLU/ReLU")]
    assert r["ours"]["n"] == 3 and r["ours"]["mean"] == pytest.approx(-0.2) and r["ours"]["se"] == pytest.approx(0)
    assert r["verdict"] == "reproduced"  # paper -0.4: our -0.2 (a point interval) excludes 0 on its side


def test_table4_compares_precision_and_recall(tmp_path):
    run = read_run(make_run(tmp_path / "t4", "table4", "quick", grid_records(table3_values(), majority=0.27)))
    rows = claim_rows(run)
    assert [r["metric"] for r in rows] == ["precision"] * 16 + ["recall"] * 16
    assert rows[16]["paper"] == pytest.approx(-0.1)  # recall ReLU/AReLU - ReLU/ReLU: 67.9 - 68.0
    assert "The data differ" in status_markdown([run])


def test_archive_and_regenerate_from_it(tmp_path, capsys):
    quick = make_run(tmp_path / "runs" / "a", "table3", "quick", grid_records(table3_values()))
    docs = tmp_path / "docs"
    out, archive = str(docs / "REPRODUCTION.md"), str(docs / "runs")
    assert main(["report", "--status", quick, "--out", out, "--archive", archive]) == 0
    dest = docs / "runs" / "table3-quick"
    assert sorted(os.listdir(dest)) == ["archive.json", "config.json", "folds.csv", "results.json"]
    for name in ("config.json", "folds.csv", "results.json"):
        assert (dest / name).read_bytes() == open(os.path.join(quick, name), "rb").read()
    manifest = json.loads((dest / "archive.json").read_text())
    assert manifest["source"] == os.path.abspath(quick) and manifest["format"] == "actadapt-archive/1"
    first = open(out).read()
    assert str(dest) in first and os.path.abspath(quick) in first
    # regenerated from the archive alone: the same document, and the same file is ours to overwrite
    assert main(["report", "--status", str(dest), "--out", out]) == 0
    assert open(out).read() == first
    # an archived copy edited by hand is refused, naming it
    folds = dest / "folds.csv"
    original = folds.read_bytes()
    folds.write_bytes(original.replace(b"0.79", b"0.99", 1))
    assert main(["report", "--status", str(dest)]) == 2
    assert "folds.csv' differs from the file archived" in capsys.readouterr().err
    folds.write_bytes(original)
    # archiving again (the archive is ours) works; without --out the document is printed
    capsys.readouterr()
    assert main(["report", "--status", quick, "--archive", archive]) == 0
    assert capsys.readouterr().out.count(MARKER) == 1


def test_never_overwrites_what_it_did_not_write(tmp_path, capsys):
    quick = make_run(tmp_path / "run", "table3", "quick", grid_records(table3_values()))
    mine = tmp_path / "notes.md"
    mine.write_text("# my notes\n")
    assert main(["report", "--status", quick, "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to overwrite" in err and mine.read_text() == "# my notes\n"
    foreign = tmp_path / "arch" / "table3-quick"
    foreign.mkdir(parents=True)
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="not an archive folder of actadapt's"):
        report_status([quick], archive=str(tmp_path / "arch"), log=lambda *a: None)
    assert os.listdir(foreign) == ["keep.txt"]
    # two runs that would share an archive folder
    other = make_run(tmp_path / "run2", "table3", "quick", grid_records(table3_values()))
    with pytest.raises(ConfigError, match="two runs would be archived as 'table3-quick'"):
        report_status([quick, other], archive=str(tmp_path / "arch2"), log=lambda *a: None)
    assert not (tmp_path / "arch2").exists()


def test_same_preset_twice_gets_distinct_labels(tmp_path):
    a = read_run(make_run(tmp_path / "x1", "table3", "quick", grid_records(table3_values())))
    b = read_run(make_run(tmp_path / "x2", "table3", "quick", grid_records(table3_values())))
    text = status_markdown([a, b])
    assert "| quick (x1) |" in text and "| quick (x2) |" in text


def test_a_reading_of_one_cell_shows_its_cell_and_is_archived_under_its_own_name(tmp_path, capsys):
    # the study preset, and a reading beside it that trains the AGumb/AReLU cell alone with other settings
    study_values = {("AGumb", f): [77.0 + d for d in (0.1, 0.3, -0.2, 0.0, 0.4)] for f in GRID}
    study_values[("AGumb", "ReLU")] = [50.0, 50.2, 50.0, 51.5, 50.0]
    study = make_run(tmp_path / "t3-study", "table3", "study", grid_records(study_values))
    records = grid_records({("AGumb", "AReLU"): [50.0, 73.0]})
    for rec, last in zip(records, (0.5, 0.752)):
        rec["accuracy_last"] = last
    reading = make_run(tmp_path / "t3-reading-pooled", "table3", "study", records,
                       overrides={"fc_acts": ["AReLU"], "folds": 2, "dropout_at": "pooled"})
    text = status_markdown([read_run(reading), read_run(study)])
    lines = text.splitlines()
    assert "| study* (t3-reading-pooled) |" not in text  # one study* run: its label needs no folder name
    assert any(line.startswith("| study* | ") and "dropout_at='pooled'" in line and "folds=2" in line
               for line in lines)
    # the reading holds both cells of no claim: no claim rows, a note naming it
    assert not any(line.startswith("|  |  | study* |") for line in lines)
    assert "Runs that hold both cells of no claim (study*) are left out of the claims below" in text
    cells = sorted(line for line in lines if line.startswith("| AGumb/AReLU | 77.4 |"))
    # the cell in each run that has it, with the table's mean ± SE and each unit's value
    assert len(cells) == 2
    assert cells[0] == "| AGumb/AReLU | 77.4 | study | 77.1 ± 0.1 | - | 77.1, 77.3, 76.8, 77.0, 77.4 | 0 |"
    assert cells[1] == "| AGumb/AReLU | 77.4 | study* | 61.5 ± 11.5 | 62.6 ± 12.6 | 50.0, 73.0 | 1 |"
    assert "| cell | paper | preset | accuracy ± SE | accuracy_last ± SE | per unit | units at chance |" in text
    chance = next(line for line in lines if line.startswith("| AGumb/ReLU | 52.3 | study |"))
    assert chance.endswith("| 50.0, 50.2, 50.0, 51.5, 50.0 | 4 |")  # 51.5 is more than 1 point above 50
    # archived: the preset's run as table3-study, the reading under its folder's name; regenerated alike
    out, archive = str(tmp_path / "docs" / "R.md"), str(tmp_path / "docs" / "runs")
    assert main(["report", "--status", study, reading, "--out", out, "--archive", archive]) == 0
    assert sorted(os.listdir(archive)) == ["t3-reading-pooled", "table3-study"]
    first = open(out).read()
    assert main(["report", "--status", *(os.path.join(archive, n) for n in sorted(os.listdir(archive))),
                 "--out", out]) == 0
    assert open(out).read() == first


@pytest.mark.parametrize("remove, message", [
    ("folds.csv", "folds.csv' is missing; `actadapt report"),
    ("results.json", "results.json' is missing; `actadapt report"),
    ("config.json", "is not a run folder: no config.json"),
])
def test_missing_files_are_one_line_errors(tmp_path, capsys, remove, message):
    run = make_run(tmp_path / "run", "table3", "quick", grid_records(table3_values()))
    os.remove(os.path.join(run, remove))
    assert main(["report", "--status", run]) == 2
    err = capsys.readouterr().err
    assert err.startswith("actadapt: error: ") and message in err and err.count("\n") == 1


def test_malformed_files_are_one_line_errors(tmp_path, capsys):
    run = make_run(tmp_path / "run", "table3", "quick", grid_records(table3_values()))
    csv_path = os.path.join(run, "folds.csv")
    text = open(csv_path).read()
    open(csv_path, "w").write(text.replace("conv,fc,fold", "conv,fc,fold_k"))
    assert main(["report", "--status", run]) == 2
    assert "has no column 'fold'" in capsys.readouterr().err
    open(csv_path, "w").write(text.replace("0.79,", "high,", 1))
    assert main(["report", "--status", run]) == 2
    assert "holds a value that is not a number" in capsys.readouterr().err
    open(csv_path, "w").write(text)
    results = json.loads(open(os.path.join(run, "results.json")).read())
    write_json(os.path.join(run, "results.json"), {**results, "config_hash": "0" * 16}, root=run)
    assert main(["report", "--status", run]) == 2
    assert "run `actadapt report" in capsys.readouterr().err


def test_report_without_status_takes_one_folder(capsys):
    assert main(["report", "a", "b"]) == 2
    assert "go with --status" in capsys.readouterr().err


def test_a_real_run_agrees_with_its_results_json(tmp_path):
    """A tiny Table 1 run: results.json's paired section (from the records) is what the status computes from
    folds.csv, and report.md shows it."""
    from actadapt.experiments import reproduce

    out = str(tmp_path / "run")
    res = reproduce("table1", "smoke", out, overrides={"depths": [1], "teachers": ["ReLU"], "students": ["Sig", "AGumb"],
                                                       "n_samples": 40, "epochs": [1], "folds": 2, "draws": 2,
                                                       "backend": "eager"}, log=lambda *a: None, progress=False)
    [mine] = res["paired"]["comparisons"]
    assert mine["label"] == "1/ReLU: AGumb - Sig" and mine["n"] == 4 and mine["paper"] == pytest.approx(1.3)
    [session] = res["sessions"]
    assert session["tasks"] == 1 and session["seconds"] >= 0
    row = _by_label(read_run(out))[("accuracy", "1/ReLU: AGumb - Sig")]
    assert json.loads(json.dumps(row["ours"])) == mine
    report = open(os.path.join(out, "report.md")).read()
    assert "## Paired comparisons" in report and "| 1/ReLU: AGumb - Sig | AGumb vs Sig | +1.30 |" in report
    assert "| rule " in report  # each verdict with its reason
    assert main(["report", out]) == 0  # a report without training keeps the recorded session
    assert json.loads(open(os.path.join(out, "results.json")).read())["sessions"] == [session]


def test_a_diverged_model_is_left_out_and_counted(tmp_path):
    records = grid_records(table3_values())
    bad = next(r for r in records if (r["conv"], r["fc"], r["fold"]) == ("AReLU", "AGumb", 4))
    bad["diverged"] = True  # Table 3's folds.csv says so in its diverged column
    run = read_run(make_run(tmp_path / "run", "table3", "quick", records))
    r = _by_label(run)[("accuracy", "AReLU/AGumb - ReLU/ReLU")]
    assert r["ours"]["n"] == 4 and r["ours"]["excluded"] == 1
    assert "| 0 / 0 / 4 (excluded 1) |" in status_markdown([run])


def test_comparisons_among_a_runs_own_cells():
    """results.json compares the run's cells: an activation the paper lacks (Swish) gets no paper value, and a
    grid without ReLU/ReLU has only the row and column comparisons left."""
    exp = get_experiment("table3")
    cfg = resolve_config(exp.config_class, {"conv_acts": ["ReLU", "AGumb"], "fc_acts": ["ReLU", "Swish"]})
    labels = [c.label for c in exp.comparisons(exp.rows(cfg), exp.columns(cfg))]
    assert labels == ["ReLU/Swish - ReLU/ReLU", "AGumb/ReLU - ReLU/ReLU", "AGumb/Swish - ReLU/ReLU",
                      "AGumb/Swish - AGumb/ReLU", "AGumb/Swish - ReLU/Swish"]
    recs = [{"row": c, "column": f, "draw": 0, "fold": k, "accuracy": 0.7 + 0.01 * k, "majority_rate": 0.5}
            for c in ("ReLU", "AGumb") for f in ("ReLU", "Swish") for k in range(3)]
    paired = exp.paired(cfg, recs)
    assert [c["paper"] for c in paired["comparisons"]] == [None, -26.8, None, None, None]
    section = "\n".join(exp.paired_section({"paired": paired}))
    assert "| ReLU/Swish - ReLU/ReLU | vs ReLU/ReLU | n/a | +0.00 ± 0.00 | [+0.00, +0.00] | 0 / 0 / 3 | no paper value | - |" in section
    assert [c.label for c in exp.comparisons(["AGumb"], ["ReLU", "AGumb"])] == ["AGumb/AGumb - AGumb/ReLU"]


def test_the_committed_reproduction_status_is_what_its_archives_generate(monkeypatch):
    """docs/REPRODUCTION.md is generated, never edited: its own regenerate command, run on the archives in
    docs/runs with this version, gives it byte for byte (a change of the status code or of an archive without
    regenerating it fails here)."""
    import shlex

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    doc = os.path.join(root, "docs", "REPRODUCTION.md")
    if not os.path.isfile(doc):
        pytest.skip("no docs/REPRODUCTION.md in this tree")
    text = open(doc, encoding="utf-8").read()
    command = next(line.strip() for line in text.splitlines() if line.strip().startswith("actadapt report --status"))
    argv = shlex.split(command)[1:]
    assert argv[-2:] == ["--out", "docs/REPRODUCTION.md"] and "--archive" not in argv
    monkeypatch.chdir(root)
    runs = [read_run(p) for p in argv[2:-2]]
    assert all(p.startswith("docs/runs/") for p in argv[2:-2])  # archives in the repository, not run folders
    assert status_markdown(runs, out="docs/REPRODUCTION.md") + "\n" == text
