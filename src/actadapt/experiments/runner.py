"""Run folders: resolve a config, run the tasks that are not done yet, then write results and the report.

A run folder ``DIR`` holds::

    config.json     the resolved config, its hash, the table and preset (written first)
    folds/*.json    one record per finished fold, each written atomically (temp file + os.replace)
    folds.csv       per-fold metrics, rebuilt from folds/ by every run and by ``actadapt report``
    results.json    the table (format: actadapt.experiments.report.RESULTS_FORMAT)
    report.md       the table beside the paper's, choices made, figures
    figures/*.png

Resume: a task counts as done when every file it names exists, parses and carries this config's hash;
otherwise it runs again from scratch (every task is deterministic given the config, so the rerun writes the
same numbers). A killed process can leave only ``*.tmp-*`` files behind, which nothing reads and the next
run deletes. Rerunning into a folder whose config differs fails, naming the keys that differ.
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys
import time
from typing import Any, Dict, List, Mapping, Optional

from .config import ConfigError, config_hash, config_to_dict, resolve_config
from .executors import Job, make_executor
from .registry import Experiment, Task, get_experiment, get_preset

__all__ = [
    "RUN_FORMAT",
    "write_json",
    "write_text",
    "write_record",
    "read_record",
    "prepare_run_dir",
    "task_done",
    "reproduce",
    "rebuild_report",
    "load_run",
]

RUN_FORMAT = "actadapt-run/1"
HASH_EXCLUDE = ("data_dir",)  # where the data lives does not change the results


# ---------------------------------------------------------------------------------------- atomic IO
def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temp file in the same folder, fsync, then ``os.replace``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _finite(obj: Any) -> Any:
    """NaN and infinities become ``null`` (strict JSON has neither); containers are walked."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: str, data: Any) -> None:
    """Write strict JSON (NaN/inf as null) atomically."""
    write_text(path, json.dumps(_finite(data), indent=1, allow_nan=False) + "\n")


def write_record(run_dir: str, relpath: str, record: Dict, cfg_hash: str) -> None:
    """Write one task output (a JSON record stamped with the config hash) atomically."""
    write_json(os.path.join(run_dir, relpath), {**record, "config_hash": cfg_hash})


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
    from .config import config_hash

    chash = config_hash(hashed_config(cfg))
    records = (read_record(os.path.join(run_dir, rel), chash) for rel in relpaths)
    return [rec for rec in records if rec is not None]


def hashed_config(cfg) -> Dict:
    """The part of a config that identifies its results: keys at their default value are left out, so a key
    added later (whose default keeps the old behaviour) does not orphan existing run folders."""
    import dataclasses

    defaults = {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        for f in dataclasses.fields(cfg)
    }
    d = config_to_dict(cfg)
    return {k: v for k, v in d.items() if k not in HASH_EXCLUDE and v != defaults.get(k, object())}


# ----------------------------------------------------------------------------------------- run dirs
def _check_writable(out: str) -> None:
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, f".write-test-{os.getpid()}")
        with open(probe, "w") as fh:
            fh.write("")
        os.remove(probe)
    except OSError as err:
        raise ConfigError(f"cannot write to output folder {out!r}: {err.strerror or err}; give a writable --out") from None


def prepare_run_dir(out: str, exp: Experiment, preset: str, cfg) -> str:
    """Create ``out`` (or reuse it for the same config), write ``config.json``; returns the config hash."""
    _check_writable(out)
    cfg_dict = config_to_dict(cfg)
    chash = config_hash(hashed_config(cfg))
    path = os.path.join(out, "config.json")
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                old = json.load(fh)
        except (OSError, ValueError):
            old = None
        if old is not None and (old.get("table") != exp.name or old.get("config_hash") != chash):
            if old.get("table") != exp.name:
                raise ConfigError(
                    f"output folder {out!r} holds a run of {old.get('table')!r}, not {exp.name!r}; give another --out"
                )
            old_cfg = old.get("config", {})
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
    })
    for stale in glob.glob(os.path.join(out, "**", "*.tmp-*"), recursive=True):
        try:
            os.remove(stale)  # left by a killed process; never read
        except OSError:
            pass
    return chash


