"""Run folders: resolve a config, run the tasks that are not done yet, then write results and the report.

A run folder ``DIR`` holds::

    config.json     the resolved config, its hash, the table and preset (written first)
    folds/*.json    one record per finished fold, each written atomically (temp file + os.replace)
    folds.csv       per-fold metrics, rebuilt from folds/ by every run and by ``actadapt report``
    results.json    the table (format: actadapt.experiments.report.RESULTS_FORMAT)
    report.md       the table beside the paper's, choices made, figures
    figures/*.png
    .actadapt.lock  while a run or a report works in it: the holder's PID and host

Safety (:mod:`.rundir`): ``--out`` must be new, empty, or a run folder of ours; nothing inside it may be a
link; one process at a time holds its lock. Signals (:mod:`.lifecycle`): SIGINT, SIGTERM and SIGHUP stop
the executor's workers before the run ends; workers end with their driver even after a ``kill -9``.

Resume: a task counts as done when every file it names exists, parses and carries this config's hash;
otherwise it runs again from scratch (every task is deterministic given the config, so the rerun writes the
same numbers). A killed process can leave only its temp files (``.NAME.actadapt-tmp-PID``) behind, which
nothing reads and the next run deletes. Rerunning into a folder whose config differs fails, naming the keys
that differ. A record whose training diverged (``"diverged": true``: its loss or weights became non-finite)
counts as done, and the results and the report say so.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, List, Mapping, Optional

from .config import (HASH_EXCLUDE, ConfigError, config_hash, config_to_dict, hashed_config, resolve_config,
                     saved_config_values)
from .executors import EXECUTORS, Job, make_executor
from .lifecycle import stop_on_signals
from .registry import Experiment, Task, get_experiment, get_preset
from .rundir import (
    RUN_FORMAT,
    RunLock,
    check_out_folder,
    clean_temp_files,
    refuse_links,
    write_json,
    write_text,
)

__all__ = [
    "RUN_FORMAT",
    "write_json",
    "write_text",
    "write_record",
    "read_record",
    "prepare_run_dir",
    "task_done",
    "resolve_run",
    "local_tasks",
    "run_order",
    "reproduce",
    "rebuild_report",
    "load_run",
]

FIXED_OUTPUTS = ("config.json", "results.json", "report.md", "folds.csv")


# ---------------------------------------------------------------------------------------- records
def write_record(run_dir: str, relpath: str, record: Dict, cfg_hash: str) -> None:
    """Write one task output (a JSON record stamped with the config hash) atomically, inside ``run_dir``."""
    write_json(os.path.join(run_dir, relpath), {**record, "config_hash": cfg_hash}, root=run_dir)


def read_record(path: str, cfg_hash: str) -> Optional[Dict]:
    """The record at ``path`` if it exists, parses and belongs to ``cfg_hash``; else ``None``."""
    try:
        with open(path, encoding="utf-8") as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("config_hash") != cfg_hash:
        return None
    return rec


def read_records(run_dir: str, cfg, relpaths) -> List[Dict]:
    """The finished records among ``relpaths`` (run-folder-relative) that belong to ``cfg``, in that order."""
    chash = config_hash(hashed_config(cfg))
    records = (read_record(os.path.join(run_dir, rel), chash) for rel in relpaths)
    return [rec for rec in records if rec is not None]


# ----------------------------------------------------------------------------------------- run dirs
def prepare_run_dir(out: str, exp: Experiment, preset: str, cfg, tasks: Optional[List[Task]] = None) -> str:
    """Check that ``out`` is ours and holds no link, write ``config.json`` (or check that it holds the same
    config), delete our temp files a killed run left; returns the config hash.

    Call it holding the folder's :class:`.rundir.RunLock` (:func:`reproduce` does).
    """
    check_out_folder(out)
    refuse_links(out)
    cfg_dict = config_to_dict(cfg)
    chash = config_hash(hashed_config(cfg))
    path = os.path.join(out, "config.json")
    if os.path.exists(path):
        _, _, old = _read_meta(out)
        if old.get("table") != exp.name:
            raise ConfigError(f"output folder {out!r} holds a run of {old.get('table')!r}, not {exp.name!r}; "
                              "give another --out")
        if old.get("config_hash") != chash:
            old_cfg = saved_config_values(type(cfg), old.get("config", {}))
            diff = sorted(k for k in set(old_cfg) | set(cfg_dict) if k not in HASH_EXCLUDE and old_cfg.get(k) != cfg_dict.get(k))
            raise ConfigError(
                f"output folder {out!r} holds a run with a different config (keys differ: {', '.join(diff)}); "
                "give another --out to start a new run, or the same settings to resume"
            )
    import torch

    from .. import __version__

    write_json(path, {
        "format": RUN_FORMAT,
        "table": exp.name,
        "preset": preset,
        "config_hash": chash,
        "config": cfg_dict,
        "actadapt_version": __version__,
        "torch_version": torch.__version__,
    }, root=out, strict=True)  # strict: a non-finite value would read back as null and poison every rerun
    outputs = [p for t in (tasks if tasks is not None else exp.tasks(cfg)) for p in t.outputs]
    clean_temp_files(out, legacy_outputs=list(FIXED_OUTPUTS) + outputs)
    return chash


def task_done(run_dir: str, task: Task, cfg_hash: str) -> bool:
    return all(read_record(os.path.join(run_dir, p), cfg_hash) is not None for p in task.outputs)


def _malformed(path: str, what: str) -> ConfigError:
    return ConfigError(f"{path!r} is malformed: {what}; it is not what `actadapt reproduce` writes "
                       "(edited by hand?)")


def _read_meta(run_dir: str):
    """``(path, exists, meta)`` of ``run_dir/config.json``, its structure checked (one-line errors)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.lexists(path):
        return path, False, {}
    if os.path.islink(path) or not os.path.isfile(path):
        raise ConfigError(f"{path!r} is not a regular file; a run folder's config.json is one")
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except ValueError as err:
        raise ConfigError(f"{path!r} is not valid JSON ({err}); it is not what `actadapt reproduce` "
                          "writes") from None
    except OSError as err:
        raise ConfigError(f"cannot read {path!r}: {err.strerror or err}") from None
    if not isinstance(meta, dict):
        raise _malformed(path, f"it holds a JSON {type(meta).__name__}, expected an object")
    for key, kind in (("format", str), ("table", str), ("config_hash", str), ("config", dict)):
        if key not in meta:
            raise _malformed(path, f"the key {key!r} is missing")
        if not isinstance(meta[key], kind):
            expected = "object" if kind is dict else "string"
            raise _malformed(path, f"{key!r} is {meta[key]!r}, expected a JSON {expected}")
    if not meta["format"].startswith("actadapt-run/"):
        raise _malformed(path, f"'format' is {meta['format']!r}, expected {RUN_FORMAT!r}")
    return path, True, meta


