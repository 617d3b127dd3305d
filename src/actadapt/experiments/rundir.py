"""Run folders are ours or refused: ownership, atomic writes that never pass through a link, our temp
files, and the lock that keeps a second process out.

* **Ownership** (:func:`check_out_folder`). ``--out`` may be a new folder, an empty one, or a run folder of
  ours (a ``config.json`` whose ``format`` is ``actadapt-run/...``). Anything else is refused, so a user's
  files are never overwritten.
* **Links** (:func:`refuse_links`, :func:`atomic_write`). The run folder itself may be reached through a
  link (the user chose it), but nothing *inside* it may be one: a run or a report refuses a folder holding a
  symbolic link, and every write checks each folder between the run folder and the file with ``lstat``, so
  nothing is written (or deleted) through a link planted later either.
* **Temp files** (:data:`TEMP_MARK`). A write goes to ``.NAME.actadapt-tmp-PID`` beside ``NAME`` (created
  with ``O_EXCL | O_NOFOLLOW``), then ``os.replace``. :func:`clean_temp_files` deletes only names of exactly
  that pattern (plus the pre-0.2 ``NAME.tmp-PID`` of an output the run itself names), only regular files,
  only inside the run folder, never descending into a linked folder.
* **Lock** (:class:`RunLock`). ``.actadapt.lock`` holds the holder's PID, host, start time and command;
  an exclusive ``flock`` on it is the lock itself, so the kernel releases it when its holder dies, however it
  dies: a lock file left by a dead process is taken over, one held by a live process makes a second run (or
  ``actadapt report``) on the same folder fail at once, naming the holder. Reentrant within a process.
  Where ``flock`` is missing (Windows, a file system without locks) the file is created exclusively and the
  lock of a dead process on the same host is taken over.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import socket
import stat
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

from .config import ConfigError

__all__ = [
    "RUN_FORMAT",
    "LOCK_NAME",
    "TEMP_MARK",
    "RunFolderError",
    "RunFolderBusy",
    "temp_name",
    "is_temp_name",
    "atomic_write",
    "write_text",
    "write_json",
    "remove_file",
    "make_dirs",
    "check_out_folder",
    "refuse_links",
    "clean_temp_files",
    "RunLock",
]

RUN_FORMAT = "actadapt-run/1"
LOCK_NAME = ".actadapt.lock"
TEMP_MARK = ".actadapt-tmp-"
_TEMP_RE = re.compile(r"^\..+" + re.escape(TEMP_MARK) + r"\d+$")
_LEGACY_TEMP_RE = re.compile(r"^(?P<name>.+)\.tmp-\d+$")  # NAME.tmp-PID, as written before 0.2


class RunFolderError(ConfigError):
    """A run folder that actadapt must not use as it is (not ours, holds a link): one line, exit code 2."""


class RunFolderBusy(RunFolderError):
    """Another live process holds the run folder's lock."""


# ------------------------------------------------------------------------------------- temp files
def temp_name(path: str) -> str:
    """The temp file our writer uses for ``path``: ``DIR/.NAME.actadapt-tmp-PID``."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}{TEMP_MARK}{os.getpid()}")


def is_temp_name(name: str) -> bool:
    """True for a file name that only :func:`temp_name` makes."""
    return bool(_TEMP_RE.match(name))


# ------------------------------------------------------------------------------------- safe paths
def _is_link(path: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _link_error(path: str, action: str) -> RunFolderError:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return RunFolderError(f"refusing to {action} through the symbolic link {path!r} (-> {target!r}); "
                          "actadapt never writes through links in a run folder: remove the link or give "
                          "another --out")


def make_dirs(root: str, reldir: str) -> str:
    """Create ``root/reldir`` folder by folder, refusing any existing component that is a link (or not a
    folder); returns the path. ``root`` itself may be a link (and is created if missing)."""
    os.makedirs(root, exist_ok=True)
    path = root
    for part in [p for p in os.path.normpath(reldir).split(os.sep) if p not in ("", ".")]:
        if part == "..":
            raise RunFolderError(f"refusing to write outside the run folder {root!r} ({reldir!r})")
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            try:
                os.mkdir(path)
            except FileExistsError:  # made meanwhile by another worker of this run
                pass
            st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise _link_error(path, "write")
        if not stat.S_ISDIR(st.st_mode):
            raise RunFolderError(f"cannot write into {path!r}: it is a file, not a folder; "
                                 "give another --out")
    return path


def _parent_checked(path: str, root: Optional[str]) -> str:
    """The folder of ``path``, created where missing; with ``root``, every folder between ``root`` and
    ``path`` must be a real folder (no link), and ``path`` must lie below ``root``."""
    head = os.path.dirname(os.path.abspath(path))
    if root is None:
        os.makedirs(head, exist_ok=True)
        return head
    rel = os.path.relpath(head, os.path.abspath(root))
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        raise RunFolderError(f"refusing to write {path!r}: it is outside the run folder {root!r}")
    return make_dirs(root, rel)


def atomic_write(path: str, write: Callable[[Any], None], *, binary: bool = False,
                 root: Optional[str] = None) -> None:
    """Write ``path`` atomically: ``write(fh)`` fills a fresh temp file (:func:`temp_name`, created with
    ``O_EXCL | O_NOFOLLOW``) beside it, which is flushed, fsynced and renamed over ``path``.

    A link at ``path``, or (given ``root``, the run folder) at any folder between ``root`` and ``path``,
    is refused with :class:`RunFolderError`. The temp file is removed if ``write`` fails.
    """
    _parent_checked(path, root)
    if _is_link(path):
        raise _link_error(path, "write")
    tmp = temp_name(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileExistsError:  # ours, left by an earlier failed write of this very process (or a reused PID)
        if _is_link(tmp) or not os.path.isfile(tmp):
            raise _link_error(tmp, "write") from None
        os.remove(tmp)
        fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def write_text(path: str, text: str, root: Optional[str] = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(text), root=root)


def _nonfinite_key(obj: Any, where: str = "") -> Optional[str]:
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "(top level)"
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = _nonfinite_key(v, f"{where}.{k}" if where else str(k))
            if found:
                return found
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = _nonfinite_key(v, f"{where}[{i}]")
            if found:
                return found
    return None


def _finite(obj: Any) -> Any:
    """NaN and infinities become ``null`` (strict JSON has neither); containers are walked."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: str, data: Any, root: Optional[str] = None, *, strict: bool = False) -> None:
    """Write strict JSON atomically. NaN/inf become ``null``, or with ``strict`` are refused (ValueError
    naming the key): a config must never hold a value that reads back as something else."""
    if strict:
        bad = _nonfinite_key(data)
        if bad:
            raise ConfigError(f"refusing to write {path!r}: {bad} is not a finite number")
    text = json.dumps(data if strict else _finite(data), indent=1, allow_nan=False) + "\n"
    write_text(path, text, root)