def task_done(run_dir: str, task: Task, cfg_hash: str) -> bool:
    return all(read_record(os.path.join(run_dir, p), cfg_hash) is not None for p in task.outputs)


def load_run(run_dir: str):
    """``(experiment, cfg, config.json dict)`` of an existing run folder."""
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{run_dir!r} is not a run folder: no config.json (expected the --out of `actadapt reproduce`)") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path!r}: {err}") from None
    exp = get_experiment(meta.get("table", "?"))
    cfg = resolve_config(exp.config_class, meta.get("config", {}))
    return exp, cfg, meta


def _progress_enabled() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


# ---------------------------------------------------------------------------------------- run a table
def reproduce(
    table: str,
    preset: str = "quick",
    out: Optional[str] = None,
    *,
    seed: Optional[int] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    config_file: Optional[Mapping[str, Any]] = None,
    data_dir: Optional[str] = None,
    workers: int = 1,
    progress: Optional[bool] = None,
    log=print,
) -> Dict:
    """Run (or resume) ``table`` with ``preset`` into ``out`` and write results, report and figures.

    Returns the ``results.json`` content. Raises :class:`ConfigError` for bad input.
    """
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
    cfg = resolve_config(exp.config_class, *layers)
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {workers!r}")
    out = out or os.path.join("runs", f"{exp.name}-{preset}")
    chash = prepare_run_dir(out, exp, preset, cfg)
    tasks = exp.tasks(cfg)
    todo = [t for t in tasks if not task_done(out, t, chash)]
    # expensive tasks first, so a process pool ends evenly
    todo.sort(key=lambda t: -float(t.params.get("cost", 0)))
    show = _progress_enabled() if progress is None else progress
    log(f"{exp.name} ({preset}): {len(tasks) - len(todo)} of {len(tasks)} tasks already done in {out}")
    cfg_dict = config_to_dict(cfg)
    jobs = [Job(exp.name, cfg_dict, t.id, t.params, tuple(t.outputs), out) for t in todo]
    t0 = time.perf_counter()
    if jobs:
        from tqdm.auto import tqdm

        n_workers = min(workers, len(jobs))

        def epoch_bar(job: Job):
            if not show or n_workers != 1:
                return None
            bar = tqdm(total=job.task_params.get("epochs"), desc=f"  {job.task_id}", unit="epoch", leave=False)
            return _Callback(bar)

        executor = make_executor(n_workers, epoch_bar)
        with tqdm(total=len(jobs), desc=exp.name, unit="task", disable=not show) as bar:
            for job, seconds in executor.run(jobs):
                bar.update(1)
                if not show:
                    log(f"  task {job.task_id} done in {seconds:.1f} s")
    log(f"training: {time.perf_counter() - t0:.1f} s")
    return rebuild_report(out, log=log)


class _Callback:
    """Adapts a tqdm bar to the ``progress(epoch)`` callback of a task."""

    def __init__(self, bar):
        self.bar = bar

    def __call__(self, epoch: int) -> None:
        self.bar.update(epoch - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def rebuild_report(run_dir: str, log=print) -> Dict:
    """Recompute ``results.json``, ``folds.csv``, the figures and ``report.md`` from the run folder's files."""
    exp, cfg, meta = load_run(run_dir)
    chash = meta.get("config_hash")
    if chash != config_hash(hashed_config(cfg)):
        raise ConfigError(f"{run_dir}/config.json: its config_hash does not match its config (edited by hand?)")
    missing = [t.id for t in exp.tasks(cfg) if not task_done(run_dir, t, chash)]
    results = exp.summarize(cfg, run_dir)
    results["preset"] = meta.get("preset")
    results["complete"] = not missing
    write_json(os.path.join(run_dir, "results.json"), results)
    write_text(os.path.join(run_dir, "report.md"), exp.report(cfg, run_dir, results))
    if missing:
        log(f"warning: {len(missing)} task(s) not finished ({', '.join(missing[:4])}{'...' if len(missing) > 4 else ''}); "
            "the report covers the finished folds only; rerun `actadapt reproduce` with the same settings to finish")
    log(f"wrote {os.path.join(run_dir, 'results.json')} and {os.path.join(run_dir, 'report.md')}")
    return results
