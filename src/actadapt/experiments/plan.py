r"""``actadapt plan``: what a run trains and what it costs on this machine, before it starts.

:func:`make_plan` resolves the config as ``actadapt reproduce`` does (:func:`.runner.resolve_run`, the same
errors), sizes the run on this machine as it does (:func:`.runner.local_tasks`: memory, threads, workers),
groups the tasks by kind (:meth:`.registry.Experiment.task_kind`: Table 1's rows, a grid's cells) and times
the first task of each kind with :func:`.probe.probe_steps`: the task's own ``run_task`` runs with a
worker's settings (threads, backend) into a scratch folder that the plan makes in the system's temp folder
and deletes, until its first ``probe_steps`` optimiser steps are timed. Nothing is written anywhere else: a
plan has no run folder.

Extrapolation (:func:`estimate_task`), per task of a kind, in seconds on this machine with ``cfg.threads``
threads::

    task = setup + steps_per_epoch x epochs x step + epochs x epoch_end

* ``setup``: from the probe's start to its first step (data, model, optimiser). The probes run in one
  process, as a worker runs its tasks: data that a table caches between tasks (Table 4's word vectors of a
  fold, for one) is loaded by the first probe that needs it only, and data a table reads to list its tasks
  (Table 4's sessions) is read before any probe, once, as by the run's driver and once per worker;
* ``step``: the median step time after the first :data:`WARMUP_STEPS` (kernel builds, allocator warm-up);
* ``epoch_end``: the median of what the probe saw after an epoch's last step (evaluation, checkpoint); after
  ``probe_steps`` steps a probe has the loop skip to its epoch's end if none has ended yet
  (:func:`.probe.probe_steps`), so every probe sees one. Evaluations a table makes only every k epochs
  (Table 1's ``eval_every``) count as often as the first epoch's end shows them;
* a task that ended within the probe (a smoke preset): its measured wall time.

CPU-hours: the sum over the tasks, times ``threads``, / 3600. Wall time for W workers
(:func:`schedule_seconds`): the tasks in the run's order (:func:`.runner.run_order`), each to the first free
worker, each worker on its own ``threads`` CPUs; no machine or cluster finishes sooner than its longest task.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

from .probe import StepProbe, probe_steps
from .registry import Experiment, Task

__all__ = ["WARMUP_STEPS", "PROBE_STEPS", "TaskEstimate", "KindPlan", "Plan", "estimate_task",
           "schedule_seconds", "task_kinds", "probe_task", "make_plan", "format_plan"]

WARMUP_STEPS = 5  # the first steps of a probe, left out of the median step time
PROBE_STEPS = 30  # default steps a probe times


@dataclass(frozen=True)
class TaskEstimate:
    """The seconds one task takes (:attr:`seconds`) and the terms they come from (see the module notes)."""

    seconds: float
    setup_seconds: float
    step_seconds: Optional[float]  # the median after the warm-up
    steps_timed: int  # the steps the median is over
    steps_per_epoch: Optional[int]
    epochs: Optional[int]
    epoch_end_seconds: Optional[float]  # None: no epoch's end was seen, not included
    ran_whole: bool  # the task ended within the probe: ``seconds`` is its measured wall time ...
    warmup_excess_seconds: float  # ... less what its warm-up steps took beyond the median step


def estimate_task(probe: StepProbe, warmup: int = WARMUP_STEPS) -> TaskEstimate:
    """Extrapolate one task's seconds from its probe (module notes): setup + steps_per_epoch x epochs x the
    median step (the first ``warmup`` steps left out while more remain) + epochs x the median epoch end where
    one was seen. A task that ran to its end inside the probe: the probe's wall time, less what its warm-up
    steps took beyond the median (a kernel build, paid once per worker process, not per task)."""
    steps = list(probe.step_seconds)
    timed = steps[warmup:] if len(steps) > warmup else steps
    step = statistics.median(timed) if timed else None
    end = statistics.median(probe.epoch_end_seconds) if probe.epoch_end_seconds else None
    setup = probe.setup_seconds or 0.0
    excess = sum(max(0.0, t - step) for t in steps[:warmup]) if step is not None and len(steps) > warmup else 0.0
    terms = dict(setup_seconds=setup, step_seconds=step, steps_timed=len(timed), steps_per_epoch=probe.steps_per_epoch,
                 epochs=probe.epochs, epoch_end_seconds=end, warmup_excess_seconds=excess)
    if not probe.stopped:
        if probe.seconds is None:
            raise ValueError("estimate_task: the probe has not ended yet")
        return TaskEstimate(seconds=probe.seconds - excess, ran_whole=True, **terms)
    if step is None or not probe.steps_per_epoch or not probe.epochs:
        raise RuntimeError("the probed task's training loop did not report its epochs and steps to "
                           "actadapt.experiments.probe; its time cannot be extrapolated")
    seconds = setup + probe.steps_per_epoch * probe.epochs * step + probe.epochs * (end or 0.0)
    return TaskEstimate(seconds=seconds, ran_whole=False, **terms)


def schedule_seconds(durations: List[float], workers: int) -> float:
    """The wall time of tasks of ``durations`` (in the order they start) on ``workers`` workers, each task
    started on the first worker that is free: what a process pool does."""
    free = [0.0] * max(1, workers)
    for seconds in durations:
        first = min(range(len(free)), key=free.__getitem__)
        free[first] += seconds
    return max(free)


# -------------------------------------------------------------------------------------------- kinds
def _kind_label(kind: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in kind.items() if key != "cost") or "(all)"


def task_kinds(exp: Experiment, tasks: List[Task]) -> Dict[str, List[Task]]:
    """The tasks grouped by :meth:`.registry.Experiment.task_kind`, in the order of their first task, each
    group under a label naming its parameters (``cost`` left out)."""
    groups: Dict[str, List[Task]] = {}
    labels: Dict[str, str] = {}
    for task in tasks:
        kind = exp.task_kind(task)
        key = json.dumps(kind, sort_keys=True, default=repr)
        labels.setdefault(key, _kind_label(kind))
        groups.setdefault(key, []).append(task)
    return {labels[key]: members for key, members in groups.items()}


@contextlib.contextmanager
def _worker_settings(exp: Experiment, cfg) -> Iterator[None]:
    """A worker's settings (:meth:`.registry.Experiment.worker_setup`: threads, backend) while inside; the
    process's own threads, backend and random state afterwards."""
    import torch

    from .. import get_backend, set_backend

    threads, backend = torch.get_num_threads(), get_backend()
    try:
        with torch.random.fork_rng(devices=[]):
            exp.worker_setup(cfg)
            yield
    finally:
        torch.set_num_threads(threads)
        set_backend(backend)


