"""A run ends cleanly however it ends: Ctrl-C, SIGTERM, SIGHUP, kill -9 of the driver, a second run.

Each test starts the run as a subprocess in a session of its own, so the run's process group is the PID we
started, and finds its workers by PPID and process group. Only processes the test started are signalled.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from actadapt.cli import main

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the run's processes through /proc")

ENV = {**os.environ, "ACTADAPT_BACKEND": "eager", "PYTHONPATH": os.pathsep.join(sys.path)}
# 12 short tasks: the two workers are busy writing records when the driver is signalled
MANY = ["--set", "depths=1,2,3,4,5,6", "--set", "epochs=3", "--set", "backend=eager"]
LOCK_NAME = ".actadapt.lock"


def _processes():
    """``{pid: (state, ppid, process group)}`` of every process, from /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(name)] = (fields[0], int(fields[1]), int(fields[2]))
    return out


def _living(pgid, pids=()):
    """Processes of process group ``pgid`` or among ``pids`` that are still running (zombies are dead)."""
    return sorted(pid for pid, (state, _, group) in _processes().items()
                  if state != "Z" and (group == pgid or pid in pids))


@contextlib.contextmanager
def _run(out, tmp_path, *args, workers="2"):
    """The run as a subprocess in a session of its own (its process group is its PID); on the way out, any
    process of that group still alive (only ours) is killed by PID."""
    log = open(tmp_path / "run.log", "w")
    cmd = [sys.executable, "-m", "actadapt", "reproduce", "table1", "--preset", "smoke", "--out", str(out),
           "--workers", workers, *args]
    proc = subprocess.Popen(cmd, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _cleanup(proc.pid)


def _workers(proc):
    return [pid for pid, (_, ppid, _) in _processes().items() if ppid == proc.pid]


def _wait_for_records(proc, out, n=1, timeout=240):
    folds = os.path.join(out, "folds")
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be signalled"
        if os.path.isdir(folds) and sum(f.endswith(".json") for f in os.listdir(folds)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError("no record written in time")


def _state(out):
    return sorted((top, tuple(sorted(files))) for top, _, files in os.walk(out))


def _cleanup(pgid):
    for pid in _living(pgid):  # only our run's own processes (its session's group), by PID
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _children(proc, n, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be signalled"
        kids = _workers(proc)
        if len(kids) >= n:
            return kids
        time.sleep(0.02)
    raise AssertionError("the workers did not start in time")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT", "SIGINT-at-start",
                                 pytest.param("SIGHUP", marks=pytest.mark.slow)])
def test_workers_end_with_their_driver(tmp_path, how):
    """SIGINT is sent to the whole process group, as a terminal's Ctrl-C is: while the workers are busy, and
    while they are still starting (importing torch), when an unprotected worker dies with a traceback.
    SIGHUP (the terminal closed) behaves as SIGTERM."""
    out = tmp_path / "run"
    with _run(out, tmp_path, *MANY) as proc:
        if how == "SIGINT-at-start":
            _children(proc, 3)  # the resource tracker and two workers, just spawned
        else:
            _wait_for_records(proc, out)
        workers = _workers(proc)
        assert len(workers) >= 2  # two workers (and the multiprocessing resource tracker)
        if how.startswith("SIGINT"):
            os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole foreground group
        else:
            os.kill(proc.pid, getattr(signal, how))
        code = proc.wait(timeout=60)
        deadline = time.time() + 5
        while _living(proc.pid, workers) and time.time() < deadline:
            time.sleep(0.05)
        assert _living(proc.pid, workers) == [], "a worker (or the resource tracker) outlived its driver"
        before = _state(out)
        time.sleep(1.5)
        assert _state(out) == before, "the run folder still changes"
        log = (tmp_path / "run.log").read_text()
        assert "Traceback" not in log, log
        if how == "SIGKILL":
            assert code == -signal.SIGKILL
        else:
            signame = how.split("-")[0]
            assert code == 128 + getattr(signal, signame), log
            last = log.strip().splitlines()[-1]
            expected = "interrupted" if signame == "SIGINT" else f"stopped by {signame}"
            assert last == f"actadapt: {expected}; rerun the same command to resume (finished folds are kept)"
            assert not (out / LOCK_NAME).exists()


def test_a_second_run_on_the_same_folder_fails_at_once(tmp_path, capsys):
    out = tmp_path / "run"
    long_run = ["--set", "depths=1", "--set", "epochs=100000", "--set", "backend=eager"]
    with _run(out, tmp_path, *long_run, workers="1") as proc:
        deadline = time.time() + 120
        while not ((out / "config.json").exists() and (out / LOCK_NAME).exists()) and time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            time.sleep(0.05)
        holder = json.loads((out / LOCK_NAME).read_text())
        assert holder["pid"] == proc.pid and "reproduce table1" in holder["command"]
        t0 = time.time()
        code = main(["reproduce", "table1", "--preset", "smoke", "--out", str(out), "--workers", "1", *long_run])
        err = capsys.readouterr().err
        assert code == 2 and time.time() - t0 < 30 and err.count("\n") == 1
        assert f"is in use by another actadapt process (PID {proc.pid} on host" in err
        code = main(["report", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and f"PID {proc.pid}" in err
        # the sequential executor stops as cleanly: SIGTERM ends the training at once, the lock goes with it
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
        assert not (out / LOCK_NAME).exists()


def test_a_ctrl_c_waits_while_a_worker_starts_even_when_another_thread_receives_it():
    """A terminal's SIGINT goes to the whole process, and the kernel hands it to any thread that does not
    block it (torch's OpenMP threads in the driver); Python then runs the handler in the main thread, even
    inside the window where the main thread blocks SIGINT to start a worker. The handler must wait for the
    window's end, as it does for a SIGINT sent to the main thread (else the worker is left without its
    start-up data and dies with a traceback)."""
    import threading

    from actadapt.experiments.lifecycle import RunInterrupted, sigint_blocked, stop_on_signals

    done = []
    with pytest.raises(RunInterrupted) as err:
        with stop_on_signals():
            with sigint_blocked():
                # a thread that lets SIGINT through: the kernel hands the signal to it
                kill = threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGINT))
                kill.start()
                kill.join()
                time.sleep(0.2)  # a handler run now would raise here
                done.append("window closed")
            raise AssertionError("the SIGINT held back was lost")
    assert done == ["window closed"] and err.value.signame == "SIGINT"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped exception, on purpose
def test_stop_on_signals_raises_once_and_restores_the_handlers():
    from actadapt.experiments.lifecycle import RunInterrupted, stop_on_signals

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunInterrupted) as err:
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler raises in this thread at the next bytecode
    assert err.value.signum == signal.SIGTERM and err.value.exit_code == 143 and err.value.signame == "SIGTERM"
    assert isinstance(err.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before
    # an exception raised inside a finalizer is dropped by Python: the stop is recorded and raised later
    from actadapt.experiments.executors import _stop_checked

    class Finalizer:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler runs here, and its exception is "ignored"

    for later in ("on leaving", "at the next epoch"):
        with pytest.raises(RunInterrupted):
            with stop_on_signals():
                Finalizer()
                if later == "at the next epoch":
                    _stop_checked(None)(1)  # what a job in the driver calls after every epoch
                    raise AssertionError("not stopped")
    # a signal ignored when the run starts (nohup) stays ignored
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)


@pytest.mark.slow
def test_a_worker_that_dies_is_one_clear_error(tmp_path):
    """A worker killed from outside (the OOM killer, a user) stops the run with one line naming the task."""
    out = tmp_path / "run"
    with _run(out, tmp_path, *MANY) as proc:
        _wait_for_records(proc, out)
        workers = _workers(proc)
        victim = max(workers, key=lambda pid: _cpu_time(pid))  # a busy worker, not the resource tracker
        os.kill(victim, signal.SIGKILL)
        assert proc.wait(timeout=120) == 1
        log = (tmp_path / "run.log").read_text()
        assert (f"actadapt: error: worker process {victim} was killed by SIGKILL (out of memory?) while running "
                "task") in log
        assert "Traceback" not in log
        time.sleep(0.5)
        assert _living(proc.pid, workers) == []


def _cpu_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return -1
