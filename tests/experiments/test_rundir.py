"""Run folders are ours or refused: a user's files, links out of the folder, our temp files, the lock."""

import json
import os
import subprocess
import sys

import pytest

from actadapt.cli import main
from actadapt.experiments.runner import reproduce

LOCK_NAME = ".actadapt.lock"

ENV = {**os.environ, "ACTADAPT_BACKEND": "eager", "PYTHONPATH": os.pathsep.join(sys.path)}
TINY = {"depths": "1", "teachers": "ReLU", "students": "AGumb", "n_samples": "40", "epochs": "1", "folds": "2",
        "backend": "eager"}
TINY_ARGS = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]


def _quiet(*a, **k):
    pass


def _tiny(out, **kw):
    return reproduce("table1", "smoke", str(out), overrides=TINY, workers=1, progress=False, log=kw.pop("log", _quiet))


def _files(root):
    """{relative path: bytes} of every file below ``root`` (links not followed)."""
    out = {}
    for top, _, files in os.walk(root, followlinks=False):
        for name in files:
            path = os.path.join(top, name)
            out[os.path.relpath(path, root)] = None if os.path.islink(path) else open(path, "rb").read()
    return out


def _cli(capsys, *argv):
    code = main(list(argv))
    _, err = capsys.readouterr()
    return code, err


def _one_line(err):
    return err.startswith("actadapt: error: ") and err.count("\n") == 1 and "Traceback" not in err


# ------------------------------------------------------------------------------------- ownership
def test_a_users_folder_with_files_is_refused_and_left_alone(tmp_path, capsys):
    user = tmp_path / "thesis"
    (user / "sub").mkdir(parents=True)
    (user / "figures").mkdir()
    for rel, text in {"results.json": "{\"mine\": 1}", "report.md": "# my report", "folds.csv": "a,b\n",
                      "thesis.tmp-draft": "draft", "sub/data.tmp-123": "data",
                      "figures/fig2_alpha_histograms.png": "png"}.items():
        (user / rel).write_text(text)
    before = _files(user)
    code, err = _cli(capsys, "reproduce", "table1", "--preset", "smoke", "--out", str(user), "--workers", "1", *TINY_ARGS)
    assert code == 2 and _one_line(err)
    assert f"output folder '{user}' is not an actadapt run folder (no config.json of ours)" in err
    assert _files(user) == before  # nothing written, nothing deleted, no lock file left


@pytest.mark.parametrize("config_text, problem", [
    ('{"name": "my experiment"}', "not an actadapt run's"),
    ("{not json", "cannot be read as JSON"),
])
def test_a_foreign_config_json_is_not_ours(tmp_path, capsys, config_text, problem):
    user = tmp_path / "other"
    user.mkdir()
    (user / "config.json").write_text(config_text)
    code, err = _cli(capsys, "reproduce", "table1", "--preset", "smoke", "--out", str(user), "--workers", "1", *TINY_ARGS)
    assert code == 2 and _one_line(err) and problem in err
    assert _files(user) == {"config.json": config_text.encode()}


def test_a_new_or_empty_folder_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    for name in ("empty", "new/deeper"):
        res = _tiny(tmp_path / name)
        assert res["complete"] and (tmp_path / name / "config.json").is_file()
        assert not (tmp_path / name / LOCK_NAME).exists()  # released at the end


# ------------------------------------------------------------------------------------- temp files
def test_clean_up_deletes_only_our_temp_files(tmp_path):
    run = tmp_path / "run"
    _tiny(run)
    record = "folds/d1-ReLU__AGumb__draw0__fold0.json"
    users = {"thesis.tmp-draft": "draft", "sub/data.tmp-123": "data", "notes.tmp-99": "mine", "folds/x.json.tmp-5": "x"}
    ours = [".results.json.actadapt-tmp-4242", "folds/.x.json.actadapt-tmp-7", record + ".tmp-31337"]
    (run / "sub").mkdir()
    for rel, text in users.items():
        (run / rel).write_text(text)
    for rel in ours:
        (run / rel).write_text("half a write")
    _tiny(run)  # resume: cleans up, then finds every task done
    for rel, text in users.items():
        assert (run / rel).read_text() == text, rel
    for rel in ours:
        assert not (run / rel).exists(), rel


def test_our_temp_file_names():
    from actadapt.experiments.rundir import is_temp_name, temp_name

    name = os.path.basename(temp_name("/x/results.json"))
    assert name == f".results.json.actadapt-tmp-{os.getpid()}" and is_temp_name(name)
    assert not any(is_temp_name(n) for n in ("thesis.tmp-draft", "data.tmp-123", ".x.actadapt-tmp-", "a.actadapt-tmp-1"))


def test_clean_up_never_enters_or_follows_a_link(tmp_path):
    from actadapt.experiments.rundir import clean_temp_files

    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir()
    outside.mkdir()
    (outside / ".victim.json.actadapt-tmp-1").write_text("not yours")
    (outside / "target").write_text("not yours either")
    os.symlink(outside, run / "linked-dir")
    os.symlink(outside / "target", run / ".link.json.actadapt-tmp-2")
    (run / ".mine.json.actadapt-tmp-3").write_text("ours")
    removed = clean_temp_files(str(run))
    assert removed == [str(run / ".mine.json.actadapt-tmp-3")]
    assert _files(outside) == {".victim.json.actadapt-tmp-1": b"not yours", "target": b"not yours either"}


