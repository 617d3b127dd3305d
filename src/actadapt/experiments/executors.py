"""Where tasks run: in this process one after another, in a pool of local worker processes, or as Ray tasks
(:mod:`.ray_executor`, on a local Ray instance or a cluster).

The contract of an executor, which every one keeps (a cluster executor added later included):

* ``run(jobs)`` yields ``(job, seconds)`` as each job finishes, in completion order. A job's exception
  propagates; a pool first lets the jobs already running finish (their records are kept), starts no new
  one, then raises it.
* ``shutdown()`` stops now: nothing more starts, and every worker the executor started is ended and
  waited for. It is idempotent and safe at any point, from a ``finally`` or a signal's unwinding.
* An executor is a context manager whose exit calls ``shutdown()``.

The runner enters the executor inside :func:`.lifecycle.stop_on_signals`, so SIGINT, SIGTERM and SIGHUP
unwind through ``shutdown()``; a worker process calls :func:`.lifecycle.die_with_parent` first thing, so
even a ``kill -9`` of the driver ends it. A new executor gets the signal handling for free; what it owes is
its ``shutdown()`` (a cluster executor: cancel its remote tasks, stop an engine it started itself) and, for
local processes it starts, :func:`.lifecycle.die_with_parent` in them, or an equivalent: Ray's raylet ends
its workers, but its agents outlive a killed driver, so :mod:`.ray_instance` starts a local Ray instance
under a keeper process that ends it.

A job is a picklable :class:`Job`, and running it means calling :func:`execute_job`, which writes the job's
own files into the run folder. Where workers cannot write there (another machine), a job runs against a
scratch folder with :func:`execute_job_in_scratch`, which returns the files, and the driver writes them
with :func:`write_job_files`, as the Ray executor does. ``python -m actadapt.experiments.executors
JOB.json`` (:func:`main`) runs one job described by a JSON file.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from .lifecycle import raise_if_stopped, sigint_blocked

__all__ = ["Job", "execute_job", "execute_job_in_scratch", "write_job_files", "Executor", "SequentialExecutor",
           "ProcessExecutor", "WorkerDied", "EXECUTORS", "make_executor"]


@dataclass(frozen=True)
class Job:
    """Everything a fresh process needs to run one task: the experiment, its resolved config, the task."""

    experiment: str
    config: Dict
    task_id: str
    task_params: Dict
    task_outputs: tuple
    run_dir: str


def execute_job(job: Job, progress: Optional[Callable[[int], None]] = None) -> float:
    """Run one job in this process; returns its wall time in seconds."""
    from .config import resolve_config
    from .registry import Task, get_experiment

    exp = get_experiment(job.experiment)
    cfg = resolve_config(exp.config_class, job.config)
    exp.worker_setup(cfg)
    t0 = time.perf_counter()
    exp.run_task(cfg, Task(job.task_id, job.task_params, tuple(job.task_outputs)), job.run_dir, progress=progress)
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------ jobs away from the run folder
def execute_job_in_scratch(job: Job, scratch: str,
                           progress: Optional[Callable[[int], None]] = None) -> Tuple[float, Dict[str, bytes]]:
    """Run ``job`` with the empty folder ``scratch`` as its run folder, for an executor whose workers cannot
    write into the run folder (another machine); returns ``(seconds, files)``: every regular file the task
    left there, by run-folder-relative path (``/``-separated), for the driver to write with
    :func:`write_job_files`. The task's declared outputs must be among them.

    A task that resumes from a checkpoint in its run folder starts from scratch here (its checkpoints stay
    in ``scratch``); every task is deterministic given its config, so the results are the same.
    """
    from dataclasses import replace

    from .rundir import LOCK_NAME, is_temp_name

    seconds = execute_job(replace(job, run_dir=scratch), progress)
    files: Dict[str, bytes] = {}
    for top, dirs, names in os.walk(scratch, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(top, name)
            if is_temp_name(name) or name == LOCK_NAME or not os.path.isfile(path) or os.path.islink(path):
                continue
            with open(path, "rb") as fh:
                files[os.path.relpath(path, scratch).replace(os.sep, "/")] = fh.read()
    missing = [p for p in job.task_outputs if _relpath(p) not in files]
    if missing:
        raise RuntimeError(f"task {job.task_id} finished without writing {', '.join(missing)}")
    return seconds, files


def _relpath(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/")


def write_job_files(job: Job, files: Dict[str, bytes]) -> None:
    """Write the ``files`` a job made away from the run folder (:func:`execute_job_in_scratch`) into
    ``job.run_dir``, each atomically and never through a link; the declared outputs last, so that a task
    counts as done (:func:`.runner.task_done`) only once everything it wrote is in place."""
    from .rundir import LOCK_NAME, RunFolderError, atomic_write, is_temp_name

    for rel in files:
        parts = rel.split("/")
        if (os.path.isabs(rel) or rel != _relpath(rel) or ".." in parts or rel in ("config.json", LOCK_NAME)
                or is_temp_name(parts[-1])):
            raise RunFolderError(f"task {job.task_id} returned the file {rel!r}, which a task may not write; "
                                 "none of its files was written")
    outputs = [_relpath(p) for p in job.task_outputs]
    for rel in sorted(files, key=lambda r: (r in outputs, outputs.index(r) if r in outputs else 0, r)):
        atomic_write(os.path.join(job.run_dir, *rel.split("/")), lambda fh, data=files[rel]: fh.write(data),
                     binary=True, root=job.run_dir)


class WorkerDied(RuntimeError):
    """A worker process ended (killed, crashed, out of memory) while it ran a job."""


class Executor:
    """Runs jobs and yields ``(job, seconds)`` as each finishes; see the module notes for the contract."""

    def run(self, jobs: Iterable[Job]) -> Iterator[Tuple[Job, float]]:
        raise NotImplementedError

    def shutdown(self) -> None:
        """Stop now and end every worker this executor started (idempotent)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def _stop_checked(progress: Optional[Callable[[int], None]]) -> Callable[[int], None]:
    """``progress`` (or nothing) after a :func:`.lifecycle.raise_if_stopped`: a job in the driver's own thread
    ends at its next epoch even if the signal's exception was lost (raised inside a finalizer)."""

    def checked(epoch: int) -> None:
        raise_if_stopped()
        if progress is not None:
            progress(epoch)

    return checked


