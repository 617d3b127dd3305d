"""Plots of fitted adaptive activations: learned curves per neuron and histograms of alpha (Figures 2-4).

matplotlib is imported inside the functions (``pip install 'actadapt[plots]'``); without a display the
Agg backend is used. Every function takes an ``ax`` to draw into (a new figure otherwise) and returns it.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ["plot_learned_curves", "plot_alpha_histogram"]

AlphaLike = Union[Tensor, Sequence[float], "object"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'actadapt[plots]'") from None
    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _alphas_of(obj) -> Tensor:
    """A flat float tensor of alphas from a tensor, a sequence, or a module with ``.alpha``."""
    if hasattr(obj, "alpha") and not isinstance(obj, Tensor):
        obj = obj.alpha
    t = torch.as_tensor(obj.detach() if isinstance(obj, Tensor) else obj, dtype=torch.float64)
    return t.reshape(-1)


def _ax(ax):
    if ax is None:
        plt = _pyplot()
        _, ax = plt.subplots(figsize=(5, 3.5))
    return ax


def plot_learned_curves(
    alphas,
    family: Optional[str] = None,
    form: Optional[str] = None,
    x_range: Tuple[float, float] = (-5.0, 5.0),
    ax=None,
    title: Optional[str] = None,
    num: int = 400,
):
    r"""One curve :math:`\sigma_{\alpha_j}(x)` per neuron ``j`` (PAPER.md Figures 3-4).

    Args:
        alphas: per-neuron alphas (a tensor or sequence), or an adaptive-activation module with ``.alpha``
            (its ``.family``, ``.form`` and output clamp ``.max_value`` are used unless given).
        family: cdf family name, e.g. ``"gumbel"`` (AGumb) or ``"exponential"`` (AReLU). Default: the module's.
        form: ``"bounded"`` or ``"gated"``. Default: the module's.
        x_range: the x interval drawn. Default: ``(-5, 5)``.
        ax: a matplotlib Axes to draw into. Default: a new figure.
        title: the Axes title. Default: none.
        num: points per curve. Default: 400.

    Returns:
        the Axes.

    Example::

        >>> import torch
        >>> from actadapt.plot import plot_learned_curves
        >>> ax = plot_learned_curves(torch.tensor([0.2, 1.0, 3.0]), "gumbel", "bounded")
    """
    from .functional import adaptive_activation

    family = family if family is not None else getattr(alphas, "family", None)
    form = form if form is not None else getattr(alphas, "form", None)
    max_value = getattr(alphas, "max_value", None)  # a module's output clamp (AReLU for ReLU6)
    if family is None or form is None:
        raise ValueError("plot_learned_curves needs family and form (e.g. 'gumbel', 'bounded'), or a module that has them")
    if getattr(family, "name", None):  # a CdfFamily object
        family = family.name
    a = _alphas_of(alphas)
    if a.numel() == 0:
        raise ValueError("plot_learned_curves: got no alphas")
    ax = _ax(ax)
    x = torch.linspace(float(x_range[0]), float(x_range[1]), num, dtype=torch.float64)
    with torch.no_grad():
        y = adaptive_activation(x[:, None], a[None, :], family, form)  # (num, neurons)
        if max_value is not None:
            y = y.clamp(max=max_value)
    cmap = ax.figure.colormaps.get_cmap("viridis") if hasattr(ax.figure, "colormaps") else None
    for j in range(a.numel()):
        color = cmap(j / max(1, a.numel() - 1)) if cmap is not None else None
        ax.plot(x.numpy(), y[:, j].numpy(), lw=1.2, color=color, label=f"alpha={a[j]:.3g}")
    ax.set_xlabel("x")
    ax.set_ylabel("activation")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def plot_alpha_histogram(alphas: Union[AlphaLike, Mapping[str, AlphaLike]], ax=None, bins: int = 30, log_x: Optional[bool] = None):
    """Histogram of fitted alphas (PAPER.md Figure 2); a dict draws one labelled histogram per entry.

    Args:
        alphas: a tensor or sequence of alphas, a module with ``.alpha``, or ``{label: those}``.
        ax: a matplotlib Axes to draw into. Default: a new figure.
        bins: number of bins. Default: 30.
        log_x: log-spaced bins on a log axis; default: when the alphas span more than a factor 100.

    Returns:
        the Axes.
    """
    items = alphas.items() if isinstance(alphas, Mapping) else [(None, alphas)]
    data = [(label, _alphas_of(v)) for label, v in items]
    data = [(label, v) for label, v in data if v.numel()]
    if not data:
        raise ValueError("plot_alpha_histogram: got no alphas")
    ax = _ax(ax)
    allv = torch.cat([v for _, v in data])
    lo, hi = float(allv.min()), float(allv.max())
    if log_x is None:
        log_x = lo > 0 and hi / lo > 100
    if log_x:
        edges = torch.logspace(torch.log10(torch.tensor(lo)).item(), torch.log10(torch.tensor(hi)).item(), bins + 1).numpy()
        ax.set_xscale("log")
    else:
        edges = bins
    for label, v in data:
        ax.hist(v.numpy(), bins=edges, alpha=0.6, label=label)
    ax.set_xlabel("fitted alpha")
    ax.set_ylabel("neurons")
    if any(label for label, _ in data):
        ax.legend()
    return ax