def remove_file(path: str, root: str) -> None:
    """Delete the regular file ``path`` below ``root`` if it is there; links (of the file or a folder on the
    way) are left alone."""
    head = os.path.dirname(os.path.abspath(path))
    rel = os.path.relpath(head, os.path.abspath(root))
    if rel.startswith(".."):
        return
    probe = root
    for part in [p for p in rel.split(os.sep) if p not in ("", ".")]:
        probe = os.path.join(probe, part)
        if _is_link(probe) or not os.path.isdir(probe):
            return
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            os.remove(path)
    except OSError:
        pass


# ------------------------------------------------------------------------------------- ownership
def _is_our_entry(name: str) -> bool:
    """Files actadapt may have left in a folder before its config.json: the lock and temp files."""
    return name == LOCK_NAME or is_temp_name(name)


def check_out_folder(out: str) -> None:
    """Refuse an output folder that is neither new, empty, nor an actadapt run folder (one line naming it).

    Writes nothing.
    """
    if not os.path.lexists(out):
        return
    if not os.path.isdir(out):
        raise RunFolderError(f"output folder {out!r} exists and is not a folder; give another --out")
    try:
        entries = sorted(e for e in os.listdir(out) if not _is_our_entry(e))
    except OSError as err:
        raise RunFolderError(f"cannot read output folder {out!r}: {err.strerror or err}; "
                             "give another --out") from None
    if not entries:
        return
    path = os.path.join(out, "config.json")
    problem = None
    if "config.json" not in entries:
        problem = "no config.json of ours"
    elif _is_link(path) or not os.path.isfile(path):
        problem = "its config.json is not a regular file"
    else:
        try:
            with open(path, encoding="utf-8") as fh:
                meta = json.load(fh)
            if not (isinstance(meta, dict) and str(meta.get("format", "")).startswith("actadapt-run/")):
                problem = "its config.json is not an actadapt run's (no 'format': 'actadapt-run/...')"
        except (OSError, ValueError) as err:
            first_line = str(err).splitlines()[0] if str(err) else err
            problem = f"its config.json cannot be read as JSON ({first_line})"
    if problem:
        shown = ", ".join(repr(e) for e in entries[:3])
        shown += f" and {len(entries) - 3} more" if len(entries) > 3 else ""
        raise RunFolderError(
            f"output folder {out!r} is not an actadapt run folder ({problem}) and is not empty (it holds "
            f"{shown}); actadapt never writes into a folder it did not make: give a new or empty folder as "
            "--out"
        )


def refuse_links(run_dir: str) -> None:
    """Fail (one line) if anything inside ``run_dir`` is a symbolic link; never follows one."""
    for top, dirs, files in os.walk(run_dir, followlinks=False):
        for name in sorted(dirs + files):
            path = os.path.join(top, name)
            if _is_link(path):
                raise _link_error(path, "work")


