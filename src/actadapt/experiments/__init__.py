"""The paper's experiments: configs and presets, run folders with resume, executors, reports.

``actadapt reproduce TABLE`` (see :mod:`actadapt.cli`) drives :func:`reproduce`; ``actadapt report DIR``
drives :func:`rebuild_report`. Each table is an :class:`~.registry.Experiment` registered in
:mod:`.registry`. Importing this package imports neither torch-heavy code nor matplotlib.
"""

from .config import ConfigError
from .registry import available_experiments, get_experiment
from .runner import rebuild_report, reproduce

__all__ = ["ConfigError", "available_experiments", "get_experiment", "reproduce", "rebuild_report"]
