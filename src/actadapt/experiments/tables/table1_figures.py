"""Table 1's figures: Figure 2 (fitted alphas of the shallow students), Figures 3-4 (the fitted curves of the
deep student that learned most) and the training curves; and :func:`learned`, which picks that student."""

from __future__ import annotations

from typing import Dict, List, Optional

__all__ = ["draw_figures", "learned"]


def draw_figures(cfg, rows: List[str], recs: List[Dict], plt, save) -> None:
    """Save (``save(fig, file, caption)``) Figure 2 (the shallow students' alphas), Figures 3-4 (the curves of
    every neuron in layers 2 and 4 of the deep student that learned most) and the training curves (one panel per
    entry of ``rows``)."""
    from ..figures import curve_panels, histogram_panels, line_panels, mean_curve

    shallow, deep = min(cfg.depths), max(cfg.depths)
    fig = histogram_panels(plt, {f"{s}, {shallow} hidden layer(s)": {s: [
        a for r in recs if r["depth"] == shallow and r["student"] == s and r["alphas"] for layer in r["alphas"]
        for a in layer]} for s in cfg.students})
    if fig is not None:
        save(fig, "fig2_alpha_histograms.png", f"Figure 2: fitted alpha, {shallow}-hidden-layer students")
    layers = [layer for layer in (2, 4) if layer <= deep]
    for num, s in ((3, "AGumb"), (4, "AReLU")):
        r = learned(recs, deep, s) if s in cfg.students and layers else None
        if r is None:
            continue
        who = (f"the {deep}-layer student that learned most: teacher {r['teacher']}, draw {r['draw']}, fold "
               f"{r['fold']}, accuracy {100 * r['accuracy']:.1f}% (majority {100 * r['majority_rate']:.1f}%)")
        fig = curve_panels(plt, s, {f"{s}, layer {layer}": r["alphas"][layer - 1] for layer in layers})
        fig.suptitle(who[0].upper() + who[1:], fontsize=9)
        save(fig, f"fig{num}_{s.lower()}_curves.png", f"Figure {num}: fitted {s} of layers "
                                                     f"{', '.join(map(str, layers))}, {who}")
    panels = {r.replace("/", " layer(s), teacher "): {s: (rs[0]["curve_epochs"], [
        100 - a for a in mean_curve(rs, "test_accuracy")]) for s in cfg.students
        for rs in [[x for x in recs if x["row"] == r and x["student"] == s]] if rs} for r in rows}
    save(line_panels(plt, panels, ylabel="test error %", legend="each", size=(4, 3.3)), "training_curves.png",
         "Training curves: held-out error per epoch, mean over draws and folds")


def learned(recs: List[Dict], depth: int, student: str, keys=None) -> Optional[Dict]:
    """The record (its ``keys``) of the ``depth``-layer ``student`` most above its majority rate (ties: the first)."""
    best = max((r for r in recs if r["depth"] == depth and r["student"] == student and r["alphas"]
                and r["accuracy"] > r["majority_rate"]), key=lambda r: r["accuracy"] - r["majority_rate"], default=None)
    return best if best is None or keys is None else {k: best[k] for k in keys}
