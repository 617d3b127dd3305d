"""How the fused kernels see a tensor: in memory order, as rows with one alpha each or alpha along the rows.

Both kernels (C++ and Triton) read a dense ``x`` in memory order and take alpha's broadcast pattern as four
numbers ``(G, M, C, inner)`` (:func:`layout`). :func:`plan` finds them for an output allocated like
``torch.empty_like(x)`` (which keeps a dense ``x``'s strides, channels-last included) and caches them per
shape, strides and alpha shape: the same shapes come back every training step.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["layout", "memory_order", "plan", "Plan"]


def _blocks(dims: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive axis numbers: [0, 1, 3] -> [(0, 1), (3, 3)]."""
    runs: list[tuple[int, int]] = []
    for d in dims:
        if runs and d == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def layout(x_shape: Sequence[int], alpha_shape: Sequence[int]) -> Optional[Tuple[int, int, int, int]]:
    """``(G, M, C, inner)`` for the fused kernels, or ``None`` when they do not apply.

    ``x`` (contiguous) is read as rows of ``inner`` elements; alpha holds ``G * C`` values and varies along at
    most two blocks of adjacent axes: one block of size ``C`` (per channel, per feature, ...) and optionally an
    earlier block of size ``G`` separated from it by axes of total size ``M`` (e.g. alpha of shape
    ``(models, 1, neurons)`` for a batch of models). Everything else is broadcast. Row ``r`` uses
    ``alpha[((r // (M C)) % G) C + r % C]``; with ``inner = 1`` alpha runs along the contiguous axis.
    """
    x_shape, alpha_shape = list(x_shape), list(alpha_shape)
    if len(alpha_shape) > len(x_shape):
        return None
    a_full = [1] * (len(x_shape) - len(alpha_shape)) + alpha_shape
    if any(a != 1 and a != n for a, n in zip(a_full, x_shape)):
        return None  # x itself is broadcast (e.g. an outer product): the generic path handles it
    keep = [i for i, n in enumerate(x_shape) if n != 1]  # size-1 axes of x join any block
    shape = [x_shape[i] for i in keep]
    varying = [i for i in range(len(keep)) if a_full[keep[i]] != 1]
    blocks = _blocks(varying)
    if len(blocks) > 2:
        return None

    def size(lo: int, hi: int) -> int:
        out = 1
        for n in shape[lo:hi]:
            out *= n
        return out

    if not blocks:
        return 1, 1, 1, size(0, len(shape))
    c_lo, c_hi = blocks[-1]
    G, M = 1, 1
    if len(blocks) == 2:
        g_lo, g_hi = blocks[0]
        G, M = size(g_lo, g_hi + 1), size(g_hi + 1, c_lo)
    return G, M, size(c_lo, c_hi + 1), size(c_hi + 1, len(shape))


def memory_order(strides: Sequence[int]) -> list[int]:
    """The permutation of the axes that lists them outermost first in memory (identity when contiguous)."""
    return sorted(range(len(strides)), key=lambda d: -strides[d])  # stable: size-1 axes keep their place


class Plan(NamedTuple):
    """A dense tensor's memory order (``None``: already contiguous) and the kernels' layout in that order."""

    perm: Optional[list[int]]
    layout: Tuple[int, int, int, int]

    def view(self, out: Tensor) -> Tensor:
        """``out`` (allocated like x) seen in memory order: a contiguous view."""
        return out if self.perm is None else out.permute(self.perm)

    def order(self, t: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
        """``t`` (x's shape) contiguous in the memory order, in ``dtype``: a view when it already is."""
        t = self.view(t)
        return (t if dtype is None else t.to(dtype)).contiguous()

    def alpha(self, alpha: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
        """alpha's values contiguous in the memory order, so that value ``g C + c`` is (group g, channel c)."""
        if self.perm is not None:
            alpha = alpha.reshape([1] * (len(self.perm) - alpha.dim()) + list(alpha.shape)).permute(self.perm)
        return (alpha if dtype is None else alpha.to(dtype)).contiguous()

    def alpha_back(self, grad_alpha: Tensor, alpha_k: Tensor, alpha: Tensor) -> Tensor:
        """grad_alpha in ``alpha_k``'s order (:meth:`alpha`) back to alpha's shape, dtype and order."""
        if self.perm is not None:
            inverse = sorted(range(len(self.perm)), key=self.perm.__getitem__)
            grad_alpha = grad_alpha.reshape(alpha_k.shape).permute(inverse)
        return grad_alpha.reshape(alpha.shape).to(alpha.dtype).contiguous()


_plans: dict = {}


def plan(out: Tensor, alpha: Tensor) -> Optional[Plan]:
    """The :class:`Plan` for an output ``out`` allocated by ``torch.empty_like(x)``, or ``None`` if the kernels
    decline (``out`` is always dense, so its strides give the memory order)."""
    key = (out.shape, out.stride(), alpha.shape)
    if key not in _plans:
        perm = memory_order(out.stride())
        a_full = [1] * (out.dim() - alpha.dim()) + list(alpha.shape)
        lay = layout([out.shape[d] for d in perm], [a_full[d] for d in perm])
        if len(_plans) >= 4096:
            _plans.clear()
        _plans[key] = None if lay is None else Plan(None if perm == sorted(perm) else perm, lay)
    return _plans[key]
