r"""Paired comparisons between two cells of a table: the mean difference over their shared units.

The paper's claims are comparisons (AGumb against Sig, an adaptive cell against ReLU/ReLU). Two cells of a
run are trained on the same *units* (Table 1: a teacher draw x fold; Tables 3-4: a fold; Table 2: a seed)
with the same data split, initial weights and minibatch order, so their difference on one unit is free of
the spread between units (teacher draws, folds, seeds). :func:`paired_difference` is the one formula: for
the units ``u`` where both cells have a finite value,

.. math::

    d_u = a_u - b_u, \qquad \bar d = \frac1n \sum_u d_u, \qquad
    \mathrm{SE} = \frac{s_d}{\sqrt n},\ s_d^2 = \frac{1}{n-1}\sum_u (d_u - \bar d)^2, \qquad
    \bar d \pm t_{n-1,\,(1+c)/2}\,\mathrm{SE}

(the paired t interval at confidence ``c``, 0.95; ``t`` the Student-t quantile from ``scipy.stats``). With
one unit there is no interval (``se``, ``ci_low``, ``ci_high`` are ``None`` and ``note`` says why); when all
differences are equal (``s_d = 0``) the interval is the point ``[d, d]``.

A unit is *excluded*, and counted, when either cell's value there is missing from the record, NaN or
infinite, or its model diverged (:mod:`.divergence`: its accuracy is that of a broken model); the caller
passes such values as ``None``. A unit only one cell has (a task not finished) is not paired (``only_a``,
``only_b``). ``favour_a``/``favour_b``/``ties`` count the units where ``d_u`` is positive, negative, or
within :data:`TIE` of 0 (points). ``at_chance`` counts the paired units where cell a's model, cell b's, or
both stayed at chance level: an accuracy at most :data:`CHANCE_MARGIN` (1 point) above the test set's
majority-class rate (the records' ``accuracy`` and ``majority_rate``, whatever the metric compared). Where
both did, a difference says nothing about the activations, only that neither model learned at this budget.

:func:`compare` applies it to a table's records, for a list of :class:`Comparison`; the tables define which
comparisons are the paper's (:meth:`.table.TableExperiment.comparisons`). Its output is the ``paired``
section of ``results.json``::

    paired          {"units": what a unit is and why the cells are paired on it, "confidence": 0.95,
                     "comparisons": [one object per comparison]}
        metric          the record metric compared, e.g. "accuracy"
        kind            which claim of the paper it tests, in words
        label           e.g. "AGumb/AReLU - ReLU/ReLU" (conv/fc of cell a minus cell b's), "1/Sig: AGumb - Sig"
        a, b            {"row", "column"} of the two cells
        n               paired units (both finite)
        mean, se        mean paired difference a - b and its standard error, in points (null if n = 0 / n < 2)
        sd, df          sample sd of the differences and n - 1 (null if n < 2)
        ci_low, ci_high the interval at ``confidence`` (null if n < 2)
        favour_a, favour_b, ties   units with a > b, a < b, |a - b| <= TIE
        at_chance       {"a", "b", "both"}: paired units where a's, b's, both models stayed at chance level
        excluded        shared units left out: a value missing, non-finite, or its model diverged
        only_a, only_b  units finished in one cell only
        paper           the paper's difference (its value of a minus its value of b), or null
        note            why there is no interval, if there is none
        units, differences   each paired unit ([draw, fold]) and its difference, in points
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple

from .report import mean_se

__all__ = ["CONFIDENCE", "TIE", "CHANCE_MARGIN", "Comparison", "paired_difference", "paper_difference", "unit_values",
           "chance_units", "compare", "format_comparison"]

CONFIDENCE = 0.95
TIE = 1e-9  # points: two values this close count as a tie (equal test counts give identical floats)
CHANCE_MARGIN = 1.0  # points: an accuracy at most this far above the majority-class rate is at chance level


@dataclass(frozen=True)
class Comparison:
    """Cell ``a`` minus cell ``b`` (each ``(row, column)``): one claim of the paper (``kind``), named ``label``."""

    a: Tuple[str, str]
    b: Tuple[str, str]
    kind: str
    label: str


def _finite(v) -> bool:
    return v is not None and not isinstance(v, bool) and math.isfinite(v)


def paired_difference(a: Mapping[Hashable, Optional[float]], b: Mapping[Hashable, Optional[float]],
                      confidence: float = CONFIDENCE) -> Dict:
    """The paired difference ``a - b`` over the units both have (see the module notes for the formula).

    Args:
        a, b: unit -> value (points); ``None``, NaN or inf marks a unit to exclude (a diverged model).
        confidence: of the interval (default 0.95).

    Returns:
        ``n, mean, se, sd, df, ci_low, ci_high, confidence, favour_a, favour_b, ties, excluded, only_a,
        only_b, note, units, differences`` (``units`` in the order of ``a``).
    """
    shared = [u for u in a if u in b]
    units = [u for u in shared if _finite(a[u]) and _finite(b[u])]
    diffs = [float(a[u]) - float(b[u]) for u in units]
    n = len(diffs)
    out: Dict = {"n": n, "mean": None, "se": None, "sd": None, "df": None, "ci_low": None, "ci_high": None,
                 "confidence": confidence,
                 "favour_a": sum(d > TIE for d in diffs), "favour_b": sum(d < -TIE for d in diffs),
                 "ties": sum(abs(d) <= TIE for d in diffs), "excluded": len(shared) - n,
                 "only_a": sum(u not in b for u in a), "only_b": sum(u not in a for u in b), "note": None,
                 "units": [list(u) if isinstance(u, tuple) else u for u in units], "differences": diffs}
    if n == 0:
        out["note"] = "no unit with a finite value in both cells"
        return out
    mean, se = mean_se(diffs)  # the cells' own mean and standard error, over the differences
    out["mean"] = mean
    if n == 1:
        out["note"] = "one paired unit: no standard error or interval"
        return out
    sd = se * math.sqrt(n)
    half = 0.0
    if se > 0:
        from scipy import stats

        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    out.update(sd=sd, se=se, df=n - 1, ci_low=mean - half, ci_high=mean + half)
    return out


def unit_values(records: Iterable[Mapping], row: str, column: str, metric: str,
                scale: float = 100.0) -> Dict[Tuple[int, int], Optional[float]]:
    """``(draw, fold) -> scale * value`` of one cell's records; ``None`` where the model diverged or the
    value is missing or non-finite."""
    out: Dict[Tuple[int, int], Optional[float]] = {}
    for r in records:
        if r["row"] == row and r["column"] == column:
            v = r.get(metric)
            ok = _finite(v) and not r.get("diverged")
            out[(int(r.get("draw", 0)), int(r.get("fold", 0)))] = scale * float(v) if ok else None
    return out


def chance_units(records: Iterable[Mapping], row: str, column: str, scale: float = 100.0) -> set:
    """The ``(draw, fold)`` units where the cell's model stayed at chance level: its ``accuracy`` at most
    :data:`CHANCE_MARGIN` points above its ``majority_rate`` (units without both values are not counted)."""
    return {(int(r.get("draw", 0)), int(r.get("fold", 0))) for r in records
            if r["row"] == row and r["column"] == column and _finite(r.get("accuracy"))
            and _finite(r.get("majority_rate")) and scale * (r["accuracy"] - r["majority_rate"]) <= CHANCE_MARGIN}


def paper_difference(comparison: Comparison, paper) -> Optional[float]:
    """The paper's value of cell a minus its value of cell b (``paper(row, column)``; ``None`` if it lacks one),
    rounded to 10 decimals (97.5 - 95.8 is 1.7, not 1.7000000000000028)."""
    pa, pb = (paper(*comparison.a), paper(*comparison.b)) if paper else (None, None)
    return None if pa is None or pb is None else round(pa - pb, 10)


def compare(records: Sequence[Mapping], comparisons: Iterable[Comparison], metric: str,
            paper=None, scale: float = 100.0) -> List[Dict]:
    """:func:`paired_difference` of every comparison on ``records`` (each with ``row``, ``column``, ``draw``,
    ``fold``, ``metric`` and maybe ``diverged``); ``paper(row, column)`` gives the paper's value or ``None``.

    Returns one ``results.json`` comparison object each (module notes).
    """
    out = []
    for c in comparisons:
        res = paired_difference(unit_values(records, *c.a, metric, scale), unit_values(records, *c.b, metric, scale))
        paired = {tuple(u) for u in res["units"]}
        stuck_a, stuck_b = (chance_units(records, *cell, scale) & paired for cell in (c.a, c.b))
        res["at_chance"] = {"a": len(stuck_a), "b": len(stuck_b), "both": len(stuck_a & stuck_b)}
        out.append({"metric": metric, "kind": c.kind, "label": c.label, "a": {"row": c.a[0], "column": c.a[1]},
                    "b": {"row": c.b[0], "column": c.b[1]}, "paper": paper_difference(c, paper), **res})
    return out


def format_comparison(c: Mapping, digits: int = 2) -> Dict[str, str]:
    """The text of a comparison object (:func:`compare`, or :func:`paired_difference` plus ``paper``) as the
    reports show it: ``paper``, ``ours`` (mean ± SE), ``interval`` and ``units`` (a > b / a < b / tie, and the
    units left out)."""
    def pts(v):
        return "n/a" if v is None else f"{v:+.{digits}f}"

    n = c["n"]
    if c["mean"] is None:
        ours = "n/a"
    else:
        ours = pts(c["mean"]) + (f" ± {c['se']:.{digits}f}" if c["se"] is not None else "")
    interval = (f"[{pts(c['ci_low'])}, {pts(c['ci_high'])}]" if c["ci_low"] is not None
                else f"none ({n} unit{'s' if n != 1 else ''})")
    left = [f"{k} {c[key]}" for k, key in (("excluded", "excluded"), ("only in a", "only_a"), ("only in b", "only_b"))
            if c[key]]
    units = f"{c['favour_a']} / {c['favour_b']} / {c['ties']}" + (f" ({', '.join(left)})" if left else "")
    return {"paper": pts(c.get("paper")), "ours": ours, "interval": interval, "units": units}