def load_run(run_dir: str):
    """``(experiment, cfg, config.json dict)`` of an existing run folder; a malformed one is a one-line
    :class:`ConfigError` saying what is wrong."""
    path, exists, meta = _read_meta(run_dir)
    if not exists:
        raise ConfigError(f"{run_dir!r} is not a run folder: no config.json (expected the --out of "
                          "`actadapt reproduce`)")
    try:
        exp = get_experiment(meta["table"])
        cfg = resolve_config(exp.config_class, saved_config_values(exp.config_class, meta["config"]))
    except ConfigError as err:
        raise ConfigError(f"{path!r}: {err}") from None
    return exp, cfg, meta


def _progress_enabled() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


# ---------------------------------------------------------------------------------------- run a table
def resolve_run(table: str, preset: str, *, seed: Optional[int] = None,
                overrides: Optional[Mapping[str, Any]] = None, config_file: Optional[Mapping[str, Any]] = None,
                data_dir: Optional[str] = None):
    """``(experiment, cfg)`` of a run: the preset, then the config file, the ``--set`` overrides, the seed
    and the data root (``data_dir``, else ``$ACTADAPT_DATA``), validated; bad input is a one-line
    :class:`ConfigError`. What :func:`reproduce` runs and ``actadapt plan`` (:mod:`.plan`) sizes."""
    exp = get_experiment(table)
    layers: List[Optional[Mapping[str, Any]]] = [get_preset(exp, preset), config_file, overrides]
    if seed is not None:
        layers.append({"seed": seed})
    if data_dir is not None and not os.path.isdir(data_dir):
        raise ConfigError(
            f"data root {data_dir!r} is not a folder; expected the folder holding mnist/, movie-review/, "
            "word-vectors/, url-iscx2016/ (or set $ACTADAPT_DATA)"
        )
    if exp.needs_data:  # the experiment's config has a data_dir key (not part of the config hash)
        root = data_dir or os.environ.get("ACTADAPT_DATA")
        if root:
            layers.append({"data_dir": root})
    return exp, resolve_config(exp.config_class, *layers)


