"""Non-finite training: the one check every training loop calls, so a broken model is marked, not reported.

A model whose loss or weights become NaN or infinite still "predicts" (every comparison with NaN is false,
so it answers one class) and would score like a model that learned nothing, in a table that looks valid.
Every training loop of the experiments therefore calls :func:`nonfinite` on its epoch's loss (a number or
a tensor, read once per epoch, so the check costs no synchronisation per step) and, after the last epoch,
on the model itself (parameters and buffers, e.g. batch-norm statistics). Once a loop sees a non-finite
value it stops (NaN stays NaN) and its record carries ``"diverged": true`` and ``"diverged_epoch"``; the
runner then marks ``results.json`` and ``report.md`` (:func:`.runner.rebuild_report`).

Models trained side by side along a leading model axis (Table 1's batched students) get one flag per model
from :func:`nonfinite_rows`; they are independent, so one model's NaN does not touch the others.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
from torch import Tensor, nn

__all__ = ["nonfinite", "nonfinite_rows"]


def nonfinite(*items) -> bool:
    """True if any item holds a NaN or an infinity.

    An item is a number, a tensor (all its elements; integer tensors are always finite), a module (all its
    floating parameters and buffers), or a list/tuple of those.
    """
    for item in items:
        if item is None:
            continue
        if isinstance(item, (int, float)):
            if not math.isfinite(item):
                return True
        elif isinstance(item, Tensor):
            floating = item.is_floating_point() or item.is_complex()
            if floating and not bool(torch.isfinite(item.detach()).all()):
                return True
        elif isinstance(item, nn.Module):
            if nonfinite(*item.parameters(), *item.buffers()):
                return True
        elif isinstance(item, (list, tuple)):
            if nonfinite(*item):
                return True
        else:
            raise TypeError(f"nonfinite: cannot check a {type(item).__name__}")
    return False


def nonfinite_rows(tensors: Iterable[Tensor]) -> Optional[Tensor]:
    """``(B,)`` bool: which of the ``B`` models stacked along dim 0 of every tensor hold a non-finite value
    (``None`` for no tensors)."""
    flags = None
    for t in tensors:
        bad = ~torch.isfinite(t.detach().reshape(t.shape[0], -1)).all(1)
        flags = bad if flags is None else flags | bad
    return flags

