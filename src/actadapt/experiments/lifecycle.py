"""How a run ends, however it ends: signals in the driver, the driver's death in the workers.

Driver side, :func:`stop_on_signals`: while a run goes, SIGINT (Ctrl-C), SIGTERM and SIGHUP raise
:class:`RunInterrupted` in the main thread, once; repeats are ignored so that the clean-up they started
(an executor's ``shutdown()``, which stops every worker, then the lock's release) is not cut short. A
signal whose disposition was "ignore" when the run started (``nohup``, a background job) stays ignored.
The CLI turns the exception into one line and exit code ``128 + signal`` (130 for Ctrl-C).

Worker side, :func:`die_with_parent`: a worker process started by an executor must not outlive the driver,
even after a ``kill -9`` of the driver, which runs no clean-up at all. Two independent mechanisms:

* Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (through ctypes), so the kernel kills the worker the moment
  its parent dies, before it can write anything more;
* POSIX (macOS, the BSDs; a second line on Linux): a daemon thread that polls ``os.getppid()`` every
  ``poll`` seconds and ends the process with ``os._exit`` once the worker has been re-parented.

(On Windows neither exists; there a worker that is idle notices the driver's death on its closed pipe.)

A worker also ignores SIGINT: a Ctrl-C in a terminal reaches the whole process group, and the driver alone
decides how the run stops (it stops the workers itself), so a job never ends half-way with a
KeyboardInterrupt that a pool could report as an ordinary task failure, and no worker prints a traceback.
An executor starts its workers with SIGINT blocked (they inherit the mask, so this holds during their
start-up too, while they import torch), and :func:`die_with_parent` then ignores it for good.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Iterator, List

__all__ = ["RunInterrupted", "STOP_SIGNALS", "stop_on_signals", "raise_if_stopped", "sigint_blocked",
           "die_with_parent", "PARENT_GONE_EXIT"]

STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
PARENT_GONE_EXIT = 128 + 9  # a worker that noticed its driver's death exits as if killed by SIGKILL
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by ``signum`` (a KeyboardInterrupt, so code that lets Ctrl-C through lets this
    through too); :attr:`exit_code` is the shell's ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        try:
            self.signame = signal.Signals(self.signum).name
        except ValueError:
            self.signame = f"signal {self.signum}"
        super().__init__(self.signame)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_received: List[int] = []  # the signal that stops the current run, while stop_on_signals is active


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside: SIGINT, SIGTERM and SIGHUP raise :class:`RunInterrupted` (once; see the module notes).

    Python drops an exception raised while a finalizer (``__del__``) runs; so the signal is also recorded,
    executors check :func:`raise_if_stopped` between jobs, and leaving the block normally after a signal
    raises. The previous handlers are put back on the way out. A no-op outside the main thread, where Python
    cannot install handlers (the caller then keeps its own).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if _received:  # already stopping: let the clean-up finish
            return
        _received.append(signum)
        raise RunInterrupted(signum)

    previous = {}
    try:
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue  # nohup / background job: the user asked for this signal to be ignored
            previous[sig] = signal.signal(sig, handler)
        yield
        raise_if_stopped()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _received.clear()


def raise_if_stopped() -> None:
    """Raise :class:`RunInterrupted` if a stop signal came (and its exception was lost); a no-op otherwise."""
    if _received:
        raise RunInterrupted(_received[0])


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Hold SIGINT back while a worker is started, and deliver it (not lose it) afterwards.

    Two holds. This thread's signal mask blocks SIGINT: the child inherits the mask, so a Ctrl-C during its
    start-up (importing torch takes seconds) cannot end it with a traceback. And in the main thread the
    Python handler only records a SIGINT while inside: the kernel hands a SIGINT sent to the whole process to
    any thread that lets it through (torch's OpenMP threads do), and Python then runs the handler in the main
    thread, mask or not, which could stop the driver between a worker's start and the start-up data it waits
    for. On the way out the handler is put back and a recorded SIGINT raised again, to it.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    held: List[int] = []
    main = threading.current_thread() is threading.main_thread()
    main = main and signal.getsignal(signal.SIGINT) is not None  # None: not Python's; the mask alone holds
    handler = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum)) if main else None
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # a SIGINT pending for this thread is recorded now
        if main:
            signal.signal(signal.SIGINT, handler)
            if held:
                signal.raise_signal(signal.SIGINT)


def _watch_parent(parent_pid: int, poll: float) -> None:
    while True:
        time.sleep(poll)
        if os.getppid() != parent_pid:  # re-parented: the driver is gone
            os._exit(PARENT_GONE_EXIT)


def _set_parent_death_signal() -> bool:
    """Linux: have the kernel send SIGKILL to this process when its parent dies. False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int, poll: float = 0.5) -> None:
    """Call first thing in a worker process whose parent is ``parent_pid``: from then on the worker ends at
    once when the parent does (see the module notes), and ignores SIGINT."""
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(PARENT_GONE_EXIT)
    watch = threading.Thread(target=_watch_parent, args=(parent_pid, poll), daemon=True,
                             name="actadapt-parent-watch")
    watch.start()
