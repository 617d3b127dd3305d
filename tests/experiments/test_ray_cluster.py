"""``--executor ray`` against real Ray on this machine (slow: each Ray start takes several seconds).

* A cluster started by each test (``ray start --head --block`` with 2 CPUs, in a session of its own, stopped
  at the end of the test): Tables 1 and 4 give the sequential executor's results; a worker process killed while it
  runs a task is replaced and the task retried; a Python error in a task is not retried and stops the run.
* A local instance started by the run itself (no ``--address``): the driver killed with ``kill -9`` leaves
  no Ray process behind, and the same command then runs only the missing tasks; SIGTERM and Ctrl-C stop
  the run with the usual line and stop the instance.

Ray's files go to a short temp folder (``RAY_TMPDIR``, also the workers' ``TMPDIR``), removed at the end; the
tests use a token of their own (``RAY_AUTH_TOKEN``). Only processes these tests started are signalled, by
PID: members of the test cluster's session, or of the sessions of the runs they started.
"""

import contextlib
import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from actadapt.experiments.runner import reproduce

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the Ray processes through /proc")]

LONG = ["--set", "depths=1,2,3", "--set", "epochs=40"]  # 6 tasks of a few seconds each
DONE = "rerun the same command to resume (finished folds are kept)"


def _quiet(*a, **k):
    pass


def _tasks_done(text):
    """The tasks a run's "task ... done" lines name."""
    return re.findall(r"^  task (\S+) done in ", text, flags=re.M)


# ------------------------------------------------------------------------------------------ processes
def _proc_table():
    """``{pid: (state, ppid, session id, command line)}`` of every process, from /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        out[int(name)] = (fields[0], int(fields[1]), int(fields[3]), cmd)  # state, ppid, (pgrp,) session
    return out


def _alive(pids):
    """Those of ``pids`` still running (a zombie is dead)."""
    table = _proc_table()
    return sorted(p for p in pids if p in table and table[p][0] != "Z")


def _session(sid):
    """Living processes of session ``sid``."""
    return sorted(p for p, (state, _, s, _) in _proc_table().items() if s == sid and state != "Z")


def _tree(pid):
    """``pid``'s living descendants, and every process in the session of each (a Ray keeper's session holds
    the Ray processes it started, whoever their parent is now)."""
    table = _proc_table()
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for p, (state, ppid, sid, _) in table.items():
            if state != "Z" and p not in found and (ppid == parent or (sid == parent and p != pid)):
                found.add(p)
                todo.append(p)
    return sorted(found)


def _kill(pids):
    for pid in _alive(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait_gone(pids, timeout=60):
    deadline = time.time() + timeout
    while _alive(pids) and time.time() < deadline:
        time.sleep(0.1)
    return _alive(pids)


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def ray_env():
    """The environment of every process here: Ray's files in a short temp folder (its socket paths must stay
    under 108 characters), the workers' scratch folders there too, a token of our own, no usage report."""
    root = tempfile.mkdtemp(prefix="ar", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": root, "TMPDIR": root, "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0",
           "ACTADAPT_BACKEND": "eager", "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    yield env, root
    shutil.rmtree(root, ignore_errors=True)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(ray_env):
    """A one-node Ray cluster of 2 CPUs for one test, as the README starts one: ``ray start --head`` (with
    ``--block``, so that stopping it is ending one process we started); yields its address and session id.
    On the way out it is stopped, and none of its processes may be left."""
    env, root = ray_env
    port = _free_port()
    log_path = os.path.join(root, "head.log")
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    with open(log_path, "w") as log:
        head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--num-cpus", "2",
                                 "--node-ip-address", "127.0.0.1", "--port", str(port),
                                 "--include-dashboard", "false", "--disable-usage-stats"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.time() + 180
        while "Ray runtime started" not in open(log_path).read():
            assert head.poll() is None and time.time() < deadline, open(log_path).read()
            time.sleep(0.2)
        yield {"address": f"127.0.0.1:{port}", "session": head.pid}
    finally:
        head.terminate()  # `ray start --block` stops its Ray processes on SIGTERM
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(60)
        left = _session(head.pid)  # only processes of the session our Popen made
        _kill(left + [head.pid])
        head.wait()
        assert _wait_gone(left, 30) == [], "a Ray process of the test cluster is still running"


def _cli(out, *args):
    return [sys.executable, "-m", "actadapt", "reproduce", "table1", "--preset", "smoke", "--out", str(out),
            "--set", "backend=eager", "--executor", "ray", *args]


def _reference(tmp_path, table, overrides, name="sequential"):
    """The sequential executor's run of the same config, in this process."""
    out = str(tmp_path / name)
    reproduce(table, "smoke", out, overrides={"backend": "eager", **overrides}, workers=1, progress=False,
              log=_quiet)
    return out


def _records(run):
    """``{record path: record without its timing}`` of a run folder (timings are the only fields that differ
    between two runs of one config)."""
    out = {}
    for top, _, files in os.walk(os.path.join(run, "folds")):
        for name in files:
            with open(os.path.join(top, name)) as fh:
                out[name] = {k: v for k, v in json.load(fh).items() if not k.endswith("seconds")}
    return out


def _results(run):
    """results.json without ``sessions`` (when each ``reproduce`` call ran, its wall time and workers: the only
    part that differs between two runs of one config)."""
    with open(os.path.join(run, "results.json")) as fh:
        results = json.load(fh)
    assert isinstance(results.pop("sessions", None), list)
    return results


def _folds_csv(run):
    """folds.csv's rows (as text, in order) without its timing columns."""
    with open(os.path.join(run, "folds.csv"), newline="") as fh:
        return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in csv.DictReader(fh)]


