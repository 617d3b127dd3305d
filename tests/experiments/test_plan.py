"""``actadapt plan`` (src/actadapt/experiments/plan.py): the run's tasks, the extrapolation, nothing written."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from actadapt.cli import main
from actadapt.experiments import plan as planning
from actadapt.experiments.data.url_sessions import generate_sessions, write_sessions
from actadapt.experiments.probe import StepProbe
from actadapt.experiments.registry import get_experiment
from actadapt.experiments.runner import reproduce


@pytest.fixture
def private_temp(tmp_path, monkeypatch):
    """The system temp folder, for this test only: where a plan makes its scratch folders."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _ran_tasks(table, preset, out, overrides=None):
    """The ids of the tasks that ``reproduce`` runs, from its ``task ... done`` lines."""
    lines = []
    reproduce(table, preset, str(out), overrides=overrides, workers=1, progress=False, log=lines.append)
    return sorted(line.split()[1] for line in lines if line.startswith("  task "))


def _records(out):
    return sorted(os.path.join(top, n) for top, _, names in os.walk(out) for n in names
                  if n.endswith(".json") and os.path.basename(top) in ("folds", "cells"))


# ----------------------------------------------------------------------- the plan is the run's own tasks
def test_the_plan_of_table1_smoke_is_the_runs_tasks_and_trainings(tmp_path, private_temp):
    found = planning.make_plan("table1", "smoke", log=lambda line: None)
    ran = _ran_tasks("table1", "smoke", tmp_path / "run")
    assert sorted(t for k in found.kinds for t in k.task_ids) == ran
    assert found.tasks == 4 and found.trainings == len(_records(tmp_path / "run")) == 80  # 1 draw x 4 x 5 folds per row
    assert [k.label for k in found.kinds] == ["depth=1, teacher=Sig, epochs=2", "depth=1, teacher=ReLU, epochs=2",
                                              "depth=8, teacher=Sig, epochs=2", "depth=8, teacher=ReLU, epochs=2"]
    # a smoke row (8 steps x 2 epochs) ends within the 30-step probe: its measured time is the estimate
    for kind in found.kinds:
        assert kind.estimate.ran_whole and kind.estimate.seconds > 0 and kind.estimate.steps_per_epoch == 8
    assert found.cpu_hours == pytest.approx(sum(k.estimate.seconds for k in found.kinds) / 3600)
    assert not os.listdir(private_temp)  # every scratch folder deleted


def test_the_plan_of_table4_smoke_is_the_runs_tasks_and_trainings(tmp_path, private_temp):
    sessions = write_sessions(str(tmp_path / "s.jsonl"), generate_sessions(200, seed=4))
    overrides = {"input": sessions, "sample": 0, "embedding": "learned"}
    found = planning.make_plan("table4", "smoke", overrides=overrides, steps=2, log=lambda line: None)
    ran = _ran_tasks("table4", "smoke", tmp_path / "run", overrides)
    assert sorted(t for k in found.kinds for t in k.task_ids) == ran and len(ran) == 18  # 3 x 3 cells x 2 folds
    assert found.trainings == len(_records(tmp_path / "run")) == 18
    assert len(found.kinds) == 9 and all(len(k.task_ids) == 2 for k in found.kinds)  # a cell's folds: one kind
    # 2 probe steps of a one-epoch task: the probe cuts the epoch there, times its end and counts as stopped
    for kind in found.kinds:
        e = kind.estimate
        assert not e.ran_whole and e.epochs == 1 and e.epoch_end_seconds is not None
        assert e.seconds == pytest.approx(e.setup_seconds + e.steps_per_epoch * e.step_seconds + e.epoch_end_seconds)
    assert not os.listdir(private_temp)


# --------------------------------------------------------------------------------- the arithmetic
def _probe(steps, *, setup=2.0, per_epoch=100, epochs=10, ends=(), stopped=True, seconds=None):
    return StepProbe(max_steps=len(steps), setup_seconds=setup, step_seconds=list(steps), steps_per_epoch=per_epoch,
                     epochs=epochs, epoch_end_seconds=list(ends), stopped=stopped, seconds=seconds)


def test_the_estimate_extrapolates_setup_steps_and_epoch_ends():
    # warm-up steps (the first 5) are left out of the median: 1.0 s per step from there on
    e = planning.estimate_task(_probe([9, 5, 4, 3, 2, 1, 1, 3, 1, 0.5], ends=[3.0, 5.0]), warmup=5)
    assert (e.step_seconds, e.steps_timed, e.epoch_end_seconds) == (1.0, 5, 4.0)
    assert e.seconds == 2.0 + 100 * 10 * 1.0 + 10 * 4.0 and not e.ran_whole
    # no epoch end seen: steps and setup alone
    assert planning.estimate_task(_probe([1.0] * 8, ends=()), warmup=5).seconds == 2.0 + 1000 * 1.0
    # fewer steps than the warm-up: the median of all of them
    assert planning.estimate_task(_probe([4, 2, 3], per_epoch=3, epochs=1, ends=[1.0]), warmup=5).seconds == 2 + 3 * 3 + 1


def test_a_task_that_ran_whole_counts_its_measured_time_less_its_warm_up():
    e = planning.estimate_task(_probe([61, 2, 1, 1, 1, 1], stopped=False, seconds=90.0, per_epoch=3, epochs=2),
                               warmup=2)
    assert e.ran_whole and e.step_seconds == 1.0 and e.warmup_excess_seconds == 60 + 1  # 61 - 1 and 2 - 1
    assert e.seconds == 90.0 - 61