def probe_task(exp: Experiment, cfg, task: Task, steps: int = PROBE_STEPS) -> StepProbe:
    """Run ``task`` under :func:`.probe.probe_steps` with a worker's settings, into a scratch folder of its
    own in the system's temp folder, deleted afterwards however the probe ends (Ctrl-C included)."""
    scratch = tempfile.mkdtemp(prefix="actadapt-plan-")
    try:
        with _worker_settings(exp, cfg), probe_steps(steps) as probe:
            exp.run_task(cfg, task, scratch)
        return probe
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------------------------- plan
@dataclass
class KindPlan:
    """One kind of task: its label, its tasks' ids, trainings (records) per task, the probed task, its estimate."""

    label: str
    task_ids: List[str]
    trainings_per_task: int
    epochs: Any
    probed: str
    estimate: TaskEstimate

    @property
    def seconds(self) -> float:
        return len(self.task_ids) * self.estimate.seconds


@dataclass
class Plan:
    """What :func:`make_plan` found; :func:`format_plan` prints it, :meth:`to_dict` is its JSON."""

    table: str
    preset: str
    title: str
    kinds: List[KindPlan]
    order: List[str]  # the task ids in the order the run starts them
    threads: int
    workers: int
    cpus: int
    cpu: str
    load_average: Optional[float]
    memory_per_task: Optional[int]
    memory_detail: str
    memory_needed: int
    memory_available: Optional[int]
    probe_steps: int
    warmup_steps: int
    plan_seconds: float = 0.0
    task_seconds: Dict[str, float] = field(default_factory=dict)

    @property
    def tasks(self) -> int:
        return sum(len(k.task_ids) for k in self.kinds)

    @property
    def trainings(self) -> int:
        return sum(len(k.task_ids) * k.trainings_per_task for k in self.kinds)

    @property
    def cpu_hours(self) -> float:
        return self.threads * sum(k.seconds for k in self.kinds) / 3600

    @property
    def wall_seconds(self) -> float:
        return schedule_seconds([self.task_seconds[t] for t in self.order], self.workers)

    @property
    def longest_seconds(self) -> float:
        return max(self.task_seconds.values(), default=0.0)

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out.update(tasks=self.tasks, trainings=self.trainings, cpu_hours=self.cpu_hours,
                   wall_hours=self.wall_seconds / 3600, longest_task_hours=self.longest_seconds / 3600)
        for kind, plan in zip(out["kinds"], self.kinds):
            kind["seconds"] = plan.seconds
        return out