def clean_temp_files(run_dir: str, legacy_outputs: Iterable[str] = ()) -> List[str]:
    """Delete the temp files a killed writer of ours left in ``run_dir``; returns their paths.

    Only regular files named by :func:`temp_name`'s pattern, or ``OUTPUT.tmp-PID`` for an output the run
    names (``legacy_outputs``, run-folder-relative: the pre-0.2 pattern), inside ``run_dir``; linked folders
    are not entered. Call it holding the folder's :class:`RunLock`, so no live writer's file is taken.
    """
    legacy = {os.path.normpath(p) for p in legacy_outputs}
    root = os.path.realpath(run_dir)
    removed = []
    for top, _dirs, files in os.walk(run_dir, followlinks=False):
        for name in files:
            path = os.path.join(top, name)
            m = _LEGACY_TEMP_RE.match(name)
            output = os.path.normpath(os.path.relpath(os.path.join(top, m["name"]), run_dir)) if m else None
            ours = is_temp_name(name) or output in legacy
            if not ours:
                continue
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                if os.path.commonpath([root, os.path.realpath(path)]) != root:
                    continue
                os.remove(path)
                removed.append(path)
            except OSError:
                pass
    return removed


# ------------------------------------------------------------------------------------- lock
def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def _read_holder(path: str) -> Dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(holder: Dict) -> str:
    if not holder.get("pid"):
        return "holder unknown"
    text = f"PID {holder.get('pid')} on host {holder.get('host', '?')}"
    if holder.get("started"):
        text += f", since {holder['started']}"
    if holder.get("command"):
        text += f", running `{holder['command']}`"
    return text


_NO_LOCKS = {getattr(errno, n) for n in ("ENOLCK", "EOPNOTSUPP", "ENOTSUP", "ENOSYS", "EINVAL")
             if hasattr(errno, n)}  # flock's answers on a file system without locks
_HELD: Dict[str, "RunLock"] = {}  # real path of the lock file -> the lock this process holds


class RunLock:
    """The exclusive lock of one run folder (see the module notes); a context manager, reentrant.

    ``taken_over`` is the holder record of a dead process's lock file that was replaced, else ``None``.
    """

    def __init__(self, run_dir: str, command: str = "") -> None:
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, LOCK_NAME)
        self.command = command
        self.taken_over: Optional[Dict] = None
        self._fd: Optional[int] = None
        self._depth = 0

    # -------------------------------------------------------------------------------- api
    def __enter__(self) -> "RunLock":
        key = os.path.realpath(self.path)
        held = _HELD.get(key)
        if held is not None:  # this process holds it already (reproduce -> rebuild_report)
            held._depth += 1
            self._outer = held
            return self
        self._outer = None
        try:
            os.makedirs(self.run_dir, exist_ok=True)
            if _is_link(self.path):
                raise _link_error(self.path, "lock")
            self._acquire()
        except OSError as err:
            raise RunFolderError(
                f"cannot write to output folder {self.run_dir!r}: {err.strerror or err}; "
                "give a writable --out"
            ) from None
        self._depth = 1
        _HELD[key] = self
        return self

    def __exit__(self, *exc) -> None:
        owner = self._outer or self
        owner._depth -= 1
        if owner._depth == 0:
            owner._release()
            _HELD.pop(os.path.realpath(owner.path), None)

    # -------------------------------------------------------------------------------- mechanics
    def _record(self) -> bytes:
        return (json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": self.command,
        }) + "\n").encode()

    def _busy(self, holder: Dict) -> RunFolderBusy:
        return RunFolderBusy(
            f"run folder {self.run_dir!r} is in use by another actadapt process ({_describe(holder)}); "
            "wait for it to finish, or give another --out"
        )

    def _acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self._acquire_exclusive()
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        while True:
            fd = os.open(self.path, flags, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in _NO_LOCKS:  # a file system without locks: fall back on the holder's PID
                    if os.fstat(fd).st_size == 0:
                        os.remove(self.path)  # the empty file our open just made
                    os.close(fd)
                    return self._acquire_exclusive()
                os.close(fd)
                if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise self._busy(_read_holder(self.path)) from None
                raise
            # the holder may have unlinked the file between our open and flock: then lock the new one
            try:
                same = os.path.samestat(os.fstat(fd), os.lstat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        old = _read_holder(self.path)
        if old.get("pid"):
            self.taken_over = old  # left by a process that died: the kernel released its flock
        os.ftruncate(fd, 0)
        os.write(fd, self._record())
        self._fd = fd

    def _acquire_exclusive(self) -> None:
        """Without ``flock`` (Windows, file systems without locks): create the file exclusively; a lock file
        of a dead process on this host is taken over (one on another host cannot be checked: busy)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        for _ in range(2):
            try:
                fd = os.open(self.path, flags, 0o644)
            except FileExistsError:
                holder = _read_holder(self.path)
                same_host = holder.get("host") == socket.gethostname()
                stale = same_host and not _pid_alive(int(holder.get("pid") or 0))
                if not stale:
                    raise self._busy(holder) from None
                self.taken_over = holder
                os.remove(self.path)
                continue
            os.write(fd, self._record())
            self._fd = fd
            return
        raise self._busy(_read_holder(self.path))

    def _release(self) -> None:
        if self._fd is None:
            return
        try:
            if os.path.samestat(os.fstat(self._fd), os.lstat(self.path)):
                os.remove(self.path)
        except OSError:
            pass
        try:
            os.close(self._fd)  # releases the flock
        finally:
            self._fd = None