def test_the_wall_time_is_the_pool_schedule():
    assert planning.schedule_seconds([5, 3, 3, 1], 1) == 12
    assert planning.schedule_seconds([5, 3, 3, 1], 2) == 6  # 5 + 1 on one worker, 3 + 3 on the other
    assert planning.schedule_seconds([5, 3, 3, 1], 8) == 5  # the longest task
    assert planning.schedule_seconds([], 2) == 0


def test_a_plan_adds_its_kinds_up(private_temp):
    """Table 1's quick preset, planned with a fake probe: counts, CPU-hours and wall time are the sums."""
    per_kind = {"d1-Sig": 100.0, "d1-ReLU": 200.0, "d8-Sig": 3000.0, "d8-ReLU": 4000.0}

    def fake_probe(exp, cfg, task, steps):
        assert steps == 7 and task.params["epochs"] == {1: 100, 8: 40}[task.params["depth"]]
        epochs = task.params["epochs"]
        return _probe([per_kind[task.id] / (200 * epochs)] * 7, setup=0.0, per_epoch=200, epochs=epochs)

    found = planning.make_plan("table1", "quick", workers=2, steps=7, probe=fake_probe, log=lambda line: None)
    assert found.tasks == 4 and found.trainings == 240  # 3 draws x 4 students x 5 folds per row
    assert [k.estimate.seconds for k in found.kinds] == pytest.approx(list(per_kind.values()))
    assert found.cpu_hours == pytest.approx(7300 / 3600)
    assert found.order == ["d8-Sig", "d8-ReLU", "d1-Sig", "d1-ReLU"]  # the run's order: dearest (cost) first
    assert found.wall_seconds == pytest.approx(4000)  # 3000, 100 and 200 on one worker, 4000 on the other
    assert found.longest_seconds == pytest.approx(4000) and found.workers == 2
    text = planning.format_plan(found)
    assert "CPU-hours: 2.03 for 4 task(s)" in text and "wall time: 66.7 min of training with 2 worker(s)" in text
    one = planning.make_plan("table1", "quick", workers=1, steps=7, probe=fake_probe, log=lambda line: None)
    assert one.wall_seconds == pytest.approx(7300) and one.cpu_hours == found.cpu_hours
    assert "240 training(s)" in text and "memory: 103.1 MiB per task" in text
    json.dumps(found.to_dict())  # --json


# ---------------------------------------------------------------------------------------- the command
def test_plan_writes_nothing_but_its_output(tmp_path, private_temp, monkeypatch, capsys):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert main(["plan", "table1", "--preset", "smoke", "--set", "depths=1", "--json"]) == 0
    out, err = capsys.readouterr()
    found = json.loads(out)
    assert found["tasks"] == 2 and found["trainings"] == 40 and found["cpu_hours"] > 0
    assert "probing d1-Sig" in err
    assert not os.listdir(cwd) and not os.listdir(private_temp)  # no runs/ folder, no scratch left


@pytest.mark.parametrize("args", [["--set", "epochs=x"], ["--set", "epcohs=3"], ["--preset", "fast"],
                                  ["--set", "n_samples=nan"]])
def test_bad_input_is_the_one_line_error_of_reproduce(tmp_path, capsys, args):
    assert main(["reproduce", "table1", "--out", str(tmp_path / "r"), *args]) == 2
    expected = capsys.readouterr().err
    assert main(["plan", "table1", *args]) == 2
    err = capsys.readouterr().err
    assert err == expected and err.startswith("actadapt: error: ") and err.count("\n") == 1


def test_missing_data_is_the_error_of_reproduce(tmp_path, private_temp, monkeypatch, capsys):
    monkeypatch.delenv("ACTADAPT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "table2", "--preset", "smoke", "--workers", "1", "--out", str(tmp_path / "r")]) == 2
    expected = capsys.readouterr().err
    assert main(["plan", "table2", "--preset", "smoke"]) == 2  # found by the first probe, as by the first task
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == expected.strip() and "no MNIST data folder" in err[-1] and expected.count("\n") == 1
    assert all(line.startswith("probing ") for line in err[:-1])
    assert not os.listdir(private_temp)


@pytest.mark.parametrize("stop, code, says", [(KeyboardInterrupt, 130, "interrupted"),
                                              ("SIGTERM", 143, "stopped by SIGTERM")])
def test_a_stopped_plan_exits_cleanly_and_leaves_no_scratch(tmp_path, private_temp, monkeypatch, capsys, stop,
                                                            code, says):
    import signal

    from actadapt.experiments.lifecycle import RunInterrupted

    seen = []

    def interrupted(cfg, task, run_dir, progress=None):
        with open(os.path.join(run_dir, "partial.json"), "w") as fh:  # something the probe wrote
            fh.write("{}")
        seen.append(run_dir)
        raise stop() if stop is KeyboardInterrupt else RunInterrupted(getattr(signal, stop))

    monkeypatch.setattr(get_experiment("table1"), "run_task", interrupted)
    assert main(["plan", "table1", "--preset", "smoke"]) == code
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"actadapt: {says}; nothing was written (the probes' scratch folder is deleted)"
    assert seen and not os.path.exists(seen[0]) and not os.listdir(private_temp)