def _load_average() -> Optional[float]:
    """The machine's 1-minute load average, or ``None`` where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def make_plan(table: str, preset: str = "quick", *, seed: Optional[int] = None,
              overrides: Optional[Mapping[str, Any]] = None, config_file: Optional[Mapping[str, Any]] = None,
              data_dir: Optional[str] = None, workers: Optional[int] = None, steps: int = PROBE_STEPS,
              log: Callable[[str], None] = print,
              probe: Callable[..., StepProbe] = probe_task) -> Plan:
    """The plan of ``actadapt reproduce table --preset preset`` with these settings (module notes).

    ``workers``: the workers of the wall-time estimate (``None``: as many as ``reproduce`` would start).
    ``probe(exp, cfg, task, steps)`` times one task (default :func:`probe_task`). Raises the
    one-line :class:`.config.ConfigError` that ``reproduce`` would (a bad key, missing data, too little
    memory), :class:`.lifecycle.RunInterrupted` on SIGINT, SIGTERM or SIGHUP (the scratch folder gone)."""
    from .lifecycle import stop_on_signals
    from .resources import available_cpus, available_memory, cpu_name, memory_needed
    from .runner import local_tasks, resolve_run, run_order

    if steps < 1:
        raise ValueError(f"--probe-steps must be at least 1, got {steps}")
    t0 = time.perf_counter()
    load = _load_average()
    exp, cfg = resolve_run(table, preset, seed=seed, overrides=overrides, config_file=config_file,
                           data_dir=data_dir)
    tasks, n_workers = local_tasks(exp, cfg, workers, log)
    grouped = task_kinds(exp, tasks)
    kinds = []
    with stop_on_signals():
        for number, (label, members) in enumerate(grouped.items(), 1):
            first = members[0]
            log(f"probing {first.id} ({label}; kind {number} of {len(grouped)})")
            estimate = estimate_task(probe(exp, cfg, first, steps))
            kinds.append(KindPlan(label, [t.id for t in members], len(first.outputs),
                                  first.params.get("epochs", estimate.epochs), first.id, estimate))
    seconds = {task_id: kind.estimate.seconds for kind in kinds for task_id in kind.task_ids}
    memory = exp.memory_estimate(cfg)
    per_task = int(memory.bytes) if memory is not None else None
    return Plan(
        table=exp.name, preset=preset, title=exp.title, kinds=kinds, order=[t.id for t in run_order(tasks)],
        threads=int(getattr(cfg, "threads", 1) or 1), workers=n_workers, cpus=available_cpus(), cpu=cpu_name(),
        load_average=load, memory_per_task=per_task, memory_detail=memory.detail if memory is not None else "",
        memory_needed=memory_needed(per_task or 0, n_workers), memory_available=available_memory(),
        probe_steps=steps, warmup_steps=WARMUP_STEPS,
        plan_seconds=time.perf_counter() - t0, task_seconds=seconds)


# ------------------------------------------------------------------------------------------- output
def fmt_duration(seconds: Optional[float]) -> str:
    """``850 ms``, ``42 s``, ``12 min``, ``3.4 h``; ``n/a`` for ``None``."""
    if seconds is None:
        return "n/a"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _ids(task_ids: List[str], shown: int = 3) -> str:
    more = len(task_ids) - shown
    return ", ".join(task_ids[:shown]) + (f" and {more} more" if more > 0 else "")


def _table(header: List[str], rows: List[List[str]], align: str) -> List[str]:
    """Aligned columns, ``align`` one letter per column: ``l`` left, ``r`` right."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    return ["  " + "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)).rstrip()
            for r in [header] + rows]


