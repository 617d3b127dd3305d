"""The paper's experiments: configs and presets, run folders with resume, executors, reports.

``actadapt reproduce TABLE`` (see :mod:`actadapt.cli`) drives :func:`reproduce`; ``actadapt report DIR``
drives :func:`rebuild_report`; ``actadapt plan TABLE`` drives :func:`.plan.make_plan`. The layout:

* :mod:`.data` (one loader per data set), :mod:`.models` (the networks), :mod:`.tables` (one module per table,
  each an :class:`~.registry.Experiment` registered in :mod:`.registry`);
* the machinery every table shares: :mod:`.config` (configs, presets, validation, the config hash),
  :mod:`.table` (results, ``folds.csv``, the report), :mod:`.grid` (the conv x FC grid of Tables 2-4),
  :mod:`.loop` (their training loop, checkpoints and resume), :mod:`.probe` (timing a task's first steps),
  :mod:`.plan` (a run's tasks and CPU-hours before it starts, from those timings),
  :mod:`.seeds`, :mod:`.folds`, :mod:`.divergence`, :mod:`.figures`, :mod:`.report`, and the run itself:
  :mod:`.runner`, :mod:`.executors`, :mod:`.rundir`, :mod:`.lifecycle`, :mod:`.resources`;
* the paper's claims: :mod:`.paired` (paired differences between two cells), :mod:`.verdict` (does one
  reproduce the paper's?) and :mod:`.status` (``actadapt report --status``: the document over run folders).

Importing this package imports neither torch-heavy code nor matplotlib.
"""

from .config import ConfigError
from .registry import available_experiments, get_experiment
from .runner import rebuild_report, reproduce

__all__ = ["ConfigError", "available_experiments", "get_experiment", "reproduce", "rebuild_report"]
