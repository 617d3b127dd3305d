"""Sizes against the machine, before any training: memory for the data and the models, threads and CPUs.

A config can ask for more than a machine has (``n_samples=10**9``, ``width=10**6``, ``threads=512``); without
a check that ends, after minutes, in an allocator traceback or a segfault. :func:`plan_workers` is called
by the runner before it writes anything and fails with one line that says what was asked and what fits.

Memory model (conservative, in bytes):

    needed = WORKER_BASE                                  the driver (torch and the experiment code imported)
           + workers x (WORKER_BASE + per_task)           when workers > 1, each a fresh process
           (+ per_task in the driver itself when workers == 1)

``WORKER_BASE`` is 400 MiB: a process that has imported torch 2.13 (CPU) and the experiment code holds
about 300 MB resident (measured), plus slack for the allocator. ``per_task`` is the table's
``Experiment.memory_estimate(cfg)``: the peak of one task's data, model, optimiser state and activations,
each term written out in the table's method, rounded up. It is compared with the memory available now
(``MemAvailable`` of ``/proc/meminfo``, or the cgroup's limit minus its usage when that is smaller; the
physical memory where neither exists). With ``workers=None`` (the CLI's default) the pool is cut to the
number of workers that fit (and to ``CPUs // threads``) instead of failing; a single worker that does not
fit fails.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

from .config import ConfigError

__all__ = ["WORKER_BASE", "MemoryEstimate", "available_memory", "available_cpus", "cpu_name", "fmt_bytes",
           "memory_needed", "plan_workers"]

WORKER_BASE = 400 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    """The peak memory of one task, in bytes, and the config's terms that drive it (for the error line)."""

    bytes: int
    detail: str = ""


def fmt_bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size or unit == "MiB":
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"  # pragma: no cover


def _meminfo_available() -> Optional[int]:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> Optional[int]:
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file, encoding="ascii") as fh:
                text = fh.read().strip()
            if text == "max":
                return None
            with open(usage_file, encoding="ascii") as fh:
                usage = int(fh.read().strip())
            limit = int(text)
            if limit >= 2**60:  # cgroup v1's "no limit"
                return None
            return max(0, limit - usage)
        except (OSError, ValueError):
            continue
    return None


def available_memory() -> Optional[int]:
    """Bytes of memory a run can use now (see the module notes), or ``None`` when unknown."""
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if found:
        return min(found)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def memory_needed(per_task: int, workers: int) -> int:
    """Bytes a run of ``workers`` worker processes needs, each task peaking at ``per_task`` (module notes)."""
    return WORKER_BASE + per_task if workers == 1 else WORKER_BASE + workers * (WORKER_BASE + per_task)


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``, else :func:`platform.processor`), or ``"unknown CPU"``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name") and ":" in line:
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def plan_workers(exp, cfg, workers: Optional[int], n_tasks: int, log: Callable[[str], None] = print,
                 memory: Optional[int] = None, cpus: Optional[int] = None) -> int:
    """The number of worker processes to use (``workers``, or the most that fit for ``None``); raises
    :class:`ConfigError`, one line, when ``cfg.threads`` exceeds the CPUs or the run needs more memory than
    the machine has. ``memory`` and ``cpus`` override the machine's (for tests)."""
    cpus = cpus or available_cpus()
    threads = int(getattr(cfg, "threads", 1) or 1)
    if threads > cpus:
        raise ConfigError(f"config key 'threads': {threads} threads per worker asked, but this machine has "
                          f"{cpus} CPU(s); expected at most {cpus}")
    n_tasks = max(1, n_tasks)
    n = min(workers, n_tasks) if workers is not None else max(1, min(cpus // threads, n_tasks))
    estimate = exp.memory_estimate(cfg) or MemoryEstimate(0)
    per_task = int(estimate.bytes)
    avail = available_memory() if memory is None else memory
    if avail is None:
        return n

    def needed(k: int) -> int:
        return memory_needed(per_task, k)

    fits = 0
    while fits < n and needed(fits + 1) <= avail:
        fits += 1
    if fits >= n:
        return n
    what = f"{estimate.detail}: " if estimate.detail else ""
    if fits and workers is None:
        log(f"note: {n} worker processes would need about {fmt_bytes(needed(n))} of memory, "
            f"{fmt_bytes(avail)} is available: using {fits}")
        return fits
    asked = f"{n} worker(s) x ({fmt_bytes(WORKER_BASE)} + {fmt_bytes(per_task)} per task)" if n > 1 else \
        f"{fmt_bytes(WORKER_BASE)} + {fmt_bytes(per_task)} for the task"
    hint = f"at most {fits} worker(s) fit: pass --workers {fits}" if fits else \
        "lower the sizes named here"
    raise ConfigError(f"not enough memory: {what}this run needs about {fmt_bytes(needed(n))} ({asked}), "
                      f"this machine has {fmt_bytes(avail)} available; {hint}")
