"""The figure layouts the tables share: a row of panels of labelled lines, a row of panels of alpha histograms.

A table builds the data of its figures as plain dicts (panel title -> label -> values) from its records and
passes them here with the pyplot module of :func:`.report.figure_saver`; matplotlib is imported by the
caller only when it draws (the runner skips figures without it).
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple

__all__ = ["line_panels", "histogram_panels", "curve_panels", "mean_curve"]

Line = Tuple[Sequence[float], Sequence[float]]  # (x, y)


def mean_curve(records: Sequence[Mapping], key: str, scale: float = 100.0):
    """``scale x`` the mean over ``records`` of their per-epoch lists ``key``, as long as the shortest; ``[]``
    when a record lacks it or the mean holds no finite value (``None`` and NaN: no dev set, say)."""
    if not records or any(not r.get(key) for r in records):
        return []
    n = min(len(r[key]) for r in records)
    if any(v is None for r in records for v in r[key][:n]):
        return []
    curve = [scale * sum(r[key][i] for r in records) / len(records) for i in range(n)]
    return curve if any(v == v for v in curve) else []


def line_panels(plt, panels: Mapping[str, Mapping[str, Line]], *, ncols: Optional[int] = None,
                xlabel: str = "epoch", ylabel: str = "error %", styles: Optional[Mapping[str, Dict]] = None,
                log_y: bool = False, legend: str = "first", size=(3.4, 2.7)):
    """A figure of panels (``ncols`` per row; default: all in one row), each with one line per label.

    Args:
        panels: panel title -> label -> ``(x, y)``; a panel may be empty (drawn blank, with its title).
        styles: label -> keyword arguments of ``ax.plot`` (colour, linestyle, ...). Default: matplotlib's
        log_y: a log y axis with plain numbers. Default: ``False``
        legend: ``"first"`` (in the first panel), ``"last"`` (beside the last) or ``"each"``. Default: ``"first"``
    """
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    ncols = ncols or max(len(panels), 1)
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             sharex=nrows > 1, sharey=nrows > 1)
    flat = [ax for row in axes for ax in row]
    for i, (ax, (title, lines)) in enumerate(zip(flat, panels.items())):
        for label, (x, y) in lines.items():
            style = {"marker": "." if len(x) < 20 else None, **((styles or {}).get(label, {}))}
            ax.plot(list(x)[:len(y)], y, label=label, **style)
        if log_y and ax.get_lines():
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        if i // ncols == nrows - 1 or nrows == 1:
            ax.set_xlabel(xlabel)
        if i % ncols == 0 or nrows == 1:
            ax.set_ylabel(ylabel)
        if legend == "each" and ax.get_lines():
            ax.legend(fontsize=7)
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    used = [ax for ax in flat[:len(panels)] if ax.get_lines()]
    if used and legend == "first":
        used[0].legend(fontsize=7)
    elif used and legend == "last":
        flat[len(panels) - 1].legend(*used[0].get_legend_handles_labels(), fontsize=7, loc="upper left",
                                     bbox_to_anchor=(1.02, 1))
    return fig


def histogram_panels(plt, panels: Mapping[str, Mapping[str, Sequence[float]]], size=(4.2, 3.3)):
    """A row of panels (title -> label -> alphas), each with one histogram per label
    (:func:`actadapt.plot.plot_alpha_histogram`); non-finite alphas are left out, empty labels skipped."""
    from ..plot import plot_alpha_histogram
    from .report import finite_tensor

    panels = {t: {k: finite_tensor(v) for k, v in per.items()} for t, per in panels.items()}
    panels = {t: {k: v for k, v in per.items() if v.numel()} for t, per in panels.items()}
    panels = {t: per for t, per in panels.items() if per}
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(size[0] * len(panels), size[1]), squeeze=False)
    for ax, (title, per) in zip(axes[0], panels.items()):
        plot_alpha_histogram(dict(per), ax=ax)
        ax.set_title(title, fontsize=9)
        if ax.get_legend() is not None:
            ax.legend(fontsize=7)
    return fig


def curve_panels(plt, activation: str, panels: Mapping[str, Sequence[float]], size=(4.5, 3.5)):
    """A row of panels (title -> alphas of one layer), each drawing the fitted curve of every neuron of the
    adaptive ``activation`` (:func:`actadapt.plot.plot_learned_curves`; family and form from
    :func:`actadapt.activation_spec`)."""
    import torch

    from ..activations import activation_spec
    from ..plot import plot_learned_curves

    spec = activation_spec(activation)
    fig, axes = plt.subplots(1, len(panels), figsize=(size[0] * len(panels), size[1]), squeeze=False)
    for ax, (title, alphas) in zip(axes[0], panels.items()):
        plot_learned_curves(torch.tensor(alphas), spec.family, spec.form, ax=ax, title=title)
    return fig