# ------------------------------------------------------------------------------------- links
def test_a_link_out_of_the_run_folder_is_refused(tmp_path, capsys):
    run, outside = tmp_path / "run", tmp_path / "outside"
    _tiny(run)
    outside.mkdir()
    (outside / ".results.json.actadapt-tmp-1").write_text("someone else's")
    (outside / "d1-ReLU__AGumb__draw0__fold0.json").write_text("someone else's")
    os.symlink(outside, run / "sub")
    before = _files(outside)
    args = ["--preset", "smoke", "--out", str(run), "--workers", "1", *TINY_ARGS]
    code, err = _cli(capsys, "reproduce", "table1", *args)
    assert code == 2 and _one_line(err) and f"symbolic link '{run / 'sub'}'" in err and "never writes through links" in err
    code, err = _cli(capsys, "report", str(run))
    assert code == 2 and _one_line(err) and "symbolic link" in err
    assert _files(outside) == before


def test_writes_never_go_through_a_link(tmp_path):
    from actadapt.experiments.rundir import RunFolderError, atomic_write, temp_name, write_json

    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir()
    outside.mkdir()
    (outside / "results.json").write_text("theirs")
    os.symlink(outside, run / "folds")  # a folder on the way
    with pytest.raises(RunFolderError, match="symbolic link"):
        write_json(str(run / "folds" / "rec.json"), {"a": 1}, root=str(run))
    os.symlink(outside / "results.json", run / "results.json")  # the file itself
    with pytest.raises(RunFolderError, match="symbolic link"):
        write_json(str(run / "results.json"), {"a": 1}, root=str(run))
    os.symlink(outside / "planted", temp_name(str(run / "report.md")))  # our temp file's name, planted
    with pytest.raises(RunFolderError, match="symbolic link"):
        atomic_write(str(run / "report.md"), lambda fh: fh.write("x"), root=str(run))
    assert _files(outside) == {"results.json": b"theirs"} and not (run / "report.md").exists()
    with pytest.raises(RunFolderError, match="outside the run folder"):
        write_json(str(tmp_path / "elsewhere.json"), {}, root=str(run))


def test_config_json_never_holds_a_non_finite_value(tmp_path):
    from actadapt.experiments.rundir import write_json

    path = tmp_path / "config.json"
    with pytest.raises(ValueError, match=r"config\.lr is not a finite number"):
        write_json(str(path), {"config": {"lr": float("nan")}}, strict=True)
    assert not path.exists() and not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------- the lock
def _hold_lock(folder):
    """A process (ours) holding ``folder``'s lock until killed."""
    code = ("import sys, time\nfrom actadapt.experiments.rundir import RunLock\n"
            "RunLock(sys.argv[1]).__enter__()\nprint('locked', flush=True)\ntime.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], env=ENV, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_held_lock_keeps_runs_and_reports_out_and_a_dead_holders_lock_is_taken_over(tmp_path, capsys):
    from actadapt.experiments.rundir import RunFolderBusy

    run = tmp_path / "run"
    first = _tiny(run)
    holder = _hold_lock(run)
    try:
        with pytest.raises(RunFolderBusy, match=rf"is in use by another actadapt process \(PID {holder.pid} on host"):
            _tiny(run)
        code, err = _cli(capsys, "report", str(run))
        assert code == 2 and _one_line(err) and f"PID {holder.pid}" in err
    finally:
        holder.kill()  # kill -9: the lock file stays behind, its flock goes with the process
        holder.wait()
    assert json.loads((run / LOCK_NAME).read_text())["pid"] == holder.pid
    logs = []
    again = _tiny(run, log=logs.append)
    assert any(f"took over the lock of PID {holder.pid}" in line for line in logs)
    assert again["cells"] == first["cells"] and not (run / LOCK_NAME).exists()
    code, err = _cli(capsys, "report", str(run))
    assert code == 0 and not (run / LOCK_NAME).exists()


def test_a_stale_lock_file_in_an_empty_folder_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": os.uname().nodename}))
    logs = []
    assert _tiny(run, log=logs.append)["complete"]
    assert any(f"took over the lock of PID {pid}" in line for line in logs)


def test_without_flock_the_holders_pid_decides(tmp_path, monkeypatch):
    """On a file system without locks (flock answers ENOLCK) the lock file is created exclusively: a live
    holder on this host keeps others out, a dead one's lock is taken over."""
    import errno
    import fcntl

    from actadapt.experiments.rundir import RunFolderBusy, RunLock

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    run = tmp_path / "run"
    with RunLock(str(run)) as lock:
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid() and lock.taken_over is None
    assert not (run / LOCK_NAME).exists()
    (run / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))  # alive
    with pytest.raises(RunFolderBusy, match=f"PID {os.getppid()}"):
        RunLock(str(run)).__enter__()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (run / LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename}))
    with RunLock(str(run)) as lock:
        assert lock.taken_over["pid"] == int(dead.stdout)
