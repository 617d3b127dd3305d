"""Table 1 (src/actadapt/experiments/tables/table1.py): teacher redraws, the quick preset's teachers, and Figures 3-4
drawn only from students that learned. The run-folder machinery is tested on Table 1 in ../test_runner.py."""

import os

from actadapt.experiments.config import resolve_config
from actadapt.experiments.runner import reproduce
from actadapt.experiments.tables.table1 import PRESETS, Table1, Table1Config


def test_max_majority_redraws_one_sided_teachers(tmp_path):
    exp = Table1()
    base = resolve_config(Table1Config, PRESETS["smoke"], {"n_samples": 400})
    capped = resolve_config(Table1Config, PRESETS["smoke"], {"n_samples": 400, "max_majority": 0.8})
    redraws = 0
    for draw in range(6):
        X0, y0, _, r0 = exp.data(base, 1, "Sig", draw)
        X1, y1, _, r1 = exp.data(capped, 1, "Sig", draw)
        assert r0 == 0
        rate = max(float(y1.double().mean()), 1 - float(y1.double().mean()))
        assert rate <= 0.8
        if r1 == 0:  # kept the first draw: the same data as without the cap
            assert max(float(y0.double().mean()), 1 - float(y0.double().mean())) <= 0.8 and (X0 == X1).all()
        redraws += r1 > 0
    assert redraws > 0  # 1-layer sigmoid teachers under the sign rule are often one-sided
    # impossible (8-layer sigmoid teachers are constant): the least one-sided draw is kept, no error
    deep = resolve_config(Table1Config, PRESETS["smoke"], {"n_samples": 100, "max_majority": 0.6})
    _, _, _, r = exp.data(deep, 8, "Sig", 0)
    assert 0 <= r <= 50


def test_the_quick_preset_draws_no_teacher_above_95_percent():
    # the quick preset's teachers at a tenth of its sample size (the rates barely depend on it): every one of the
    # 12 draws is at most 95% one class; the 8-layer sigmoid teachers needed redraws (about 1 in 100 is not
    # (nearly) constant)
    cfg = resolve_config(Table1Config, PRESETS["quick"], {"n_samples": 500})
    assert (cfg.max_majority, cfg.max_redraws) == (0.95, 1000)
    exp, redraws = Table1(), {}
    for depth in cfg.depths:
        for teacher in cfg.teachers:
            for draw in range(cfg.draws):
                _, y, _, redraw = exp.data(cfg, depth, teacher, draw)
                p = float(y.double().mean())
                assert max(p, 1 - p) <= 0.95, (depth, teacher, draw)
                redraws[(depth, teacher, draw)] = redraw
    assert all(redraws[(8, "Sig", d)] > 0 for d in range(cfg.draws))


def _run(tmp_path, **over):
    return reproduce("table1", "smoke", str(tmp_path / "run"), progress=False, log=lambda *a: None,
                     overrides={"teachers": "ReLU", "draws": 2, "folds": 2, **over})


def test_figures_3_4_come_from_the_deep_student_that_learned_most(tmp_path):
    res = _run(tmp_path, depths="1,2", students="AGumb,AReLU", n_samples=400, epochs=30, lr=0.1, max_majority=0.8)
    recs = Table1().records(resolve_config(Table1Config, PRESETS["smoke"], {
        "teachers": "ReLU", "draws": 2, "folds": 2, "depths": "1,2", "students": "AGumb,AReLU", "n_samples": 400,
        "epochs": 30, "lr": 0.1, "max_majority": 0.8}), str(tmp_path / "run"))
    report = open(tmp_path / "run" / "report.md").read()
    for num, student in ((3, "AGumb"), (4, "AReLU")):
        pick = res["figure_students"][student]
        deep = [r for r in recs if r["depth"] == 2 and r["student"] == student]
        best = max(r["accuracy"] - r["majority_rate"] for r in deep)
        assert best > 0 and pick["accuracy"] - pick["majority_rate"] == best  # it learned, and most of all
        assert os.path.getsize(tmp_path / "run" / "figures" / f"fig{num}_{student.lower()}_curves.png") > 1000
        assert f"draw {pick['draw']}, fold {pick['fold']}, accuracy {100 * pick['accuracy']:.1f}%" in report
    assert "Teachers redrawn because their labels' majority-class rate was above 0.8" in report


def test_a_teacher_still_one_sided_after_its_redraws_is_named(tmp_path):
    # 8-layer sigmoid teachers are (nearly) constant; two redraws do not find another
    res = _run(tmp_path, depths="8", teachers="Sig", draws=1, max_majority=0.9, max_redraws=2, n_samples=100)
    (draw,) = res["teacher_draws"]
    assert draw["majority_rate"] > 0.9 and 0 <= draw["redraw"] <= 2
    report = open(tmp_path / "run" / "report.md").read()
    assert "Still above it after 2 redraws: 8/Sig draw 0" in report


def test_a_probe_times_a_rows_first_steps_without_writing_records(tmp_path):
    from actadapt.experiments.probe import probe_steps

    exp = Table1()
    cfg = resolve_config(Table1Config, PRESETS["smoke"])
    task = exp.tasks(cfg)[0]
    with probe_steps(3) as probe:
        exp.run_task(cfg, task, str(tmp_path))
    assert probe.stopped and len(probe.step_seconds) == 3
    assert probe.steps_per_epoch == 8 and probe.epochs == 2  # 160 training examples per fold, batch 20
    assert not os.path.exists(tmp_path / "folds")
