"""The Ray instance a run uses: an existing cluster it joins, or a local instance that ends with the run.

:func:`connect` makes this process a Ray driver:

* ``address`` given (``HOST:PORT`` of a cluster's head, or ``"auto"``: the cluster already running on this
  machine, as ``ray.init(address="auto")`` finds it), or ``$RAY_ADDRESS`` set: join that cluster. Leaving
  only disconnects; the cluster goes on.
* otherwise: start a local instance for this run (one Ray CPU per CPU of this machine, Ray's usage report
  off unless ``$RAY_USAGE_STATS_ENABLED`` says otherwise) and stop it when the run ends. Ray listens on
  every interface of the machine whatever address it is given (it resolves 127.0.0.1 to the node's
  address); Ray's token authentication, on by default for a new instance, keeps others out.

Why a local instance is not a plain ``ray.init()`` in the driver: Ray ties its head processes (GCS, raylet,
monitors) to the process that starts them with the parent-death signal, but the raylet's own agents
(``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) survive the raylet: after a ``kill -9`` of a driver that
called ``ray.init()`` they were still running a minute later (Ray 2.60, measured). So the driver starts a
*keeper* process (``python -m actadapt.experiments.ray_instance``) in a session of its own, which

* makes itself a child subreaper (Linux), so every Ray process orphaned below it is re-parented to it,
* calls ``ray.init(address="local")`` (a new instance even where one runs), prints the instance's address
  on stdout, and waits;
* ends the instance when its stdin reaches end-of-file (the driver closed it, or died however it died: the
  kernel closes a dead process's pipes), when its parent changes (a second line), or on SIGTERM:
  ``ray.shutdown()``, then every process left in its session (SIGTERM, a grace period, SIGKILL), then it
  exits.

Every Ray process of the instance lives in the keeper's session, which only the keeper's descendants share
(a new session has no terminal, so Ctrl-C in the terminal reaches the driver alone, which decides how the run
stops). The driver stops its instance in :meth:`Connection.close`; if the keeper does not exit within the
grace period, the driver kills it and ends what is left of its session itself. What this cannot cover: a
``kill -9`` of the keeper itself. Its Ray head processes die with it, Ray then ends the driver (exit status
137, measured), and the two agents may survive as above; the same command resumes the run. POSIX only
(sessions, ``select`` on pipes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional

from .config import ConfigError
from .lifecycle import STOP_SIGNALS, sigint_blocked

__all__ = ["RAY_INSTALL_HINT", "import_ray", "Connection", "connect", "end_session"]

RAY_INSTALL_HINT = "pip install 'actadapt[ray]'"
START_TIMEOUT = 180.0  # seconds a local instance may take to start (about 8 s on an idle 2-core machine)
GRACE = 10.0  # seconds between SIGTERM and SIGKILL when an instance is stopped
_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
AUTH_MODE = "RAY_AUTH_MODE"  # Ray's switch for token authentication


def import_ray():
    """The ``ray`` module, or a one-line :class:`ConfigError` saying what to install."""
    try:
        import ray
    except ImportError as err:
        raise ConfigError(f"--executor ray needs Ray, which cannot be imported here ({err}): "
                          f"{RAY_INSTALL_HINT}") from None
    return ray


# ------------------------------------------------------------------------------------------ sessions
def _session_members(sid: int) -> List[int]:
    """Living processes (zombies excluded) of session ``sid``, this process excluded."""
    import psutil  # Ray ships its own copy on its path (ray/thirdparty_files)

    found = []
    for pid in psutil.pids():
        if pid == os.getpid():
            continue
        try:
            if os.getsid(pid) != sid or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                continue
        except (OSError, psutil.Error):
            continue
        found.append(pid)
    return found


def _reap() -> None:
    """Collect the exit status of any child that ended (the keeper is their subreaper): no zombies left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_session(sid: int, grace: float = GRACE, reap: bool = False) -> List[int]:
    """SIGTERM every process of session ``sid`` (but this one), SIGKILL those alive ``grace`` seconds later,
    wait until none is left; returns the PIDs that were signalled. ``reap``: also collect ended children (the
    keeper, their subreaper). Only a session this program made is ever passed here."""
    pids = _session_members(sid)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    for sig in (signal.SIGKILL, None):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if reap:
                _reap()
            if not _session_members(sid):
                return pids
            time.sleep(0.05)
        for pid in _session_members(sid) if sig is not None else ():
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
    return pids


