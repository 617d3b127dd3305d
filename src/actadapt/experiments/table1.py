"""Table 1 and Figures 2-4: teacher-student simulation (PAPER.md §2.1).

Rows are (teacher depth, teacher activation), columns the student activation. For every teacher draw a
teacher and its data are drawn, split into ``folds`` stratified folds, and every student activation is
trained on every fold. One task is one row (depth, teacher): all its draws x students x folds train together
in one batched computation (:func:`.students.train_batched`) and write one JSON record per (cell, fold).

Seeds are derived from the config seed and names (not list positions), so a cell's numbers do not change
when other rows or columns are added. Students of different activations on the same teacher, draw and fold
share their initialisation and minibatch order (a paired comparison across the columns).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from typing import Dict, List

from .config import ConfigError, option
from .registry import Experiment, Task, register
from .report import (
    RESULTS_FORMAT,
    cell_stats,
    choices_and_figures_markdown,
    figure_saver,
    finite_tensor,
    fmt_num,
    markdown_table,
    plottable,
)
from .runner import read_records, write_record, write_text

__all__ = ["Table1Config", "Table1", "PAPER_TABLE1", "stable_seed"]

# PAPER.md §2.1, accuracy in %: (depth, teacher) -> student -> value
PAPER_TABLE1 = {
    (1, "Sig"): {"Sig": 95.8, "AGumb": 97.5, "ReLU": 97.8, "AReLU": 97.7},
    (1, "ReLU"): {"Sig": 96.1, "AGumb": 97.4, "ReLU": 98.2, "AReLU": 98.0},
    (8, "Sig"): {"Sig": 83.7, "AGumb": 83.8, "ReLU": 81.8, "AReLU": 81.9},
    (8, "ReLU"): {"Sig": 57.3, "AGumb": 88.2, "ReLU": 89.3, "AReLU": 89.9},
}
PAPER_MAX_SE = 0.22
MAX_REDRAWS = 50
STUDENTS = ("Sig", "AGumb", "ReLU", "AReLU", "Swish")
TEACHERS = ("Sig", "ReLU")
FAMILY_FORM = {"AGumb": ("gumbel", "bounded"), "AReLU": ("exponential", "gated"), "Swish": ("logistic", "gated")}


@dataclass
class Table1Config:
    """The settings of Table 1. Defaults are the paper's where it gives them; see ``help`` of each."""

    seed: int = option(0, help="base seed; every teacher, split and student seed derives from it")
    n_samples: int = option(100_000, min=10, help="examples per teacher draw (paper: 100,000)")
    epochs: List[int] = option([2000], min=1, help="training epochs: one value, or one per entry of depths (paper: 2000)")
    draws: int = option(5, min=1, help="teacher draws per row (paper: not stated; one)")
    folds: int = option(5, min=2, help="cross-validation folds (paper: 5)")
    depths: List[int] = option([1, 8], min=1, help="teacher (and student) hidden layers")
    teachers: List[str] = option(list(TEACHERS), choices=TEACHERS, help="teacher activations")
    students: List[str] = option(["Sig", "AGumb", "ReLU", "AReLU"], choices=STUDENTS, help="student activations")
    n_features: int = option(10, min=1, help="inputs")
    width: int = option(10, min=1, help="neurons per hidden layer")
    batch_size: int = option(20, min=1, help="minibatch size (paper: 20)")
    lr: float = option(0.01, min=0.0, help="SGD learning rate (paper: 0.01)")
    l1: float = option(0.001, min=0.0, help="L1 penalty (paper: 0.001)")
    l2: float = option(0.001, min=0.0, help="L2 penalty (paper: 0.001)")
    penalize_alpha: bool = option(True, help="include alpha in the L1/L2 penalties (eqs. 4-6 penalise theta = [alpha, w0, w])")
    alpha_init: float = option(1.0, min=1e-6, help="initial alpha of adaptive students (alpha = exp(rho))")
    weight_spread: float = option(0.5, min=0.0, help="teacher weight spread around -1/+1 (paper: 0.5)")
    bias_spread: float = option(0.5, min=0.0, help="teacher bias spread around 0 (paper: 0.5)")
    spread_is: str = option("sd", choices=("sd", "variance"), help="read the spreads as standard deviations or variances")
    input_dist: str = option("normal", choices=("normal", "uniform"), help="inputs N(0, I) or U(-1, 1)")
    max_majority: float = option(1.0, min=0.5, help="redraw a teacher whose labels' majority-class rate is above this, up to 50 times, keeping the least one-sided draw (1.0: never redraw)")
    label_rule: str = option("sign", choices=("sign", "bernoulli", "median"), help="label from the teacher logit t: 1{t>0}, Bernoulli(sigmoid t), 1{t>median}")
    eval_every: int = option(1, min=1, help="epochs between test-accuracy evaluations (training curves)")
    dtype: str = option("float32", choices=("float32", "float64"), help="student arithmetic")
    backend: str = option("auto", choices=("auto", "native", "eager", "compile"), help="actadapt backend in the workers: auto runs AGumb/AReLU through the fused C++ kernel (1.7x faster than eager here); compile costs 10-30 s per kernel variant per worker")
    threads: int = option(1, min=1, help="torch threads per worker process")

    def validate(self) -> None:
        if len(self.epochs) not in (1, len(self.depths)):
            raise ConfigError(
                f"config key 'epochs': expected one value or one per depth ({len(self.depths)}), got {self.epochs}"
            )
        if self.n_samples < 2 * self.folds:
            raise ConfigError(f"config key 'n_samples': expected at least 2 x folds = {2 * self.folds}, got {self.n_samples}")
        if len(set(self.students)) != len(self.students) or len(set(self.teachers)) != len(self.teachers):
            raise ConfigError("config keys 'students'/'teachers': expected no repeated names")

    def epochs_for(self, depth: int) -> int:
        return self.epochs[0] if len(self.epochs) == 1 else self.epochs[self.depths.index(depth)]


