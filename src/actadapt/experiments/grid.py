"""The conv x FC activation grid over cross-validation folds (Tables 3 and 4): cell ids, record paths, tasks.

Every (conv activation, FC activation, fold) is one task; it writes ``folds/<conv>-<fc>__fold<k>.json``.
"""

from __future__ import annotations

import os
from typing import List, Sequence

from .registry import Task

__all__ = ["cell_id", "record_path", "fold_grid_tasks"]


def cell_id(conv: str, fc: str) -> str:
    return f"{conv}-{fc}"


def record_path(conv: str, fc: str, fold: int) -> str:
    return os.path.join("folds", f"{cell_id(conv, fc)}__fold{fold}.json")


def fold_grid_tasks(folds: int, conv_acts: Sequence[str], fc_acts: Sequence[str], epochs: int) -> List[Task]:
    """One task per fold and cell, fold-major (the first fold of every cell finishes first)."""
    return [
        Task(f"{cell_id(conv, fc)}-fold{k}", {"conv": conv, "fc": fc, "fold": k, "epochs": epochs, "cost": 1},
             (record_path(conv, fc, k),))
        for k in range(folds) for conv in conv_acts for fc in fc_acts
    ]