# ------------------------------------------------------------------------------------------ keeper
def _make_subreaper() -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - then init reaps the orphans
            pass


def _wait_for_release(parent: int, poll: float = 0.5) -> None:
    """Block until stdin reaches end-of-file or this process is re-parented (the driver is gone)."""
    fd = sys.stdin.fileno()
    while os.getppid() == parent:
        ready, _, _ = select.select([fd], [], [], poll)
        if ready and not os.read(fd, 4096):
            return


def keeper_main(argv: Optional[List[str]] = None) -> int:
    """``python -m actadapt.experiments.ray_instance NUM_CPUS``: see the module notes. Prints one JSON line,
    ``{"address": ...}``, once the instance is up."""
    argv = sys.argv[1:] if argv is None else argv
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when the run stops
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # started with it blocked (see Connection)

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    _make_subreaper()
    try:
        import ray

        # "local": a new instance even where one runs already (ray.init() would join that one)
        ray.init(address="local", num_cpus=int(argv[0]), include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)
        signal.signal(signal.SIGTERM, stop)  # ray.init installs its own SIGTERM handler: ours wins
        address = ray.get_runtime_context().gcs_address
        # a driver joins with the same authentication mode (ray.init turned token mode on for this process)
        sys.stdout.write(json.dumps({"address": address, "auth_mode": os.environ.get(AUTH_MODE)}) + "\n")
        sys.stdout.flush()
        _wait_for_release(parent)
    except SystemExit:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        with contextlib.suppress(Exception):
            import ray

            ray.shutdown()
        if os.getsid(0) == os.getpid():  # our own session, never the terminal's of one who ran us by hand
            end_session(os.getpid(), reap=True)
        _reap()
    return 0


# ------------------------------------------------------------------------------------------ driver
class Connection:
    """This process's link to a Ray instance: ``address``, ``local`` (an instance started for this run) and
    :meth:`close` (disconnect; for a local instance, stop it and wait until every process of it is gone)."""

    def __init__(self, address: str, keeper: Optional[subprocess.Popen] = None) -> None:
        self.address = address
        self.keeper = keeper
        self._closed = False

    @property
    def local(self) -> bool:
        return self.keeper is not None

    def close(self, grace: float = 3 * GRACE) -> None:
        if self._closed:
            return
        self._closed = True
        import ray

        try:
            with _handlers_kept(), contextlib.suppress(Exception):
                ray.shutdown()
        finally:  # even when a signal interrupts the disconnection
            if self.keeper is not None:
                _stop_keeper(self.keeper, grace)


def _stop_keeper(keeper: subprocess.Popen, grace: float) -> None:
    with contextlib.suppress(OSError):
        keeper.stdin.close()  # end-of-file: the keeper stops the instance and exits
    try:
        keeper.wait(grace)
    except subprocess.TimeoutExpired:
        keeper.kill()
        # while the keeper is an unreaped zombie its PID, hence its session's id, cannot be reused
        end_session(keeper.pid)
        keeper.wait()
    keeper.log.close()  # type: ignore[attr-defined]


