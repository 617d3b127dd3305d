"""The registry of reproducible experiments: ``table1``-``table4`` (:mod:`.tables`), imported on first use.

An experiment is a small object that the runner drives:

* ``name``, ``title``; ``config_class`` (a dataclass, see :mod:`.config`) and ``presets`` (name -> overrides);
* ``tasks(cfg) -> list[Task]``: independent units of work, each naming the files it writes;
* ``run_task(cfg, task, run_dir)``: do one unit and write its files (atomically, :func:`.runner.write_json`);
* ``summarize(cfg, run_dir) -> dict``: the ``results.json`` content, computed from the files alone;
* ``report(cfg, run_dir, results) -> str``: the markdown of ``report.md`` (figures written beside it);
* ``memory_estimate(cfg)``: the peak memory of one task (:class:`.resources.MemoryEstimate`), checked against
  the machine before any training (default: unknown, only the worker's own size is counted);
* a record may carry ``"diverged": true`` (its loss or weights became non-finite): the runner reports it;
* its training loops report every step to :mod:`.probe`, so a planner can time a task's first steps by
  running ``run_task`` inside :func:`.probe.probe_steps` (into a scratch folder) without running it whole;
  ``task_kind(task)`` names the parameters that decide a task's cost (``actadapt plan`` times one task of
  each kind, :mod:`.plan`; default: all of them).

A new table adds a module under :mod:`.tables` defining such an object and one line to :data:`_BUILTIN`; it
gets the CLI, run folders, resume and executors for free. :class:`.table.TableExperiment` gives it
``summarize`` and ``report`` from its records; a conv x FC grid (:class:`.grid.GridExperiment`) supplies only
its data, model, ``train_cell`` and extra report sections.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .config import ConfigError

__all__ = ["Task", "Experiment", "register", "get_experiment", "available_experiments", "describe"]


@dataclass(frozen=True)
class Task:
    """One unit of work: an id (a safe file-name stem), its parameters, and the run-folder paths it writes."""

    id: str
    params: Dict = field(default_factory=dict)
    outputs: tuple = ()


class Experiment:
    """Base class; see the module notes. Subclasses set the class attributes and the four methods."""

    name: str = ""
    title: str = ""
    config_class: type = object
    presets: Dict[str, Dict] = {}
    needs_data: bool = False

    def tasks(self, cfg) -> List[Task]:
        raise NotImplementedError

    def run_task(self, cfg, task: Task, run_dir: str, progress=None) -> None:
        raise NotImplementedError

    def summarize(self, cfg, run_dir: str) -> Dict:
        raise NotImplementedError

    def report(self, cfg, run_dir: str, results: Dict) -> str:
        raise NotImplementedError

    def task_kind(self, task: Task) -> Dict:
        """The parameters of ``task`` that decide what it costs: tasks of one kind cost about the same, and
        ``actadapt plan`` times one of each (:mod:`.plan`). Default: all its parameters (each task its own
        kind unless two have equal parameters)."""
        return dict(task.params)

    def memory_estimate(self, cfg):
        """The peak memory of one task in bytes, as a :class:`.resources.MemoryEstimate`, or ``None``."""
        return None

    def worker_setup(self, cfg) -> None:
        """Process-wide settings for a worker, called once per task before ``run_task``: torch threads from
        ``cfg.threads`` and the actadapt backend from ``cfg.backend`` (``"env"``: leave ``$ACTADAPT_BACKEND``),
        where the config has them."""
        import torch

        from .. import set_backend

        threads = getattr(cfg, "threads", None)
        if threads:
            torch.set_num_threads(threads)
        backend = getattr(cfg, "backend", "env")
        if backend != "env":
            set_backend(backend)


_REGISTRY: Dict[str, Experiment] = {}
# name -> module that registers it when imported (imported lazily, so the CLI starts fast)
_BUILTIN = {"table1": "actadapt.experiments.tables.table1", "table2": "actadapt.experiments.tables.table2",
            "table3": "actadapt.experiments.tables.table3", "table4": "actadapt.experiments.tables.table4"}


def register(experiment: Experiment) -> Experiment:
    _REGISTRY[experiment.name.lower()] = experiment
    return experiment


def available_experiments() -> List[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name`` (case-insensitive); an unknown name fails listing the valid ones."""
    key = str(name).lower()
    if key not in _REGISTRY and key in _BUILTIN:
        importlib.import_module(_BUILTIN[key])
    if key not in _REGISTRY:
        raise ConfigError(f"unknown table {name!r}; valid tables: {', '.join(available_experiments())}")
    return _REGISTRY[key]


def get_preset(experiment: Experiment, preset: Optional[str]) -> Dict:
    if preset not in experiment.presets:
        raise ConfigError(
            f"unknown preset {preset!r} for {experiment.name}; valid presets: {', '.join(experiment.presets)}"
        )
    return dict(experiment.presets[preset])


def describe(experiment: Experiment) -> List[str]:
    """The lines ``actadapt list`` prints for an experiment: its title; each preset's resolved config, as the
    keys whose value differs from the default (validated, as a run would resolve them); then every key with
    its default, help text and allowed values."""
    import dataclasses

    from .config import config_to_dict, resolve_config

    defaults = config_to_dict(resolve_config(experiment.config_class))
    lines = [f"{experiment.name}: {experiment.title}", f"  presets: {', '.join(experiment.presets)}"]
    for name in experiment.presets:
        values = config_to_dict(resolve_config(experiment.config_class, get_preset(experiment, name)))
        changed = [f"{k}={v!r}" for k, v in values.items() if v != defaults[k]]
        lines.append(f"  preset {name}: {', '.join(changed) or 'the defaults'}")
    lines.append("  keys (default: help):")
    for f in dataclasses.fields(experiment.config_class):
        meta = f.metadata
        choices = f" (choices: {', '.join(map(str, meta['choices']))})" if meta.get("choices") else ""
        lines.append(f"  {f.name} = {defaults[f.name]!r}: {meta.get('help', '')}{choices}")
    return lines