def local_tasks(exp: Experiment, cfg, workers: Optional[int], log=print):
    """``(tasks, number of worker processes)`` of a run on this machine (:func:`.resources.plan_workers`):
    one worker must fit before ``tasks()`` reads any data (Table 4's does); a one-line :class:`ConfigError`
    when it does not, or when ``cfg.threads`` exceeds the CPUs."""
    from .resources import plan_workers

    plan_workers(exp, cfg, 1, 1, log)
    tasks = exp.tasks(cfg)
    return tasks, plan_workers(exp, cfg, workers, len(tasks), log)


def run_order(tasks: List[Task]) -> List[Task]:
    """The order a run starts its tasks in: the dearest (``cost``) first, so a process pool ends evenly."""
    return sorted(tasks, key=lambda t: -float(t.params.get("cost", 0)))


def reproduce(
    table: str,
    preset: str = "quick",
    out: Optional[str] = None,
    *,
    seed: Optional[int] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    config_file: Optional[Mapping[str, Any]] = None,
    data_dir: Optional[str] = None,
    workers: Optional[int] = 1,
    executor: str = "local",
    address: Optional[str] = None,
    progress: Optional[bool] = None,
    log=print,
) -> Dict:
    """Run (or resume) ``table`` with ``preset`` into ``out`` and write results, report and figures.

    ``executor="local"``: ``workers=None`` picks as many worker processes as the CPUs, the tasks and the
    memory allow. ``executor="ray"``: one Ray task per task on the cluster at ``address`` (default:
    ``$RAY_ADDRESS``, else a local Ray instance for this run), at most ``workers`` at once (``None``: what the
    cluster holds); see :mod:`.ray_executor`. Returns the ``results.json`` content. Raises
    :class:`ConfigError` for bad input (a config that does not fit this machine included, before anything is
    written), :class:`.lifecycle.RunInterrupted` when a signal stopped the run (its workers are gone by then).
    """
    exp, cfg = resolve_run(table, preset, seed=seed, overrides=overrides, config_file=config_file,
                           data_dir=data_dir)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers must be a positive integer, got {workers!r}")
    _check_executor(executor, address)
    out = out or os.path.join("runs", f"{exp.name}-{preset}")
    check_out_folder(out)  # a user's folder is refused before anything is written into it
    if executor == "local":
        tasks, n_workers = local_tasks(exp, cfg, workers, log)
    else:  # a cluster's nodes are sized by the Ray executor, not by this machine
        tasks, n_workers = exp.tasks(cfg), workers
    with stop_on_signals(), RunLock(out, f"actadapt reproduce {exp.name} --preset {preset}") as lock:
        if lock.taken_over:
            old = lock.taken_over
            log(f"note: took over the lock of PID {old.get('pid')} on {old.get('host')}, which is no longer "
                "running")
        chash = prepare_run_dir(out, exp, preset, cfg, tasks)
        todo = run_order([t for t in tasks if not task_done(out, t, chash)])
        show = _progress_enabled() if progress is None else progress
        log(f"{exp.name} ({preset}): {len(tasks) - len(todo)} of {len(tasks)} tasks already done in {out}")
        cfg_dict = config_to_dict(cfg)
        jobs = [Job(exp.name, cfg_dict, t.id, t.params, tuple(t.outputs), out) for t in todo]
        t0, started = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if jobs:
            from tqdm.auto import tqdm

            n_workers = min(n_workers, len(jobs)) if n_workers is not None else None

            def epoch_bar(job: Job):
                if not show or n_workers != 1:
                    return None
                bar = tqdm(total=job.task_params.get("epochs"), desc=f"  {job.task_id}", unit="epoch",
                           leave=False)
                return _Callback(bar)

            with make_executor(n_workers, epoch_bar, kind=executor, address=address, log=log) as running, \
                    tqdm(total=len(jobs), desc=exp.name, unit="task", disable=not show) as bar:
                for job, seconds in running.run(jobs):
                    bar.update(1)
                    if not show:
                        log(f"  task {job.task_id} done in {seconds:.1f} s")
        seconds = time.perf_counter() - t0
        log(f"training: {seconds:.1f} s")
        session = {"started": started, "seconds": round(seconds, 1), "tasks": len(jobs), "workers": n_workers,
                   "executor": executor} if jobs else None
        return rebuild_report(out, log=log, session=session)