def _start_keeper(num_cpus: int) -> subprocess.Popen:
    import actadapt

    # the instance's workers import this very actadapt (also from a source checkout)
    src = os.path.dirname(os.path.dirname(os.path.abspath(actadapt.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # the run's own instance reports nothing (unless asked to)
    log = tempfile.TemporaryFile(mode="w+", prefix="actadapt-ray-")
    with sigint_blocked():  # no Ctrl-C in the instant before the keeper's new session exists
        proc = subprocess.Popen([sys.executable, "-m", "actadapt.experiments.ray_instance", str(num_cpus)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                                start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _read_address(proc: subprocess.Popen, timeout: float) -> Dict:
    """The keeper's first line (``{"address": ..., "auth_mode": ...}``), or a :class:`ConfigError` with the
    end of its log."""
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
    try:
        info = json.loads(buf.split(b"\n", 1)[0])
        if isinstance(info, dict) and isinstance(info.get("address"), str):
            return info
    except ValueError:
        pass
    proc.log.seek(0)  # type: ignore[attr-defined]
    lines = [ln.strip() for ln in proc.log.read().splitlines() if ln.strip()]  # type: ignore[attr-defined]
    why = lines[-1] if lines else ("it did not answer in time" if proc.poll() is None else
                                    f"it exited with status {proc.returncode}")
    raise ConfigError(f"could not start a local Ray instance: {why}")


def _use_auth_mode(ray, mode: str) -> None:
    """Join our own instance in its authentication mode: Ray turns tokens on by itself only for a cluster it
    finds (``address="auto"``), never for one given by address, and reads the mode once, when imported, unless
    its config is initialised again (as Ray's own ``_enable_token_auth`` does)."""
    if os.environ.get(AUTH_MODE) == mode:
        return
    os.environ[AUTH_MODE] = mode
    with contextlib.suppress(Exception):  # pragma: no branch - another Ray version: the env var alone
        ray._raylet.Config.initialize("")


@contextlib.contextmanager
def _handlers_kept() -> Iterator[None]:
    """Put this process's SIGINT, SIGTERM and SIGHUP handlers back after a Ray call: ``ray.init`` replaces the
    SIGTERM handler with ``sys.exit``, and ``ray.shutdown`` resets SIGTERM to the default action *below*
    Python (Python's ``signal.getsignal`` still names the old handler), so a SIGTERM after it would kill the
    driver without its clean-up. Setting each handler again installs it in the OS anew."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


def _join(ray, address: Optional[str]) -> None:
    with _handlers_kept():
        ray.init(address=address, logging_level=logging.WARNING)


def connect(address: Optional[str] = None, num_cpus: Optional[int] = None,
            log: Callable[[str], None] = print) -> Connection:
    """Join the cluster at ``address`` (or ``$RAY_ADDRESS``), or start a local instance of ``num_cpus`` CPUs
    for this run (see the module notes). A failure is one line (:class:`ConfigError`)."""
    ray = import_ray()
    if ray.is_initialized():
        raise ConfigError("this process is already connected to Ray; the Ray executor makes its own "
                          "connection")
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None:
        from .resources import available_cpus

        keeper = _start_keeper(num_cpus or available_cpus())
        conn = Connection("", keeper)
        try:
            info = _read_address(keeper, START_TIMEOUT)
            conn.address = info["address"]
            if info.get("auth_mode"):
                _use_auth_mode(ray, info["auth_mode"])
            _join(ray, conn.address)
        except BaseException:
            conn.close()
            raise
        log(f"ray: started a local Ray instance at {conn.address} ({_cpus(ray)} CPUs); it stops with this "
            "run")
        return conn
    try:
        _join(ray, address)
    except Exception as err:  # ConnectionError, a version mismatch, an unreachable head: one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"cannot join the Ray cluster at {address!r}: {first}; check that it runs and has "
                          "the same Ray version, and for a cluster with token authentication set "
                          "RAY_AUTH_MODE=token with its token in ~/.ray/auth_token") from None
    conn = Connection(ray.get_runtime_context().gcs_address)
    nodes = len(alive_nodes(ray))
    log(f"ray: joined the Ray cluster at {conn.address} ({_cpus(ray)} CPUs on {nodes} node(s))")
    return conn


def alive_nodes(ray) -> List[Dict]:
    return [n for n in ray.nodes() if n.get("Alive")]


def _cpus(ray) -> int:
    return int(sum(n.get("Resources", {}).get("CPU", 0) for n in alive_nodes(ray)))


if __name__ == "__main__":
    raise SystemExit(keeper_main())