def _assert_same_results(run, ref):
    """results.json (all but its sessions), folds.csv (all but its timing columns) and every record but its
    timing, value for value."""
    assert _results(run) == _results(ref)
    if os.path.exists(os.path.join(ref, "folds.csv")):
        assert _folds_csv(run) == _folds_csv(ref) and _folds_csv(ref)
    assert _records(run) == _records(ref) and _records(ref)


def _overrides(args):
    return dict(a.split("=", 1) for a in args[1::2])


# ------------------------------------------------------------------------------------------ on a cluster
def test_tables_1_and_4_through_ray_give_the_sequential_results(cluster, ray_env, tmp_path):
    from actadapt.experiments.data.url_sessions import generate_sessions, write_sessions

    env, root = ray_env
    res = subprocess.run(_cli(tmp_path / "t1", "--address", cluster["address"]), env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ray: joined the Ray cluster at " in res.stdout and "(2 CPUs on 1 node(s))" in res.stdout
    assert len(_tasks_done(res.stdout)) == 4  # the "task done" lines, as with the local executors
    _assert_same_results(str(tmp_path / "t1"), _reference(tmp_path, "table1", {}))

    sessions = write_sessions(str(tmp_path / "sessions.jsonl"), generate_sessions(200, seed=4))
    t4 = {"input": sessions, "sample": "0"}
    cmd = [sys.executable, "-m", "actadapt", "reproduce", "table4", "--preset", "smoke", "--out",
           str(tmp_path / "t4"), "--executor", "ray", "--address", cluster["address"],
           "--set", "backend=eager", *[a for k, v in t4.items() for a in ("--set", f"{k}={v}")]]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    _assert_same_results(str(tmp_path / "t4"), _reference(tmp_path, "table4", t4, "t4-sequential"))
    assert not [n for n in os.listdir(root) if n.startswith("actadapt-scratch-")]  # the workers cleaned up


def test_a_killed_worker_process_is_replaced_and_its_task_retried(cluster, ray_env, tmp_path):
    env, root = ray_env
    log = tmp_path / "run.log"
    with open(log, "w") as fh:
        run = subprocess.Popen(_cli(tmp_path / "run", "--address", cluster["address"], *LONG), env=env,
                               stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        victim = None
        deadline = time.time() + 240
        while victim is None and time.time() < deadline:  # a worker running a task: `ray::actadapt:TASK`
            assert run.poll() is None, log.read_text()
            busy = [p for p, (st, _, sid, cmd) in _proc_table().items()
                    if sid == cluster["session"] and st != "Z" and cmd.startswith("ray::actadapt:")]
            victim = busy[0] if busy else None
            time.sleep(0.05)
        assert victim is not None, "no worker ran a task in time"
        os.kill(victim, signal.SIGKILL)
        assert run.wait(timeout=600) == 0, log.read_text()
    finally:
        _kill([run.pid, *_session(run.pid)])
    text = log.read_text()
    print(text)  # the fault test's output, for the record (pytest -s)
    assert f"Worker PID: {victim}" in text and "so the task will be retried" in text
    assert sorted(_tasks_done(text)) == ["d1-ReLU", "d1-Sig", "d2-ReLU", "d2-Sig", "d3-ReLU", "d3-Sig"]
    _assert_same_results(str(tmp_path / "run"), _reference(tmp_path, "table1", _overrides(LONG)))
    assert not [n for n in os.listdir(root) if n.startswith("actadapt-scratch-")]  # the dead worker's too


PYTHON_ERROR = textwrap.dedent("""
    import json, sys, time
    from actadapt.experiments.config import config_to_dict, resolve_config
    from actadapt.experiments.executors import Job, SequentialExecutor
    from actadapt.experiments.ray_executor import RayExecutor
    from actadapt.experiments.registry import get_experiment

    address, run_dir, kind = sys.argv[1:]
    stop = RayExecutor.shutdown

    def shutdown_later(self):  # stay connected a while: Ray's messages about the tasks reach this driver
        if self._conn is not None:
            time.sleep(4)
        stop(self)

    RayExecutor.shutdown = shutdown_later
    exp = get_experiment("table1")
    cfg = resolve_config(exp.config_class, exp.presets["smoke"], {"backend": "eager"})
    tasks = sorted(exp.tasks(cfg), key=lambda t: t.id)
    good = [Job(exp.name, config_to_dict(cfg), t.id, t.params, tuple(t.outputs), run_dir) for t in tasks]
    bad = Job(exp.name, {**good[1].config, "lr": -1.0}, "bad", good[1].task_params, good[1].task_outputs,
              run_dir)
    executor = RayExecutor(address=address, workers=1) if kind == "ray" else SequentialExecutor()
    done, error = [], None
    try:
        for job, seconds in executor.run([good[0], bad, good[2]]):
            done.append(job.task_id)
    except Exception as err:
        error = [type(err).__name__, str(err), type(err.__cause__).__name__]
    print(json.dumps({"done": done, "error": error}))
""")


def test_a_python_error_in_a_task_is_not_retried_and_stops_the_run(cluster, ray_env, tmp_path):
    env, _ = ray_env
    runs = {}
    for kind in ("ray", "sequential"):
        res = subprocess.run([sys.executable, "-c", PYTHON_ERROR, cluster["address"], str(tmp_path / kind),
                              kind], env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        runs[kind] = json.loads(res.stdout.strip().splitlines()[-1]), res.stdout + res.stderr
    (ray_run, ray_output), (seq_run, _) = runs["ray"], runs["sequential"]
    first = sorted(os.listdir(tmp_path / "sequential" / "folds"))
    assert seq_run["done"] == ray_run["done"] and len(ray_run["done"]) == 1  # the job before it finished
    assert ray_run["error"][:2] == seq_run["error"][:2]  # the same error: the CLI prints the same line
    assert ray_run["error"][0] == "ConfigError" and "'lr'" in ray_run["error"][1]
    assert ray_run["error"][2] == "_RemoteTraceback"  # with the worker's traceback attached
    assert sorted(os.listdir(tmp_path / "ray" / "folds")) == first  # what finished is kept, nothing after it
    assert "will be retried" not in ray_output, ray_output  # Ray announces each retry on the driver


# ------------------------------------------------------------------------------------------ local instance
def _first_task_done(run, log, timeout=300):
    deadline = time.time() + timeout
    while not _tasks_done(log.read_text()):
        assert run.poll() is None, log.read_text()
        assert time.time() < deadline, "no task finished in time"
        time.sleep(0.05)


@contextlib.contextmanager
def _running(env, tmp_path, *args):
    """The run (its own local Ray instance) in a session of its own, past its first finished task; yields the
    process and its Ray processes (the keeper and the instance's). On the way out, whatever of them is still
    alive (only ours) is killed by PID."""
    out, log = tmp_path / "run", tmp_path / "run.log"
    with open(log, "w") as fh:
        run = subprocess.Popen(_cli(out, *args), env=env, stdout=fh, stderr=subprocess.STDOUT,
                               start_new_session=True)
    started = []
    try:
        _first_task_done(run, log)
        started = _tree(run.pid)
        yield run, started
    finally:
        _kill([run.pid, *_session(run.pid), *_tree(run.pid), *started])
        run.wait()


def test_kill_9_of_the_driver_leaves_no_ray_process_and_a_rerun_runs_only_the_missing_tasks(ray_env,
                                                                                             tmp_path):
    env, _ = ray_env
    out = tmp_path / "run"
    with _running(env, tmp_path, *LONG) as (run, started):
        commands = [_proc_table().get(p, ("", 0, 0, ""))[3] for p in started]
        assert any("ray_instance" in c for c in commands) and any("raylet" in c for c in commands)
        run.kill()
        run.wait()
        assert _wait_gone(started) == [], "a Ray process outlived the killed driver"
    before = sorted(os.listdir(out / "folds"))
    time.sleep(1)
    assert sorted(os.listdir(out / "folds")) == before  # nothing writes into the run folder any more

    res = subprocess.run(_cli(out, *LONG), env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    finished = int(res.stdout.split(" of 6 tasks already done")[0].rsplit(" ", 1)[1])
    assert 1 <= finished < 6 and len(_tasks_done(res.stdout)) == 6 - finished
    _assert_same_results(str(out), _reference(tmp_path, "table1", _overrides(LONG)))


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_run_and_its_local_ray_instance(ray_env, tmp_path, how):
    """SIGINT goes to the whole process group, as a terminal's Ctrl-C does."""
    env, _ = ray_env
    with _running(env, tmp_path, *LONG) as (run, started):
        if how == "SIGINT":
            os.killpg(run.pid, signal.SIGINT)
        else:
            run.send_signal(signal.SIGTERM)
        code = run.wait(timeout=120)
        assert _wait_gone(started, 30) == [], "a Ray process outlived the run"
    text = (tmp_path / "run.log").read_text()
    assert code == 128 + getattr(signal, how), text
    expected = "interrupted" if how == "SIGINT" else f"stopped by {how}"
    assert text.strip().splitlines()[-1] == f"actadapt: {expected}; {DONE}"
    assert "Traceback" not in text and not (tmp_path / "run" / ".actadapt.lock").exists()