class SequentialExecutor(Executor):
    """One job after another, in this process (progress callbacks reach the caller)."""

    def __init__(self, progress_factory: Optional[Callable[[Job], Optional[Callable]]] = None):
        self.progress_factory = progress_factory
        self._saved = None

    def run(self, jobs):
        import torch

        from .._backend import _state

        # a job sets process-wide state (torch threads, actadapt backend): give the caller's back afterwards
        self._saved = (torch.get_num_threads(), _state["backend"])
        try:
            for job in jobs:
                raise_if_stopped()
                cb = self.progress_factory(job) if self.progress_factory else None
                try:
                    yield job, execute_job(job, _stop_checked(cb))
                finally:
                    if cb is not None and hasattr(cb, "close"):
                        cb.close()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        if self._saved is None:
            return
        import torch

        from .._backend import _state

        threads, backend = self._saved
        self._saved = None
        torch.set_num_threads(threads)
        _state["backend"] = backend


# ------------------------------------------------------------------------------------------ process pool
class _RemoteTraceback(Exception):
    """The worker's formatted traceback, chained as the ``__cause__`` of the error raised in the driver."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def _picklable(err: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")


def _worker_main(conn, parent_pid: int) -> None:
    """A pool worker: receive jobs over ``conn`` until ``None`` (or the driver is gone), answer each with
    ``("ok", seconds)`` or ``("error", exception, traceback text)``."""
    from .lifecycle import die_with_parent

    die_with_parent(parent_pid)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the driver closed its end: nothing more to do
            return
        if job is None:
            return
        try:
            seconds = execute_job(job)
        except BaseException as err:  # noqa: B036 - report everything; the driver decides
            conn.send(("error", _picklable(err), traceback.format_exc()))
        else:
            conn.send(("ok", seconds))


def _exit_description(code: Optional[int]) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"exited with status {code}"


class _Worker:
    def __init__(self, proc, conn) -> None:
        self.proc = proc
        self.conn = conn
        self.job: Optional[Job] = None


class ProcessExecutor(Executor):
    """A pool of ``workers`` local processes (spawned, so each starts with clean torch state).

    Each worker gets one job at a time over its own pipe; the driver waits on the pipes, so it sees at once
    a result, an error, or a worker that died (its pipe closes). ``shutdown()`` sends SIGTERM to busy
    workers (idle ones are told to exit), waits ``grace`` seconds, then SIGKILLs what is left.
    """

    def __init__(self, workers: int, grace: float = 5.0):
        self.workers = workers
        self.grace = grace
        self._pool: List[_Worker] = []

    def _start(self, ctx) -> _Worker:
        parent_end, child_end = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=_worker_main, args=(child_end, os.getpid()), daemon=True,
                           name="actadapt-worker")
        if os.name == "posix":
            # spawn starts multiprocessing's resource tracker with the first worker, and starting it ends with
            # SIGINT *unblocked* in this thread: start it first, outside the window below
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
        with sigint_blocked():  # the worker inherits SIGINT blocked from its first instruction on
            proc.start()
        child_end.close()  # only the worker holds it now, so its death closes the pipe
        worker = _Worker(proc, parent_end)
        self._pool.append(worker)
        return worker

    def _died(self, worker: _Worker) -> WorkerDied:
        job = worker.job
        worker.proc.join(self.grace)
        what = f"task {job.task_id}" if job is not None else "no task"
        return WorkerDied(
            f"worker process {worker.proc.pid} {_exit_description(worker.proc.exitcode)} while running "
            f"{what}; rerun the same command to resume (finished tasks are kept)"
        )

    def run(self, jobs):
        import multiprocessing
        from multiprocessing.connection import wait

        queue = deque(jobs)
        if not queue:
            return
        ctx = multiprocessing.get_context("spawn")
        idle = [self._start(ctx) for _ in range(min(self.workers, len(queue)))]
        failure: Optional[BaseException] = None
        while True:
            while idle and queue and failure is None:
                raise_if_stopped()
                worker = idle.pop()
                worker.job = queue.popleft()
                try:
                    worker.conn.send(worker.job)
                except OSError:  # died before it got the job
                    failure = self._died(worker)
                    worker.job = None
            busy = [w for w in self._pool if w.job is not None]
            if not busy:
                break
            ready = wait([w.conn for w in busy], timeout=1.0)
            raise_if_stopped()
            for worker in busy:
                if worker.conn not in ready:
                    continue
                job = worker.job
                try:
                    msg = worker.conn.recv()
                except (EOFError, OSError):
                    failure = failure or self._died(worker)
                    worker.job = None
                    continue
                worker.job = None
                idle.append(worker)
                if msg[0] == "ok":
                    yield job, msg[1]
                elif failure is None:
                    failure = msg[1]
                    failure.__cause__ = _RemoteTraceback(msg[2])
        self.shutdown()
        if failure is not None:
            raise failure

    def shutdown(self) -> None:
        # a worker leaves the list only once it is gone, so a second call (an outer finally) finishes the job
        for worker in self._pool:
            if not worker.proc.is_alive():
                continue
            if worker.job is None:
                try:
                    worker.conn.send(None)  # idle: exit on its own
                    continue
                except OSError:
                    pass
            worker.proc.terminate()
        deadline = time.monotonic() + self.grace
        while self._pool:
            worker = self._pool[0]
            worker.proc.join(max(0.0, deadline - time.monotonic()))
            if worker.proc.is_alive():
                worker.proc.kill()
                worker.proc.join()
            worker.conn.close()
            self._pool.pop(0)


EXECUTORS = ("local", "ray")


def make_executor(workers: Optional[int], progress_factory=None, *, kind: str = "local",
                  address: Optional[str] = None, log: Callable[[str], None] = print) -> Executor:
    """``local``: sequential for ``workers == 1``, a process pool otherwise. ``ray``: one Ray task per job
    (:class:`.ray_executor.RayExecutor`) on the cluster at ``address`` or a local instance, at most ``workers``
    tasks in flight (``None``: what the cluster holds)."""
    if kind == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(address=address, workers=workers, log=log)
    if kind != "local":
        raise ValueError(f"unknown executor {kind!r}; valid executors: {', '.join(EXECUTORS)}")
    if workers == 1:
        return SequentialExecutor(progress_factory)
    return ProcessExecutor(workers)


def main(argv=None) -> int:  # pragma: no cover - the entry point a cluster executor would call
    """``python -m actadapt.experiments.executors JOB.json``: run one job described by a JSON file."""
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as fh:
        data = json.load(fh)
    data["task_outputs"] = tuple(data["task_outputs"])
    execute_job(Job(**data))
    return 0


def job_to_json(job: Job) -> str:
    return json.dumps(asdict(job))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