def format_plan(plan: Plan) -> str:
    """The plan as ``actadapt plan`` prints it: the tasks, the probes, the estimate and how it was made."""
    from .resources import fmt_bytes

    lines = [f"{plan.table} ({plan.preset}): {plan.title}",
             f"{plan.tasks} task(s), {plan.trainings} training(s) (one record each):"]
    lines += _table(["kind", "tasks", "trainings", "task ids"],
                    [[k.label, str(len(k.task_ids)), str(len(k.task_ids) * k.trainings_per_task), _ids(k.task_ids)]
                     for k in plan.kinds] + [["total", str(plan.tasks), str(plan.trainings), ""]], "lrrl")
    threads = f"{plan.threads} thread{'s' if plan.threads > 1 else ''}"
    lines += ["", f"Probes: the first task of each kind ran its first {plan.probe_steps} optimiser steps here, with "
                  f"{threads}, in a scratch folder (deleted); the plan took {fmt_duration(plan.plan_seconds)}."]
    rows = []
    for k in plan.kinds:
        e = k.estimate
        rows.append([k.label, k.probed, fmt_duration(e.setup_seconds), fmt_duration(e.step_seconds),
                     str(e.steps_per_epoch or "?"), fmt_duration(e.epoch_end_seconds),
                     fmt_duration(e.seconds) + (" (ran whole)" if e.ran_whole else ""),
                     f"{plan.threads * k.seconds / 3600:.3g}"])
    lines += _table(["kind", "probed", "setup", "step", "steps/epoch", "epoch end", "per task", "CPU-hours"], rows,
                    "llrrrrrr")
    load = f", load average {plan.load_average:.2g} when the plan started" if plan.load_average is not None else ""
    lines += ["", f"Estimate for this machine ({plan.cpu}, {plan.cpus} CPU(s){load}), {threads} per task:",
              f"  CPU-hours: {plan.cpu_hours:.3g} for {plan.tasks} task(s)",
              f"  wall time: {fmt_duration(plan.wall_seconds)} of training with {plan.workers} worker(s) here (the "
              "start and the report come on top); no machine or cluster finishes sooner than the longest task, "
              f"{fmt_duration(plan.longest_seconds)}"]
    if plan.memory_per_task is not None:
        avail = f", {fmt_bytes(plan.memory_available)} available now" if plan.memory_available is not None else ""
        lines.append(f"  memory: {fmt_bytes(plan.memory_per_task)} per task ({plan.memory_detail}); "
                     f"{plan.workers} worker(s) need about {fmt_bytes(plan.memory_needed)}{avail}")
    lines += ["", f"How: per task, setup + steps/epoch x epochs x step + epochs x epoch end, where step is the "
                  f"median step time (the first {plan.warmup_steps} left out as warm-up when more were timed), setup "
                  "the time to the first step (data, model) and epoch end the time after an epoch's last step "
                  "(evaluation, checkpoint); a task that ended within its probe counts its measured time. "
                  f"Wall time: the tasks in the run's order, each to the first free worker, each worker on its "
                  f"own {threads}."]
    slow = [f"{k.label}: {fmt_duration(k.estimate.warmup_excess_seconds)}" for k in plan.kinds
            if k.estimate.warmup_excess_seconds >= 1]
    if slow:
        lines.append(f"Left out: what the first {plan.warmup_steps} steps took beyond the median step (a kernel "
                     f"build or compile, once per worker process): {'; '.join(slow)}.")
    unseen = [k.label for k in plan.kinds if k.estimate.epoch_end_seconds is None and not k.estimate.ran_whole]
    if unseen:
        lines.append(f"Not included: the end of each epoch (evaluation, checkpoint) of {'; '.join(unseen)}: those "
                     "probes saw no epoch end.")
    return "\n".join(lines)
