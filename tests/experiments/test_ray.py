"""The Ray executor's parts that need no cluster: options, the missing-Ray error, jobs run against a scratch
folder and written back by the driver, the checks a task makes on its node, and Ray's errors sorted out.

Runs against a real Ray cluster are in test_ray_cluster.py (slow).
"""

import json
import os
import subprocess
import sys

import pytest

from actadapt.cli import main
from actadapt.experiments.config import ConfigError, config_hash, config_to_dict, resolve_config
from actadapt.experiments.executors import Job, execute_job, execute_job_in_scratch, write_job_files
from actadapt.experiments.registry import get_experiment
from actadapt.experiments.rundir import RunFolderError
from actadapt.experiments.runner import hashed_config, task_done


def _job(run_dir, index=0, **overrides):
    """Job ``index`` of Table 1's smoke preset (eager backend), as the runner makes it."""
    exp = get_experiment("table1")
    cfg = resolve_config(exp.config_class, exp.presets["smoke"], {"backend": "eager", **overrides})
    task = sorted(exp.tasks(cfg), key=lambda t: t.id)[index]
    job = Job(exp.name, config_to_dict(cfg), task.id, task.params, tuple(task.outputs), str(run_dir))
    return job, cfg, task


def _tree(root):
    """``{relative path: parsed JSON without its timing}`` of the records under ``root``."""
    out = {}
    for top, _, files in os.walk(root):
        for name in files:
            path = os.path.join(top, name)
            with open(path) as fh:
                rec = json.load(fh)
            out[os.path.relpath(path, root)] = {k: v for k, v in rec.items() if not k.endswith("seconds")}
    return out


