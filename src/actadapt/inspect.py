r"""Read the fitted alphas of a model: a dict of tensors, a table of per-layer statistics, a text rendering.

No plotting here (matplotlib-free); see :mod:`actadapt.plot` for curves and histograms.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import actadapt
    >>> model = nn.Sequential(nn.Linear(4, 3), actadapt.AdaptiveGumbel(3, init=0.5), nn.Linear(3, 2), actadapt.AdaptiveReLU())
    >>> {k: v.tolist() for k, v in actadapt.alpha_dict(model).items()}
    {'1': [0.5, 0.5, 0.5], '3': [1.0]}
    >>> print(actadapt.format_alpha_table(model))  # doctest: +NORMALIZE_WHITESPACE
    name  family       form     n  mean    std     min     max
    1     gumbel       bounded  3  0.5000  0.0000  0.5000  0.5000
    3     exponential  gated    1  1.0000  0.0000  1.0000  1.0000
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Optional, Union

import torch
from torch import Tensor, nn
from torch.nn.parameter import is_lazy

from .modules import AdaptiveActivation

__all__ = ["alpha_dict", "alpha_table", "format_alpha_table", "AlphaRow"]


@dataclass(frozen=True)
class AlphaRow:
    """Statistics of the fitted alpha of one adaptive layer.

    Attributes:
        name: module name in the model (``""`` for the root).
        family: cdf family name (``"gumbel"``).
        form: ``"bounded"`` or ``"gated"``.
        n: number of alphas (1 when shared); ``None`` for a lazy module not yet sized.
        mean, std, min, max: over the layer's alphas (``std`` is the population std, 0 for ``n = 1``);
            ``None`` for a lazy module.
    """

    name: str
    family: str
    form: str
    n: Optional[int]
    mean: Optional[float]
    std: Optional[float]
    min: Optional[float]
    max: Optional[float]

    def as_dict(self) -> dict:
        """The row as a plain dict (for ``csv.DictWriter``, JSON, pandas)."""
        return asdict(self)


def _adaptive(model: nn.Module):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    for name, module in model.named_modules():
        if isinstance(module, AdaptiveActivation):
            yield name, module


def alpha_dict(model: nn.Module) -> dict[str, Tensor]:
    r"""``{module name: alpha}`` for every adaptive activation of ``model``, in ``named_modules()`` order.

    Each value is the positive alpha (``exp(rho)`` or ``softplus(rho)``), detached, a copy, on the parameter's
    device and dtype, of shape ``(num_parameters,)``. Lazy modules that have not seen an input yet have no
    alpha and are left out (:func:`alpha_table` lists them).
    """
    out: dict[str, Tensor] = {}
    for name, module in _adaptive(model):
        if is_lazy(module.rho):
            continue
        with torch.no_grad():
            out[name] = module.alpha.detach().clone()
    return out


def alpha_table(model: nn.Module) -> list[AlphaRow]:
    """One :class:`AlphaRow` (name, family, form, n, mean, std, min, max) per adaptive activation of ``model``.

    Statistics are computed in float64. A lazy module not yet sized gets ``n`` and the statistics ``None``.
    """
    rows = []
    for name, module in _adaptive(model):
        family = module.family if isinstance(module.family, str) else module.family.name
        if is_lazy(module.rho):
            rows.append(AlphaRow(name, family, module.form, None, None, None, None, None))
            continue
        with torch.no_grad():
            a = module.alpha.detach().to(torch.float64)
        rows.append(
            AlphaRow(
                name,
                family,
                module.form,
                int(a.numel()),
                a.mean().item(),
                a.std(correction=0).item(),
                a.min().item(),
                a.max().item(),
            )
        )
    return rows


_COLUMNS = ("name", "family", "form", "n", "mean", "std", "min", "max")


def _cell(value, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if (value != 0 and not 1e-3 <= abs(value) < 1e4) else f"{value:.{digits}f}"
    return str(value)


def format_alpha_table(rows: Union[nn.Module, Iterable[AlphaRow]], digits: int = 4) -> str:
    """A plain-text table of :func:`alpha_table` (pass the model or its rows), columns aligned.

    Args:
        rows: a model, or rows from :func:`alpha_table`.
        digits: digits after the decimal point (significant digits for very small or large values).
            Default: ``4``

    The root module is shown as ``(root)``; a lazy module not yet sized shows ``-`` in its statistics.
    """
    if isinstance(rows, nn.Module):
        rows = alpha_table(rows)
    rows = list(rows)
    if not rows:
        return "(no adaptive activations)"
    table = [list(_COLUMNS)]
    for r in rows:
        table.append([r.name or "(root)", r.family, r.form] + [_cell(getattr(r, c), digits) for c in _COLUMNS[3:]])
    widths = [max(len(row[i]) for row in table) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)
