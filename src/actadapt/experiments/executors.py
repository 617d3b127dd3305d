"""Where tasks run: in this process one after another, or in a pool of local processes.

An executor has one method, ``run(jobs) -> iterator of (job, outcome)`` in completion order, where a job is
a picklable :class:`Job` and running it means calling :func:`execute_job`. Each job writes its own output
files into the run folder, so an executor only has to get ``execute_job(job)`` called somewhere that can
see the folder: a cluster executor would submit ``python -m actadapt.experiments.executors JOB.json``
(see :func:`main`) per job and poll for its output files, without touching any experiment.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple
import multiprocessing

__all__ = ["Job", "execute_job", "Executor", "SequentialExecutor", "ProcessExecutor", "make_executor"]


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


class Executor:
    """Runs jobs and yields ``(job, seconds)`` as each finishes; an exception in a job propagates."""

    def run(self, jobs: Iterable[Job]) -> Iterator[Tuple[Job, float]]:
        raise NotImplementedError


class SequentialExecutor(Executor):
    """One job after another, in this process (progress callbacks reach the caller)."""

    def __init__(self, progress_factory: Optional[Callable[[Job], Optional[Callable]]] = None):
        self.progress_factory = progress_factory

    def run(self, jobs):
        import torch

        from .._backend import _state

        # a job sets process-wide state (torch threads, actadapt backend): give the caller's back afterwards
        threads, backend = torch.get_num_threads(), _state["backend"]
        try:
            for job in jobs:
                cb = self.progress_factory(job) if self.progress_factory else None
                try:
                    yield job, execute_job(job, cb)
                finally:
                    if cb is not None and hasattr(cb, "close"):
                        cb.close()
        finally:
            torch.set_num_threads(threads)
            _state["backend"] = backend


class ProcessExecutor(Executor):
    """A pool of ``workers`` local processes (spawned, so each starts with clean torch state)."""

    def __init__(self, workers: int):
        self.workers = workers

    def run(self, jobs):
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx) as pool:
            pending = {pool.submit(execute_job, job): job for job in jobs}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        job = pending.pop(fut)
                        yield job, fut.result()
            finally:
                for fut in pending:
                    fut.cancel()


def make_executor(workers: int, progress_factory=None) -> Executor:
    """Sequential for ``workers == 1``, a process pool otherwise."""
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
