"""Time the first steps of a task without running it whole: the hook every training loop calls.

Every training loop of the experiments (:func:`.loop.train_epochs` for Tables 2-4, Table 1's
:func:`.models.students.train_batched`) calls :func:`epoch_started` at the start of each epoch and
:func:`step_done` after each optimiser step, and leaves its epoch's minibatches when :func:`step_done`
returns ``True``::

    for batch in minibatches:
        ...                       # forward, backward, optimiser step
        if probe.step_done():     # a probe has timed its steps: on to this epoch's end
            break

Outside a probe both do nothing (one global read; :func:`step_done` returns ``False``). Inside
:func:`probe_steps` they time the steps. After ``max_steps`` steps the probe wants one epoch's end timed
too (evaluation, checkpoint: a share of a task that steps alone do not show): if no epoch has ended yet,
:func:`step_done` returns ``True`` once, the loop skips the rest of that epoch, and the next
:func:`epoch_started` records the epoch's end and stops the task with a :class:`ProbeStop`, which
:func:`probe_steps` catches (as it does at the ``max_steps``-th step once an epoch's end has been seen).
A planner (``actadapt plan``) runs a task's own ``run_task`` into a scratch folder this way and reads what
its first steps and an epoch's end cost, without knowing how the task trains::

    with probe_steps(20) as probe:
        experiment.run_task(cfg, task, scratch_dir)
    probe.setup_seconds      # from entering the probe to the first step's start (data, model, optimiser)
    probe.step_seconds       # one wall time per step, the first included (warm-up shows there)
    probe.steps_per_epoch    # as the loop announced it, and probe.epochs
    probe.epoch_end_seconds  # what each finished epoch spent after its last step (evaluation, checkpoint)
    probe.seconds            # the wall time of the whole ``with`` block

A task stopped this way writes no record (its loop never returns); a checkpoint it may have left in the
scratch folder is the caller's to delete. A task of one epoch whose end the probe asked for runs on to its
end (its record, of a cut epoch, too) and counts as stopped: the time from its last step to the end of the
block is its epoch's end. A task that ends before ``max_steps`` steps runs to its end. A loop that ignores
:func:`step_done`'s answer is stopped at its next step.
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
    seconds: Optional[float] = None
    cut_epoch: bool = False  # step_done asked the loop to skip the rest of its epoch
    _last: Optional[float] = None


_ACTIVE: Optional[StepProbe] = None


@contextlib.contextmanager
def probe_steps(max_steps: int) -> Iterator[StepProbe]:
    """Time the first ``max_steps`` optimiser steps of the training run inside the ``with`` block and one
    epoch's end, then stop it (see the module notes). Probes do not nest: an inner one replaces the outer until it ends."""
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
        now = time.perf_counter()
        probe.seconds = now - probe.started
        if probe.cut_epoch and not probe.stopped:  # a one-epoch task ran on to its end after the cut epoch
            probe.stopped = True
            probe.epoch_end_seconds.append(now - (probe._last or now))


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
        if probe.cut_epoch:  # the epoch cut short for this: done
            raise ProbeStop
    probe._last = now


def step_done() -> bool:
    """Called by a training loop after every optimiser step. ``True``: leave this epoch's minibatches (the
    probe wants the epoch's end timed); raises :class:`ProbeStop` when the probe is done (module notes)."""
    probe = _ACTIVE
    if probe is None:
        return False
    now = time.perf_counter()
    if probe._last is None:  # a loop that did not announce its epoch
        probe._last, probe.setup_seconds = probe.started, 0.0
    probe.step_seconds.append(now - probe._last)
    probe._last = now
    if len(probe.step_seconds) < probe.max_steps:
        return False
    if probe.epoch_end_seconds or probe.cut_epoch or probe.steps_per_epoch is None:
        raise ProbeStop  # an epoch's end is timed already, the loop did not leave its epoch, or has none
    probe.cut_epoch = True
    return True
