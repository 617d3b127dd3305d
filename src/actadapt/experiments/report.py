r"""Summaries shared by every table: cell statistics, the ``results.json`` format, markdown tables.

``results.json`` (format ``actadapt-results/1``), one object::

    format          "actadapt-results/1"
    table, title    e.g. "table1", "Table 1: teacher-student simulation"
    preset          the preset the run was started with
    complete        false while some tasks are not finished (the cells then cover the finished folds)
    config_hash     hash of the resolved config in config.json
    metric, unit    the metric of the cells and its unit, e.g. "accuracy", "%"
    rows, columns   row and column labels in table order
    se_covers       which spread the standard errors measure, in words
    cells           a list, one object per (row, column):
        row, column     labels
        metric          e.g. "accuracy"
        mean            mean over draws of the mean over folds, in ``unit``
        se              standard error of ``mean`` (see ``se_covers``)
        se_folds        mean over draws of the standard error over folds (the paper's kind of SE)
        n               number of values behind ``se`` (draws when there are several, else folds)
        n_draws, n_folds
        majority_rate   mean accuracy of always predicting the training folds' majority class
        paper           the paper's value, or null
        diff            mean - paper
        diff_in_se      (mean - paper) / se, or null when se is 0
        draws           per draw: {"draw", "mean", "se_folds", "majority_rate"}
    paired          the paper's comparisons as paired differences between cells (format: :mod:`.paired`)
    choices         where the paper is silent: {"setting": "what this run did"}
    diverged        true when some model's training diverged (non-finite loss or weights; its record says
                    ``"diverged": true`` and report.md opens with a warning naming them)
    diverged_records  the run-folder paths of those records
    sessions        the `actadapt reproduce` calls that trained: {"started" (UTC), "seconds" (wall time of the
                    training), "tasks", "workers", "executor"}, oldest first

Every number is recomputed from the run folder's fold records; nothing is typed in.
"""

from __future__ import annotations

import math
import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

__all__ = ["RESULTS_FORMAT", "mean_se", "cell_stats", "markdown_table", "fmt_num", "save_figure",
           "figure_saver", "choices_and_figures_markdown", "plottable", "finite_tensor"]

RESULTS_FORMAT = "actadapt-results/1"


def mean_se(values: Sequence[float]):
    """Mean and standard error (sample sd with ddof=1 over sqrt(n)); SE is 0 for fewer than 2 values."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    m = sum(values) / n
    if n < 2:
        return m, 0.0
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return m, math.sqrt(var / n)


def cell_stats(records: Iterable[Mapping], key: str = "accuracy", scale: float = 100.0, paper: Optional[float] = None) -> Dict:
    """Statistics of one cell from its fold records (each with ``draw``, ``fold``, ``key``, ``majority_rate``).

    The mean is taken over folds within a draw, then over draws. With several draws the SE is over the draw
    means (so it covers both the teacher draw and the folds); with one draw it is over the folds.
    """
    by_draw: Dict[int, List[Mapping]] = {}
    for r in records:
        by_draw.setdefault(int(r.get("draw", 0)), []).append(r)
    draws = []
    for d in sorted(by_draw):
        rs = by_draw[d]
        m, se = mean_se([scale * r[key] for r in rs])
        rates = [r.get("majority_rate") for r in rs]  # None where a record has none (Table 4's folds.csv)
        maj = mean_se([scale * v for v in rates])[0] if all(isinstance(v, (int, float)) for v in rates) else None
        draws.append({"draw": d, "mean": m, "se_folds": se, "majority_rate": maj, "n_folds": len(rs)})
    draw_means = [d["mean"] for d in draws]
    if len(draws) > 1:
        mean, se = mean_se(draw_means)
        n = len(draws)
    elif draws:
        mean, se, n = draws[0]["mean"], draws[0]["se_folds"], draws[0]["n_folds"]
    else:  # no finished folds yet: null rather than NaN, which is not JSON
        mean, se, n = None, None, 0
    out = {
        "metric": key,
        "mean": mean,
        "se": se,
        "se_folds": mean_se([d["se_folds"] for d in draws])[0] if draws else None,
        "n": n,
        "n_draws": len(draws),
        "n_folds": max((d["n_folds"] for d in draws), default=0),
        "majority_rate": mean_se([d["majority_rate"] for d in draws])[0]
        if draws and all(d["majority_rate"] is not None for d in draws) else None,
        "paper": paper,
        "diff": None if paper is None or mean is None else mean - paper,
        "diff_in_se": None if paper is None or mean is None or not se > 0 else (mean - paper) / se,
        "draws": draws,
    }
    return out


def fmt_num(v, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def save_figure(plt, fig, run_dir: str, name: str) -> str:
    """Write ``fig`` to ``run_dir/figures/name`` atomically (never through a link) and close it.

    Returns the path relative to ``run_dir``, as report.md links it.
    """
    from .rundir import atomic_write

    path = os.path.join("figures", name)
    fig.tight_layout()
    try:
        atomic_write(os.path.join(run_dir, path), lambda fh: fig.savefig(fh, format="png", dpi=110),
                     binary=True, root=run_dir)
    finally:
        plt.close(fig)
    return path


def figure_saver(run_dir: str):
    """``(plt, save, made)`` for writing a run's figures, or ``None`` when matplotlib is missing.

    ``save(fig, name, caption)`` writes ``figures/name`` atomically (:func:`save_figure`) and appends
    ``(caption, relpath)`` to the list ``made``, which is what :func:`figures_markdown` links.
    """
    try:
        from ..plot import _pyplot

        plt = _pyplot()
    except ImportError:
        return None
    from .rundir import make_dirs

    make_dirs(run_dir, "figures")
    made: List = []

    def save(fig, name: str, caption: str) -> None:
        made.append((caption, save_figure(plt, fig, run_dir, name)))

    return plt, save, made


def plottable(records: Iterable[Mapping]) -> List[Mapping]:
    """The records a figure may draw: those whose training did not diverge (their curves and alphas hold
    non-finite values, stored as null)."""
    return [r for r in records if not r.get("diverged")]


def finite_tensor(values: Iterable) -> "object":
    """A float tensor of the finite numbers among ``values`` (``None``, NaN and infinities left out)."""
    import torch

    return torch.tensor([float(v) for v in values if v is not None and math.isfinite(v)])


def choices_and_figures_markdown(choices: Mapping[str, str], figures: Sequence, unit: str = "folds") -> List[str]:
    """The report's closing sections: the choices made where the paper is silent, then the figures."""
    lines = ["## Choices where the paper is silent", ""]
    lines += [f"- **{k}**: {v}" for k, v in choices.items()]
    lines += ["", "## Figures", ""]
    lines += [f"![{name}]({path})" for name, path in figures] or [
        f"(no figures: matplotlib missing or no {unit} finished)"
    ]
    lines.append("")
    return lines