PRESETS = {
    # seconds: used by the tests
    "smoke": {"n_samples": 200, "epochs": [2], "draws": 1, "folds": 5},
    # the whole 4x4 table in about 4 minutes on 2 idle cores (budget: 10): the 8-layer rows cost ~8x more per epoch, so they get
    # fewer epochs and the two 1-layer rows finish in about the time of one 8-layer row
    "quick": {"n_samples": 5000, "depths": [1, 8], "epochs": [100, 40], "draws": 3, "folds": 5},
    # the paper's sizes; months of CPU time at ~60 ms per step: for a bigger machine (use --workers)
    "paper": {"n_samples": 100_000, "epochs": [2000], "draws": 5, "folds": 5, "eval_every": 20},
}


def stable_seed(*parts) -> int:
    """A 63-bit seed from names and numbers, independent of Python's hash randomisation."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def row_label(depth: int, teacher: str) -> str:
    return f"{depth}/{teacher}"


def record_path(depth: int, teacher: str, student: str, draw: int, fold: int) -> str:
    return os.path.join("folds", f"d{depth}-{teacher}__{student}__draw{draw}__fold{fold}.json")


class Table1(Experiment):
    name = "table1"
    title = "Table 1: teacher-student simulation (accuracy %)"
    config_class = Table1Config
    presets = PRESETS

    # ------------------------------------------------------------------------------------ tasks
    def tasks(self, cfg: Table1Config) -> List[Task]:
        # one task per row: all its draws x students x folds train as one batch (bigger batches amortise
        # the per-step overhead better than more, smaller tasks)
        out = []
        for depth in cfg.depths:
            for teacher in cfg.teachers:
                outputs = tuple(
                    record_path(depth, teacher, s, d, k)
                    for d in range(cfg.draws) for s in cfg.students for k in range(cfg.folds)
                )
                # cost ~ layers: a process pool starts the deep tasks first
                epochs = cfg.epochs_for(depth)
                params = {"depth": depth, "teacher": teacher, "epochs": epochs, "cost": (depth + 1) * epochs}
                out.append(Task(f"d{depth}-{teacher}", params, outputs))
        return out

    def memory_estimate(self, cfg: Table1Config):
        """Peak memory of one task (one row, sized for the deepest row), in bytes, with 25% slack.

        ``M = draws x folds x students`` models, ``n`` examples of ``F`` features, width ``W``, depth ``D``,
        ``s`` bytes per number (4 or 8): each model's float64 train/test slices (``8 M n (F + 1)``); their
        padded stacks (``s M n (F + 1)``); one epoch's permuted copy and index (``M n (s F + 2 s + 8)``);
        evaluation activations of the test folds (``6 s M (n / folds) W``); a step's saved activations
        (``8 s M batch W D``); parameters with gradients and penalty temporaries (``6 s M P``,
        ``P = F W + (D - 1) W^2 + (2 D + 1) W + 1``); the curves (``64 M evaluations``); the teacher draws.
        """
        from .resources import MemoryEstimate

        M = cfg.draws * cfg.folds * len(cfg.students)
        n, F, W, D = cfg.n_samples, cfg.n_features, cfg.width, max(cfg.depths)
        s = 8 if cfg.dtype == "float64" else 4
        P = F * W + (D - 1) * W * W + (2 * D + 1) * W + 1
        evals = max(cfg.epochs_for(d) // cfg.eval_every + 1 for d in cfg.depths)
        total = (8 * M * n * (F + 1) + s * M * n * (F + 1) + M * n * (s * F + 2 * s + 8)
                 + 6 * s * M * (n // cfg.folds + 1) * W + 8 * s * M * min(cfg.batch_size, n) * W * D
                 + 6 * s * M * P + 64 * M * evals + 3 * 8 * n * (F + W * D))
        detail = (f"{M} students (draws x folds x students) on {n} examples x {F} features, width {W}, "
                  f"depth {D}")
        return MemoryEstimate(total * 5 // 4, detail)

    def data(self, cfg: Table1Config, depth: int, teacher: str, draw: int):
        """``(X, y, splits, redraw)`` of one teacher draw: the data, its ``folds`` ``(train_idx, test_idx)``
        pairs, and which redraw was kept (0: the first; see ``max_majority``)."""
        import numpy as np
        from sklearn.model_selection import KFold, StratifiedKFold

        from .simulation import make_dataset

        best = None
        for attempt in range(MAX_REDRAWS + 1):
            parts = (cfg.seed, "teacher", depth, teacher, draw) + (("redraw", attempt) if attempt else ())
            X, y, _ = make_dataset(
                stable_seed(*parts),
                n_samples=cfg.n_samples, depth=depth, activation=teacher, n_features=cfg.n_features,
                width=cfg.width, weight_spread=cfg.weight_spread, bias_spread=cfg.bias_spread,
                spread_is=cfg.spread_is, input_dist=cfg.input_dist, label_rule=cfg.label_rule,
            )
            pos = float(y.double().mean())
            rate = max(pos, 1.0 - pos)
            if best is None or rate < best[0]:
                best = (rate, X, y, attempt)
            if rate <= cfg.max_majority:
                break
        _, X, y, attempt = best
        split_seed = stable_seed(cfg.seed, "folds", depth, teacher, draw) % (2**32)
        labels = y.numpy()
        counts = np.bincount(labels, minlength=2)
        if counts.min() >= cfg.folds:
            splitter = StratifiedKFold(cfg.folds, shuffle=True, random_state=split_seed)
        else:  # (nearly) one class: stratification is impossible, plain shuffled folds
            splitter = KFold(cfg.folds, shuffle=True, random_state=split_seed)
        splits = list(splitter.split(np.zeros(len(labels)), labels))
        return X, y, splits, attempt

    def run_task(self, cfg: Table1Config, task: Task, run_dir: str, progress=None) -> None:
        import time

        import torch

        from .runner import hashed_config
        from .config import config_hash
        from .students import StudentSpec, TrainSettings, train_batched

        depth, teacher = task.params["depth"], task.params["teacher"]
        specs, keys = [], []
        for draw in range(cfg.draws):
            X, y, splits, redraw = self.data(cfg, depth, teacher, draw)
            for fold, (tr, te) in enumerate(splits):
                tr_t, te_t = torch.as_tensor(tr), torch.as_tensor(te)
                y_tr, y_te = y[tr_t], y[te_t]
                majority = int(y_tr.float().mean() > 0.5)
                maj_rate = float((y_te == majority).float().mean())
                for student in cfg.students:
                    specs.append(StudentSpec(
                        student,
                        init_seed=stable_seed(cfg.seed, "init", depth, teacher, draw, fold),
                        shuffle_seed=stable_seed(cfg.seed, "shuffle", depth, teacher, draw, fold),
                        X_train=X[tr_t], y_train=y_tr, X_test=X[te_t], y_test=y_te,
                    ))
                    keys.append((draw, student, fold, maj_rate, len(tr), len(te), float(y.float().mean()), redraw))
        settings = TrainSettings(
            depth=depth, width=cfg.width, epochs=cfg.epochs_for(depth), batch_size=cfg.batch_size, lr=cfg.lr, l1=cfg.l1,
            l2=cfg.l2, penalize_alpha=cfg.penalize_alpha, alpha_init=cfg.alpha_init, eval_every=cfg.eval_every,
            dtype=getattr(torch, cfg.dtype),
        )
        t0 = time.perf_counter()
        res = train_batched(specs, settings, progress=progress)
        seconds = time.perf_counter() - t0
        chash = config_hash(hashed_config(cfg))
        for m, (draw, student, fold, maj_rate, n_tr, n_te, pos_rate, redraw) in enumerate(keys):
            record = {
                "table": self.name, "depth": depth, "teacher": teacher, "student": student, "draw": draw, "fold": fold,
                "row": row_label(depth, teacher), "column": student,
                "accuracy": res.accuracy[m], "majority_rate": maj_rate, "positive_rate": pos_rate,
                "n_train": n_tr, "n_test": n_te, "teacher_redraw": redraw,
                "curve_epochs": res.curve_epochs, "train_loss": res.train_loss[m], "test_accuracy": res.test_acc[m],
                "alphas": res.alphas[m], "task_seconds": seconds, "task_models": len(specs),
                "diverged": res.diverged_epoch[m] is not None, "diverged_epoch": res.diverged_epoch[m],
            }
            write_record(run_dir, record_path(depth, teacher, student, draw, fold), record, chash)

    # ---------------------------------------------------------------------------------- results
    def records(self, cfg: Table1Config, run_dir: str) -> List[Dict]:
        paths = (record_path(depth, t, s, d, k) for depth in cfg.depths for t in cfg.teachers
                 for s in cfg.students for d in range(cfg.draws) for k in range(cfg.folds))
        return read_records(run_dir, cfg, paths)

    def summarize(self, cfg: Table1Config, run_dir: str) -> Dict:
        from .config import config_hash
        from .runner import hashed_config

        recs = self.records(cfg, run_dir)
        self._write_folds_csv(recs, run_dir)
        rows = [row_label(d, t) for d in cfg.depths for t in cfg.teachers]
        cells = []
        for depth in cfg.depths:
            for t in cfg.teachers:
                for s in cfg.students:
                    mine = [r for r in recs if r["depth"] == depth and r["teacher"] == t and r["student"] == s]
                    paper = PAPER_TABLE1.get((depth, t), {}).get(s)
                    cells.append({"row": row_label(depth, t), "column": s, **cell_stats(mine, paper=paper)})
        se_covers = (
            f"teacher draws: SE of the {cfg.draws} per-draw means, each the mean over {cfg.folds} folds "
            "(so it includes the spread between teachers); se_folds is the SE over folds within a draw, "
            "averaged over draws (the paper's kind, max 0.22)"
            if cfg.draws > 1 else f"folds: SE over the {cfg.folds} folds of the single teacher draw"
        )
        return {
            "format": RESULTS_FORMAT,
            "table": self.name,
            "title": self.title,
            "config_hash": config_hash(hashed_config(cfg)),
            "metric": "accuracy",
            "unit": "%",
            "rows": rows,
            "columns": list(cfg.students),
            "se_covers": se_covers,
            "cells": cells,
            "choices": self.choices(cfg),
        }

    @staticmethod
    def choices(cfg: Table1Config) -> Dict[str, str]:
        return {
            "input distribution": {"normal": "x ~ N(0, I_10)", "uniform": "x ~ U(-1, 1)^10"}[cfg.input_dist],
            "spread 0.5": f"read as a {'standard deviation' if cfg.spread_is == 'sd' else 'variance'}: weights "
            f"~ 1/2 N(-1, s^2) + 1/2 N(+1, s^2), biases ~ N(0, s_b^2) (spread_is={cfg.spread_is})",
            "label": {
                "sign": "y = 1{teacher logit > 0}: the teacher's sigmoid output rounded (deterministic)",
                "bernoulli": "y ~ Bernoulli(sigmoid(teacher logit)) (noisy)",
                "median": "y = 1{teacher logit > its median over the sample} (balanced classes)",
            }[cfg.label_rule],
            "teacher draws": f"{cfg.draws} per row (the paper reports one table; the draw dominates the spread)"
            + ("" if cfg.max_majority >= 1.0 else
               f"; a teacher whose majority-class rate is above {cfg.max_majority:g} is redrawn (up to {MAX_REDRAWS} "
               "times, keeping the least one-sided; see teacher_redraw in folds.csv)"),
            "folds": "stratified 5-fold (plain shuffled folds when a class has fewer examples than folds)",
            "penalty": f"L1 {cfg.l1} + L2 {cfg.l2} on all weights and biases"
            + (" and on alpha (adaptive students)" if cfg.penalize_alpha else "; alpha not penalised")
            + "; alpha = exp(rho), rho trained by SGD",
            "initialisation": "LeCun: weights and biases ~ N(0, 1/fan_in); alpha = "
            f"{cfg.alpha_init:g} (rho = log alpha)",
            "loss": "binary cross-entropy on the single output logit, mean over the minibatch",
            "last minibatch": "kept (no drop-last)",
            "accuracy": "on the held-out fold after the last epoch (no early stopping)",
            "sizes": f"{cfg.n_samples} examples; epochs "
            + ", ".join(f"{cfg.epochs_for(d)} for {d} layer(s)" for d in cfg.depths)
            + f"; batch {cfg.batch_size}; lr {cfg.lr}",
        }

    @staticmethod
    def _write_folds_csv(recs: List[Dict], run_dir: str) -> None:
        import io

        buf = io.StringIO()
        cols = ["depth", "teacher", "student", "draw", "fold", "accuracy", "majority_rate", "positive_rate", "n_train", "n_test",
                "teacher_redraw"]
        w = csv.writer(buf)
        w.writerow(cols + ["final_train_loss"])
        for r in sorted(recs, key=lambda r: (r["depth"], r["teacher"], r["student"], r["draw"], r["fold"])):
            w.writerow([r[c] for c in cols] + [r["train_loss"][-1] if r["train_loss"] else ""])
        write_text(os.path.join(run_dir, "folds.csv"), buf.getvalue(), root=run_dir)

    # ----------------------------------------------------------------------------------- report
    def report(self, cfg: Table1Config, run_dir: str, results: Dict) -> str:
        figures = self.figures(cfg, run_dir)
        cells = {(c["row"], c["column"]): c for c in results["cells"]}
        cols = results["columns"]
        header = ["layers", "teacher", "majority"] + cols
        body, dist = [], []
        for row in results["rows"]:
            depth, teacher = row.split("/")
            first = cells[(row, cols[0])]
            body.append([depth, teacher, fmt_num(first["majority_rate"])] + [
                f"{fmt_num(cells[(row, s)]['mean'])} ± {fmt_num(cells[(row, s)]['se'], 2)} ({fmt_num(cells[(row, s)]['paper'])})"
                for s in cols
            ])
            dist.append([depth, teacher] + [
                "n/a" if cells[(row, s)]["diff"] is None
                else f"{cells[(row, s)]['diff']:+.1f} (n/a: SE 0)" if cells[(row, s)]["diff_in_se"] is None
                else f"{cells[(row, s)]['diff']:+.1f} ({cells[(row, s)]['diff_in_se']:+.1f} SE)"
                for s in cols
            ])
        per_draw_rows = []
        for row in results["rows"]:
            for s in results["columns"]:
                c = cells[(row, s)]
                per_draw_rows.append([row, s] + [
                    f"{fmt_num(d['mean'])} ± {fmt_num(d['se_folds'], 2)} (maj {fmt_num(d['majority_rate'])})" for d in c["draws"]
                ])
        n_draws = max((len(c["draws"]) for c in results["cells"]), default=0)
        lines = [
            f"# {self.title}",
            "",
            f"Preset `{results.get('preset')}`, config hash `{results['config_hash']}`"
            + ("" if results.get("complete", True) else " — **incomplete run: only the finished folds are counted**"),
            "",
            "Each cell: our mean accuracy ± our standard error (the paper's value). *majority*: the accuracy of "
            "always predicting the training folds' majority class, which a student that learns nothing scores; "
            "it is the same for every student of a row (same data and folds).",
            "",
            f"Standard error: {results['se_covers']}.",
            "",
            markdown_table(header, body),
            "",
            f"Distance from the paper: ours - paper, in points and in our standard errors (the paper's own "
            f"maximum SE is {PAPER_MAX_SE}). A large distance where *majority* is near 100% means the teacher "
            "draw gave (nearly) one class, not that a student failed.",
            "",
            markdown_table(["layers", "teacher"] + cols, dist),
            "",
            "## Per teacher draw",
            "",
            "Mean over folds ± SE over folds (majority-class rate) for each draw.",
            "",
            markdown_table(["row", "student"] + [f"draw {d}" for d in range(n_draws)], per_draw_rows),
            "",
        ]
        lines += choices_and_figures_markdown(results["choices"], figures, "folds")
        return "\n".join(lines)

    def figures(self, cfg: Table1Config, run_dir: str):
        """Write Figures 2-4 and the training curves into ``figures/``; returns ``[(caption, relpath)]``."""
        saver = figure_saver(run_dir)
        recs = plottable(self.records(cfg, run_dir))
        if saver is None or not recs:
            return []
        from ..plot import plot_alpha_histogram, plot_learned_curves

        plt, save, made = saver

        # Figure 2: fitted alphas of the one-hidden-layer adaptive students
        import torch

        shallow = min(cfg.depths)
        hist = {}
        for s in cfg.students:
            vals = finite_tensor(a for r in recs if r["depth"] == shallow and r["student"] == s
                                 and r["alphas"] for layer in r["alphas"] for a in layer)
            if vals.numel():
                hist[s] = vals
        if hist:
            fig, axes = plt.subplots(1, len(hist), figsize=(4.5 * len(hist), 3.5), squeeze=False)
            for ax, (s, v) in zip(axes[0], hist.items()):
                plot_alpha_histogram({s: v}, ax=ax)
                ax.set_title(f"{s}, {shallow} hidden layer(s)")
            save(fig, "fig2_alpha_histograms.png", f"Figure 2: fitted alpha, {shallow}-hidden-layer students")

        # Figures 3-4: curves of every neuron in layers 2 and 4 of a deep student
        deep = max(cfg.depths)
        layers = [l for l in (2, 4) if l <= deep]
        for num, s in ((3, "AGumb"), (4, "AReLU")):
            if s not in cfg.students or not layers:
                continue
            teacher = "ReLU" if "ReLU" in cfg.teachers else cfg.teachers[0]
            pick = [r for r in recs if r["depth"] == deep and r["student"] == s and r["teacher"] == teacher and r["alphas"]]
            if not pick:
                continue
            r = min(pick, key=lambda r: (r["draw"], r["fold"]))
            family, form = FAMILY_FORM[s]
            fig, axes = plt.subplots(1, len(layers), figsize=(4.5 * len(layers), 3.5), squeeze=False)
            for ax, layer in zip(axes[0], layers):
                plot_learned_curves(torch.tensor(r["alphas"][layer - 1]), family, form, ax=ax, title=f"{s}, layer {layer}")
            fig.suptitle(f"{deep}-layer student, teacher {teacher}, draw {r['draw']}, fold {r['fold']}")
            save(fig, f"fig{num}_{s.lower()}_curves.png", f"Figure {num}: fitted {s} of layers {', '.join(map(str, layers))}")

        # training curves: mean test error per epoch, one panel per row
        rows = [(d, t) for d in cfg.depths for t in cfg.teachers]
        fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 3.3), squeeze=False)
        for ax, (d, t) in zip(axes[0], rows):
            for s in cfg.students:
                mine = [r for r in recs if r["depth"] == d and r["teacher"] == t and r["student"] == s]
                if not mine:
                    continue
                ep = mine[0]["curve_epochs"]
                err = [100 * (1 - sum(r["test_accuracy"][i] for r in mine) / len(mine)) for i in range(len(ep))]
                ax.plot(ep, err, label=s)
            ax.set_title(f"{d} layer(s), teacher {t}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("test error %")
            ax.grid(alpha=0.3)
            if ax.get_lines():
                ax.legend(fontsize=7)
        save(fig, "training_curves.png", "Training curves: held-out error per epoch, mean over draws and folds")
        return made


register(Table1())
