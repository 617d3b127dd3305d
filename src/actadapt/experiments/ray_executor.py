"""The Ray executor: one Ray task per runner task, on a local Ray instance or on a cluster.

Each job becomes one Ray task that asks for ``num_cpus`` = the config's ``threads`` (1 where a table has no
such key) and, where the table estimates it, ``memory`` = one worker's size (:data:`.resources.WORKER_BASE`
plus the task's :meth:`~.registry.Experiment.memory_estimate`), so Ray packs tasks onto nodes by both. The
task runs against a scratch folder on its worker (:func:`.executors.execute_job_in_scratch`) and returns the
files it wrote; the driver writes them into the run folder atomically (:func:`.executors.write_job_files`),
so the cluster needs no shared file system for outputs, and a run folder looks the same under every
executor. Where Ray runs (a local instance of this run, or a cluster joined by address) is
:mod:`.ray_instance`'s job.

What a worker node needs (each task checks the first two and fails with one line naming the node):

* Ray, and the same versions of actadapt and torch as the driver;
* the data root at the same path as on the driver (a shared or copied folder): ``data_dir`` is sent as an
  absolute path, and nothing else is shipped; a file a config names by another key (Table 4's ``input``)
  must be at the same path too. A task runs in the driver's working folder where its node has that folder.

Failures. A worker process or node lost while a task runs (killed, out of memory, a node gone) is Ray's to
handle: the task runs again, up to :data:`MAX_RETRIES` times (``max_retries``), and then the run stops with
:class:`.executors.WorkerDied`. A Python error raised by a task is not retried (``retry_exceptions=False``):
as the local executors do, the run lets the tasks in flight finish (their records are written), starts no
new one, and raises that error in the driver (the CLI prints a :class:`.config.ConfigError` as one line).
A task restarted by Ray starts from its first epoch: its checkpoints lived in the lost worker's scratch.

Tasks in flight: at most ``workers`` when given (``--workers``), else what the cluster holds when the run
starts (over its nodes, CPUs // threads, memory permitting), so that a failure stops the run after the tasks
already running, as with a process pool. A task that no node can take is a one-line error unless
``--workers`` is given: give it above the cluster's size for a cluster that scales up.

``shutdown()`` cancels the tasks in flight on a cluster (forced: their worker processes end), disconnects, and
stops the local instance if this run started one (which ends its tasks with it). The driver's SIGINT, SIGTERM
and SIGHUP reach it through the runner's :func:`.lifecycle.stop_on_signals`; a ``kill -9`` of the driver ends a
local instance through its keeper process (:mod:`.ray_instance`), and on a cluster Ray itself ends the tasks of
a driver that is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections import deque
from dataclasses import replace
from typing import Callable, Dict, Iterator, Optional, Tuple

from .config import ConfigError
from .executors import (
    Executor,
    Job,
    WorkerDied,
    _RemoteTraceback,
    execute_job_in_scratch,
    write_job_files,
)
from .lifecycle import raise_if_stopped
from .ray_instance import Connection, alive_nodes, connect, import_ray

__all__ = ["RayExecutor", "MAX_RETRIES", "run_on_node"]

MAX_RETRIES = 3  # times Ray runs a task again whose worker process or node was lost (Ray's own default)
SCRATCH_PREFIX = "actadapt-scratch-"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours the task's name in its tracebacks
_IMPORT_ERROR = re.compile(r"(ModuleNotFoundError|ImportError): [^\n]*")
_SCRATCH_RE = re.compile(r"^" + re.escape(SCRATCH_PREFIX) + r"(\d+)-[A-Za-z0-9_]+$")


# ------------------------------------------------------------------------------------------ on the node
def _check_node(job: Job, driver: Dict) -> None:
    """One-line errors for a node that cannot give the driver's results: other versions, no data root."""
    import torch

    import actadapt

    host = socket.gethostname()
    here = (actadapt.__version__, torch.__version__)
    if here != (driver["actadapt"], driver["torch"]):
        raise ConfigError(
            f"Ray node {host} has actadapt {here[0]} with torch {here[1]}, the driver actadapt "
            f"{driver['actadapt']} with torch {driver['torch']}: install the same versions on every node"
        )
    data_dir = job.config.get("data_dir")
    if data_dir and not os.path.isdir(data_dir):
        raise ConfigError(f"data root {data_dir!r} is not a folder on Ray node {host}: every node needs the "
                          "data root at the same path as the driver (a shared or copied folder)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _clean_stale_scratch(base: str) -> None:
    """Delete the scratch folders of tasks whose worker process is gone (killed while it ran a task): only
    real folders (never a link) named by :data:`SCRATCH_PREFIX` and a PID that no longer runs."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        m = _SCRATCH_RE.match(name)
        path = os.path.join(base, name)
        if not m or _pid_alive(int(m.group(1))) or os.path.islink(path) or not os.path.isdir(path):
            continue
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _working_folder(path: str) -> Iterator[None]:
    """In ``path`` (the driver's working folder) while inside, where this node has it."""
    if not os.path.isdir(path):
        yield
        return
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_on_node(job: Job, driver: Dict) -> Dict:
    """The body of a Ray task: check the node (:func:`_check_node`), run ``job`` in a fresh scratch folder
    with the driver's actadapt backend, return ``{"seconds": ..., "files": {relpath: bytes}}``."""
    from .. import set_backend

    _check_node(job, driver)
    set_backend(driver["backend"])  # as the driver resolved it (its $ACTADAPT_BACKEND), not this node's
    base = tempfile.gettempdir()
    _clean_stale_scratch(base)
    scratch = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=base)
    try:
        with _working_folder(driver["cwd"]):
            seconds, files = execute_job_in_scratch(job, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"seconds": seconds, "files": files}


# ------------------------------------------------------------------------------------------ driver
def _driver_info() -> Dict:
    import torch

    import actadapt

    from .._backend import get_backend

    return {"actadapt": actadapt.__version__, "torch": torch.__version__, "backend": get_backend(),
            "cwd": os.getcwd()}


def _for_node(job: Job) -> Job:
    """``job`` as a node gets it: the data root as an absolute path (it is not part of the config hash)."""
    if not job.config.get("data_dir"):
        return job
    return replace(job, config={**job.config, "data_dir": os.path.abspath(job.config["data_dir"])})


def _task_needs(job: Job) -> Tuple[int, int]:
    """``(CPUs, bytes of memory)`` one task of this run asks of Ray (0 bytes: not estimated)."""
    from .config import resolve_config
    from .registry import get_experiment
    from .resources import WORKER_BASE

    exp = get_experiment(job.experiment)
    cfg = resolve_config(exp.config_class, job.config)
    estimate = exp.memory_estimate(cfg)
    threads = int(getattr(cfg, "threads", 1) or 1)
    return threads, (WORKER_BASE + int(estimate.bytes)) if estimate is not None else 0


def _capacity(ray, cpus: int, memory: int, address: str) -> int:
    """How many such tasks the cluster runs at once; a one-line error when no node can take one (a task Ray
    cannot place would wait for ever)."""
    from .resources import fmt_bytes

    def fits(resources: Dict) -> int:
        k = int(resources.get("CPU", 0) // cpus)
        return min(k, int(resources.get("memory", 0) // memory)) if memory else k

    nodes = [n.get("Resources", {}) for n in alive_nodes(ray)]
    total = sum(fits(r) for r in nodes)
    if total == 0:
        biggest = max(nodes, key=lambda r: (r.get("CPU", 0), r.get("memory", 0)), default={})
        asked = f"{cpus} CPU(s)" + (f" and {fmt_bytes(memory)} of memory" if memory else "")
        raise ConfigError(
            f"each task asks for {asked} (config key 'threads': {cpus}), but no node of the Ray cluster at "
            f"{address} has that much (the largest: {int(biggest.get('CPU', 0))} CPU(s), "
            f"{fmt_bytes(biggest.get('memory', 0))} of memory); lower threads or add a larger node"
        )
    return total


@contextlib.contextmanager
def _signal_kept() -> Iterator[None]:
    """Ray's blocking calls run signal handlers themselves and turn any exception they raise into a plain
    KeyboardInterrupt: raise the run's own :class:`.lifecycle.RunInterrupted` (SIGTERM's 143, not 130)."""
    try:
        yield
    except KeyboardInterrupt:
        raise_if_stopped()
        raise


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class RayExecutor(Executor):
    """Runs each job as a Ray task (see the module notes); ``address``: the cluster to join (``None``:
    ``$RAY_ADDRESS``, else a local instance for this run); ``workers``: most tasks in flight (``None``: what
    the cluster holds)."""

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None,
                 log: Callable[[str], None] = print, max_retries: int = MAX_RETRIES) -> None:
        self.address = address
        self.workers = workers
        self.log = log
        self.max_retries = max_retries
        self._conn: Optional[Connection] = None
        self._in_flight: Dict = {}  # ObjectRef -> Job

    def run(self, jobs):
        queue = deque(jobs)
        if not queue:
            return
        ray = import_ray()
        self._conn = connect(self.address, log=self.log)
        cpus, memory = _task_needs(queue[0])  # one config per run: every task asks the same
        try:
            limit = _capacity(ray, cpus, memory, self._conn.address)
        except ConfigError as err:
            if self.workers is None:
                raise
            limit = 0  # a cluster that grows on demand may get such a node: --workers says how many to send
            self.log(f"note: {err}; sending {self.workers} task(s) anyway (--workers)")
        limit = self.workers or limit
        remote = ray.remote(run_on_node)
        options = {"num_cpus": cpus, "max_retries": self.max_retries, "retry_exceptions": False}
        if memory:
            options["memory"] = memory
        driver = _driver_info()
        failure: Optional[BaseException] = None
        while True:
            while queue and failure is None and len(self._in_flight) < limit:
                raise_if_stopped()
                job = queue.popleft()
                ref = remote.options(name=f"actadapt:{job.task_id}", **options).remote(_for_node(job), driver)
                self._in_flight[ref] = job
            if not self._in_flight:
                break
            with _signal_kept():
                ready, _ = ray.wait(list(self._in_flight), num_returns=1, timeout=1.0)
            raise_if_stopped()
            for ref in ready:
                job = self._in_flight.pop(ref)
                try:
                    with _signal_kept():
                        result = ray.get(ref)
                except Exception as err:  # noqa: BLE001 - sorted out below, the first one is raised
                    failure = failure or self._error(ray, job, err)
                    continue
                write_job_files(job, result["files"])
                yield job, result["seconds"]
        self.shutdown()
        if failure is not None:
            raise failure

    def _error(self, ray, job: Job, err: Exception) -> BaseException:
        """The task's own exception (with the remote traceback as its cause); a one-line
        :class:`ConfigError` for a node that lacks actadapt's Ray module (another actadapt there);
        :class:`WorkerDied` when Ray lost the task (its worker or node gone more often than retried)."""
        if isinstance(err, ray.exceptions.RayTaskError):
            text = _ANSI.sub("", str(err))  # the remote traceback, as Ray prints it
            cause = getattr(err, "cause", None)
            missing = _IMPORT_ERROR.search(text)
            if missing and (isinstance(cause, ImportError) or "failed to import" in str(cause)):
                return ConfigError(f"a Ray node cannot run actadapt's tasks ({missing.group(0)}): install "
                                   "the same actadapt and torch on every node as on the driver")
            if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
                cause.__cause__ = _RemoteTraceback(text)
                return cause
        return WorkerDied(
            f"task {job.task_id} was lost on Ray ({type(err).__name__}: {_first_line(err)}; a task whose "
            f"worker or node is lost runs again up to {self.max_retries} times); rerun the same command to "
            "resume (finished tasks are kept)"
        )

    def shutdown(self) -> None:
        in_flight, self._in_flight = list(self._in_flight), {}
        conn, self._conn = self._conn, None
        try:
            # A local instance ends with its keeper, workers and all: nothing to cancel. On a cluster, cancel the
            # tasks still running, never one that has finished: Ray 2.60's driver can die on a forced cancel that
            # crosses its task's reply (a fatal check in TaskManager::CompletePendingTask, exit 1), seen when a
            # SIGTERM came as a task finished.
            if in_flight and conn is not None and not conn.local:
                import ray

                with contextlib.suppress(Exception):
                    in_flight = ray.wait(in_flight, num_returns=len(in_flight), timeout=0)[1]
                for ref in in_flight:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)  # ends the worker process that runs it
        finally:  # even when a signal interrupts the cancelling
            if conn is not None:
                conn.close()