def _check_executor(executor: str, address: Optional[str]) -> None:
    """One-line errors for an unknown executor, an address without Ray, and Ray not installed, before
    anything is written."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    if address is not None and executor != "ray":
        raise ConfigError(f"--address {address} is the address of a Ray cluster: it needs --executor ray")
    if executor == "ray":
        from .ray_instance import import_ray

        import_ray()


class _Callback:
    """Adapts a tqdm bar to the ``progress(epoch)`` callback of a task."""

    def __init__(self, bar):
        self.bar = bar

    def __call__(self, epoch: int) -> None:
        self.bar.update(epoch - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _scan_records(run_dir: str, tasks: List[Task], chash: str):
    """``(ids of unfinished tasks, run-folder paths of the records marked diverged)``."""
    missing, diverged = [], []
    for task in tasks:
        records = [(rel, read_record(os.path.join(run_dir, rel), chash)) for rel in task.outputs]
        if any(rec is None for _, rec in records):
            missing.append(task.id)
        diverged += [rel for rel, rec in records if rec is not None and rec.get("diverged") is True]
    return missing, diverged


def _diverged_banner(diverged: List[str]) -> str:
    shown = ", ".join(os.path.splitext(os.path.basename(p))[0] for p in diverged[:6])
    more = f" and {len(diverged) - 6} more" if len(diverged) > 6 else ""
    return (f"**Diverged: {len(diverged)} trained model(s) ended with a non-finite loss or non-finite "
            f"weights ({shown}{more}). Their accuracies are those of a broken model, not results; the cells "
            "that hold them are not comparable (lower lr, or see the choices below).**")


def _sessions(run_dir: str) -> List[Dict]:
    """The training sessions the run folder's ``results.json`` recorded (none if it is missing or unreadable)."""
    try:
        with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as fh:
            old = json.load(fh).get("sessions")
    except (OSError, ValueError, AttributeError):
        return []
    return [s for s in old if isinstance(s, dict)] if isinstance(old, list) else []


def rebuild_report(run_dir: str, log=print, session: Optional[Dict] = None) -> Dict:
    """Recompute ``results.json``, ``folds.csv``, the figures and ``report.md`` from the run folder's files.

    ``results.json`` keeps the training sessions recorded before (``sessions``: when each started, its wall
    time, tasks and workers), plus ``session`` when a run just trained. Takes the folder's lock (a run still
    writing there makes this fail at once); a malformed folder is a one-line :class:`ConfigError`.
    """
    load_run(run_dir)  # a malformed or foreign folder fails here, before the lock file is made
    refuse_links(run_dir)
    with RunLock(run_dir, "actadapt report"):
        exp, cfg, meta = load_run(run_dir)
        chash = meta["config_hash"]
        if chash != config_hash(hashed_config(cfg)):
            raise ConfigError(f"{run_dir}/config.json: its config_hash does not match its config "
                              "(edited by hand?)")
        missing, diverged = _scan_records(run_dir, exp.tasks(cfg), chash)
        try:
            results = exp.summarize(cfg, run_dir)
            results["preset"] = meta.get("preset")
            results["complete"] = not missing
            results["diverged"] = bool(diverged)
            results["diverged_records"] = diverged
            results["sessions"] = _sessions(run_dir) + ([session] if session else [])
            report = exp.report(cfg, run_dir, results)
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            raise ConfigError(
                f"run folder {run_dir!r} holds a malformed record ({type(err).__name__}: {err}); records are "
                "written by `actadapt reproduce` only: delete the damaged file under folds/ or cells/ and "
                "rerun to redo its task"
            ) from err
        if diverged:
            title, _, rest = report.partition("\n")
            report = f"{title}\n\n{_diverged_banner(diverged)}\n{rest}"
        write_json(os.path.join(run_dir, "results.json"), results, root=run_dir)
        write_text(os.path.join(run_dir, "report.md"), report, root=run_dir)
    if missing:
        log(f"warning: {len(missing)} task(s) not finished ({', '.join(missing[:4])}{'...' if len(missing) > 4 else ''}); "
            "the report covers the finished folds only; rerun `actadapt reproduce` with the same settings to finish")
    if diverged:
        log(f"warning: {len(diverged)} trained model(s) diverged (non-finite loss or weights): "
            f"{', '.join(diverged[:4])}{'...' if len(diverged) > 4 else ''}; see report.md")
    log(f"wrote {os.path.join(run_dir, 'results.json')} and {os.path.join(run_dir, 'report.md')}")
    return results