# ------------------------------------------------------------------------------------------ CLI
def test_without_ray_the_ray_executor_is_one_line_saying_what_to_install(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "run"
    code = main(["reproduce", "table1", "--preset", "smoke", "--executor", "ray", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("actadapt: error: --executor ray needs Ray")
    assert "pip install 'actadapt[ray]'" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()  # nothing written


def test_address_without_the_ray_executor_is_one_line(capsys, tmp_path):
    code = main(["reproduce", "table1", "--preset", "smoke", "--address", "auto", "--out",
                 str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err == "actadapt: error: --address auto is the address of a Ray cluster: it needs " \
                                "--executor ray\n"
    assert not (tmp_path / "r").exists()


def test_the_executor_options_are_in_the_help():
    res = subprocess.run([sys.executable, "-m", "actadapt", "reproduce", "--help"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, timeout=120)
    assert res.returncode == 0
    assert "--executor {local,ray}" in res.stdout and "--address ADDR" in res.stdout


# ------------------------------------------------------------------------------------------ scratch folders
def test_a_job_run_in_scratch_and_written_by_the_driver_equals_a_job_run_in_place(tmp_path):
    job, cfg, task = _job(tmp_path / "in-place")
    execute_job(job)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    seconds, files = execute_job_in_scratch(job, str(scratch))
    assert seconds > 0
    assert sorted(files) == sorted(task.outputs)  # Table 1's task writes its fold records and nothing else
    driver = tmp_path / "driver"
    write_job_files(Job(**{**job.__dict__, "run_dir": str(driver)}), files)
    assert _tree(driver) == _tree(tmp_path / "in-place")
    assert task_done(str(driver), task, config_hash(hashed_config(cfg)))
    assert len(os.listdir(tmp_path / "in-place" / "folds")) == len(task.outputs)  # it compared something


@pytest.mark.parametrize("name", ["../escape.json", "/abs.json", "config.json", ".actadapt.lock",
                                  "folds/./x.json", "folds/.x.json.actadapt-tmp-12"])
def test_a_returned_file_a_task_may_not_write_is_refused_before_anything_is_written(tmp_path, name):
    job, _, task = _job(tmp_path / "run")
    files = {task.outputs[0]: b"{}", name: b"{}"}
    with pytest.raises(RunFolderError, match=f"task {job.task_id} returned the file"):
        write_job_files(job, files)
    assert not (tmp_path / "run").exists() and not (tmp_path / "escape.json").exists()


def test_a_task_that_does_not_write_its_outputs_fails(tmp_path, monkeypatch):
    from actadapt.experiments import executors

    job, _, _ = _job(tmp_path / "run")
    monkeypatch.setattr(executors, "execute_job", lambda job, progress=None: 0.0)  # writes nothing
    with pytest.raises(RuntimeError, match=f"task {job.task_id} finished without writing folds/"):
        execute_job_in_scratch(job, str(tmp_path))


def test_the_declared_outputs_are_written_last(tmp_path, monkeypatch):
    from actadapt.experiments import rundir

    job, _, task = _job(tmp_path / "run")
    order = []
    real = rundir.atomic_write
    monkeypatch.setattr(rundir, "atomic_write",
                        lambda path, *a, **k: (order.append(path), real(path, *a, **k)))
    write_job_files(job, {**{o: b"{}" for o in task.outputs}, "checkpoints/x.pt": b"state"})
    assert order[0].endswith(os.path.join("checkpoints", "x.pt")) and len(order) == len(task.outputs) + 1


# ------------------------------------------------------------------------------------------ on the node
def _driver(**overrides):
    import torch

    import actadapt

    return {"actadapt": actadapt.__version__, "torch": torch.__version__, "backend": "eager",
            "cwd": os.getcwd(), **overrides}


def test_a_task_returns_its_files_and_leaves_no_scratch_folder(tmp_path, monkeypatch):
    import tempfile

    from actadapt.experiments.ray_executor import run_on_node

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    job, _, task = _job("/nonexistent/driver/run")  # the driver's folder is never touched on a node
    out = run_on_node(job, _driver())
    assert sorted(out["files"]) == sorted(task.outputs) and out["seconds"] > 0
    assert os.listdir(tmp_path) == []


def test_a_node_with_other_versions_fails_with_one_line(tmp_path):
    from actadapt.experiments.ray_executor import run_on_node

    job, _, _ = _job(tmp_path)
    with pytest.raises(ConfigError, match=r"^Ray node \S+ has actadapt .* with torch .*, the driver actadapt "
                                          r"0\.0\.1 with torch .*: install the same versions on every node$"):
        run_on_node(job, _driver(actadapt="0.0.1"))


def test_a_node_without_the_data_root_fails_with_one_line(tmp_path):
    from actadapt.experiments.ray_executor import run_on_node

    job, _, _ = _job(tmp_path)
    job = Job(**{**job.__dict__, "config": {**job.config, "data_dir": str(tmp_path / "missing")}})
    with pytest.raises(ConfigError, match=r"data root '.*missing' is not a folder on Ray node \S+: "
                                          "every node needs the data root at the same path"):
        run_on_node(job, _driver())


def test_the_data_root_travels_as_an_absolute_path(tmp_path, monkeypatch):
    from actadapt.experiments.ray_executor import _for_node

    monkeypatch.chdir(tmp_path)
    job, _, _ = _job(tmp_path)
    assert _for_node(job) is job  # no data root: as it is
    moved = _for_node(Job(**{**job.__dict__, "config": {**job.config, "data_dir": "data"}}))
    assert moved.config["data_dir"] == str(tmp_path / "data")


def test_scratch_folders_of_dead_workers_are_cleaned_and_nothing_else(tmp_path):
    from actadapt.experiments.ray_executor import SCRATCH_PREFIX, _clean_stale_scratch

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{SCRATCH_PREFIX}{dead.pid}-abc"
    (stale / "folds").mkdir(parents=True)
    (stale / "folds" / "r.json").write_text("{}")
    alive = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-abc"  # a task running now
    alive.mkdir()
    other = tmp_path / f"{SCRATCH_PREFIX}{dead.pid}-abc.txt"  # not a name the executor makes
    other.write_text("user file")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("x")
    link = tmp_path / f"{SCRATCH_PREFIX}{dead.pid}-lnk"
    link.symlink_to(target)
    _clean_stale_scratch(str(tmp_path))
    assert not stale.exists()
    assert alive.is_dir() and other.read_text() == "user file"
    assert link.is_symlink() and (target / "keep").exists()


# ------------------------------------------------------------------------------------------ Ray's errors
def test_ray_errors_are_sorted_out():
    ray = pytest.importorskip("ray")
    from actadapt.experiments.executors import WorkerDied, _RemoteTraceback
    from actadapt.experiments.ray_executor import RayExecutor

    job, _, _ = _job("/run")
    executor = RayExecutor(max_retries=3)

    def task_error(cause, text):
        return ray.exceptions.RayTaskError("run_on_node", text, cause).as_instanceof_cause()

    own = ConfigError("config key 'lr': expected a value >= 0.0, got -1.0")
    err = executor._error(ray, job, task_error(own, "Traceback ...\nConfigError: config key 'lr'"))
    assert err is own and isinstance(err.__cause__, _RemoteTraceback)  # the CLI prints it as one line
    lost = executor._error(ray, job, ray.exceptions.WorkerCrashedError())
    assert isinstance(lost, WorkerDied)
    assert str(lost).startswith(f"task {job.task_id} was lost on Ray (WorkerCrashedError: ")
    assert str(lost).endswith("; a task whose worker or node is lost runs again up to 3 times); rerun the "
                              "same command to resume (finished tasks are kept)")
    assert "\n" not in str(lost)
    old_node = RuntimeError("The remote function failed to import on the worker.")
    text = ("RuntimeError: The remote function failed to import\n"
            "ModuleNotFoundError: No module named 'actadapt.x'")
    err = executor._error(ray, job, task_error(old_node, text))
    assert isinstance(err, ConfigError) and str(err) == (
        "a Ray node cannot run actadapt's tasks (ModuleNotFoundError: No module named 'actadapt.x'): install "
        "the same actadapt and torch on every node as on the driver")


def _cluster(*nodes):
    """A stand-in for the ``ray`` module that answers ``ray.nodes()`` with these (CPUs, memory) nodes."""
    import types

    listed = [{"Alive": True, "Resources": {"CPU": c, "memory": m}} for c, m in nodes]
    listed.append({"Alive": False, "Resources": {"CPU": 64.0, "memory": 2.0**40}})  # a dead node counts not
    return types.SimpleNamespace(nodes=lambda: listed)


def test_tasks_in_flight_are_what_the_nodes_hold_by_cpus_and_memory():
    from actadapt.experiments.ray_executor import _capacity

    gib = 2.0**30
    assert _capacity(_cluster((2.0, 8 * gib), (8.0, 8 * gib)), 1, 0, "head:6379") == 10
    assert _capacity(_cluster((2.0, 8 * gib), (8.0, 8 * gib)), 2, 0, "head:6379") == 5
    assert _capacity(_cluster((2.0, 8 * gib), (8.0, 8 * gib)), 1, int(3 * gib), "head:6379") == 4  # 2 + 2


def test_a_task_no_node_can_take_is_one_line():
    from actadapt.experiments.ray_executor import _capacity

    expected = (r"^each task asks for 4 CPU\(s\) and 1\.0 GiB of memory \(config key 'threads': 4\), but no "
                r"node of the Ray cluster at head:6379 has that much \(the largest: 2 CPU\(s\), 8\.0 GiB of "
                r"memory\); lower threads or add a larger node$")
    with pytest.raises(ConfigError, match=expected):
        _capacity(_cluster((2.0, 8 * 2.0**30)), 4, 2**30, "head:6379")
