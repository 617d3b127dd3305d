"""Time the first steps of a task without running it whole: the hook every training loop calls.

Every training loop of the experiments (:func:`.loop.train_epochs` for Tables 2-4, Table 1's
:func:`.models.students.train_batched`) calls :func:`epoch_started` at the start of each epoch and
:func:`step_done` after each optimiser step. Outside a probe both do nothing (one global read). Inside
:func:`probe_steps` they time the steps, and after ``max_steps`` steps the loop's task is stopped by a
:class:`ProbeStop`, which :func:`probe_steps` catches: a planner (``actadapt plan``) runs a task's own
``run_task`` into a scratch folder and reads what the first steps cost, without knowing how the task trains::

    with probe_steps(20) as probe:
        experiment.run_task(cfg, task, scratch_dir)
    probe.setup_seconds      # from entering the probe to the first step's start (data, model, optimiser)
    probe.step_seconds       # one wall time per step, the first included (warm-up shows there)
    probe.steps_per_epoch    # as the loop announced it, and probe.epochs
    probe.epoch_end_seconds  # what each finished epoch spent after its last step (evaluation, checkpoint)

A task stopped this way writes no record (its loop never returns); a checkpoint it may have left in the
scratch folder is the caller's to delete. A task that ends before ``max_steps`` steps runs to its end.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Iterator, List, Optional

__all__ = ["StepProbe", "ProbeStop", "probe_steps", "epoch_started", "step_done"]


class ProbeStop(Exception):
    """Raised by :func:`step_done` once the probe has timed its steps; caught by :func:`probe_steps`."""


@dataclass
class StepProbe:
    """What a probe saw. ``stopped``: the task was cut after ``max_steps`` steps (else it ran to its end)."""

    max_steps: int
    started: float = field(default_factory=time.perf_counter)
    setup_seconds: Optional[float] = None
    step_seconds: List[float] = field(default_factory=list)
    steps_per_epoch: Optional[int] = None
    epochs: Optional[int] = None
    epoch_end_seconds: List[float] = field(default_factory=list)
    stopped: bool = False
    _last: Optional[float] = None


_ACTIVE: Optional[StepProbe] = None


@contextlib.contextmanager
def probe_steps(max_steps: int) -> Iterator[StepProbe]:
    """Time the first ``max_steps`` optimiser steps of the training run inside the ``with`` block, then stop
    it (see the module notes). Probes do not nest: an inner one replaces the outer until it ends."""
    global _ACTIVE
    if max_steps < 1:
        raise ValueError(f"probe_steps: max_steps must be at least 1, got {max_steps}")
    previous, probe = _ACTIVE, StepProbe(max_steps)
    _ACTIVE = probe
    try:
        yield probe
    except ProbeStop:
        probe.stopped = True
    finally:
        _ACTIVE = previous


def epoch_started(steps: int, epochs: int) -> None:
    """Called by a training loop at the start of every epoch: ``steps`` optimiser steps of ``epochs``."""
    probe = _ACTIVE
    if probe is None:
        return
    now = time.perf_counter()
    probe.steps_per_epoch, probe.epochs = int(steps), int(epochs)
    if probe._last is None:  # the first step starts now
        probe.setup_seconds = now - probe.started
    else:  # the end of the previous epoch: evaluation, checkpoint
        probe.epoch_end_seconds.append(now - probe._last)
    probe._last = now


def step_done() -> None:
    """Called by a training loop after every optimiser step; raises :class:`ProbeStop` after the last one."""
    probe = _ACTIVE
    if probe is None:
        return
    now = time.perf_counter()
    if probe._last is None:  # a loop that did not announce its epoch
        probe._last, probe.setup_seconds = probe.started, 0.0
    probe.step_seconds.append(now - probe._last)
    probe._last = now
    if len(probe.step_seconds) >= probe.max_steps:
        raise ProbeStop
