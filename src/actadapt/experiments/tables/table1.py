"""Table 1 and Figures 2-4: teacher-student simulation (PAPER.md §2.1).

Rows are (teacher depth, teacher activation), columns the student activation. Per teacher draw a teacher and
its data are drawn (:mod:`..data.simulation`; redrawn while its labels' majority-class rate is above
``max_majority``), split into stratified folds, and every student is trained on every fold. One task is one
row: its draws x students x folds train as one batched computation (:mod:`..models.students`), one record per
(cell, fold). Seeds derive from names (:mod:`..seeds`); the students of a teacher, draw and fold share their
initialisation and minibatch order (a paired comparison across the columns).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List

from ..config import ConfigError, ExperimentConfig, option, run_hash
from ..data.simulation import TeacherKeys
from ..models.students import STUDENT_ACTIVATIONS, StudentKeys
from ..paired import Comparison
from ..registry import Task, register
from ..report import fmt_num
from ..seeds import stable_seed
from ..table import TableExperiment, csv_float
from .table1_figures import learned

__all__ = ["Table1Config", "Table1", "PAPER_TABLE1"]

# PAPER.md §2.1, accuracy in %: (depth, teacher) -> student -> value
PAPER_TABLE1 = {
    (1, "Sig"): {"Sig": 95.8, "AGumb": 97.5, "ReLU": 97.8, "AReLU": 97.7},
    (1, "ReLU"): {"Sig": 96.1, "AGumb": 97.4, "ReLU": 98.2, "AReLU": 98.0},
    (8, "Sig"): {"Sig": 83.7, "AGumb": 83.8, "ReLU": 81.8, "AReLU": 81.9},
    (8, "ReLU"): {"Sig": 57.3, "AGumb": 88.2, "ReLU": 89.3, "AReLU": 89.9},
}
PAPER_MAX_SE, TEACHERS = 0.22, ("Sig", "ReLU")
COUNTERPARTS = (("AGumb", "Sig"), ("AReLU", "ReLU"))  # the paper's comparisons: adaptive student - its fixed one
FIGURE_KEYS = ("depth", "teacher", "draw", "fold", "accuracy", "majority_rate")  # results.json: Figures 3-4's students


@dataclass
class Table1Config(TeacherKeys, StudentKeys, ExperimentConfig):
    """The settings of Table 1: the teachers' keys (:class:`..data.simulation.TeacherKeys`), the students'
    training (:class:`..models.students.StudentKeys`) and these. Defaults are the paper's where it gives them."""

    FORMER_DEFAULTS = {"backend": "auto"}

    epochs: List[int] = option([2000], min=1, help="training epochs: one value, or one per entry of depths (paper: 2000)")
    draws: int = option(5, min=1, help="teacher draws per row (paper: not stated; one)")
    folds: int = option(5, min=2, help="cross-validation folds (paper: 5)")
    depths: List[int] = option([1, 8], min=1, help="teacher (and student) hidden layers")
    teachers: List[str] = option(list(TEACHERS), choices=TEACHERS, help="teacher activations")
    students: List[str] = option(["Sig", "AGumb", "ReLU", "AReLU"], choices=STUDENT_ACTIVATIONS, help="student activations")

    def validate(self) -> None:
        super().validate()
        if len(self.epochs) not in (1, len(self.depths)):
            raise ConfigError(f"config key 'epochs': expected one value or one per depth ({len(self.depths)}), got "
                              f"{self.epochs}")
        if self.n_samples < 2 * self.folds:
            raise ConfigError(f"config key 'n_samples': expected at least 2 x folds = {2 * self.folds}, got {self.n_samples}")
        if len(set(self.students)) != len(self.students) or len(set(self.teachers)) != len(self.teachers):
            raise ConfigError("config keys 'students'/'teachers': expected no repeated names")

    def epochs_for(self, depth: int) -> int:  # the epochs of the rows of ``depth`` layers
        return self.epochs[0] if len(self.epochs) == 1 else self.epochs[self.depths.index(depth)]


PRESETS = {
    "smoke": {"n_samples": 200, "epochs": [2], "draws": 1, "folds": 5},
    # the 4x4 table in about 4 minutes on 2 idle cores: the 8-layer rows, ~8x dearer per epoch, get fewer epochs;
    # teachers that label more than 95% one class are redrawn (an 8-layer sigmoid teacher: ~100 draws of 0.1 s)
    "quick": {"n_samples": 5000, "depths": [1, 8], "epochs": [100, 40], "draws": 3, "folds": 5, "max_majority": 0.95,
              "max_redraws": 1000},
    # decides the paper's comparisons (docs/REPRODUCTION.md): 4x the data and epochs of quick on the 1-layer rows,
    # teachers that label at most 90% one class; the 8-layer rows at 40 epochs, as far as they go. Measured: 2,809 s
    # with --workers 2 on 2 cores shared with other jobs (load average 4-5)
    "study": {"n_samples": 20_000, "depths": [1, 8], "epochs": [400, 40], "draws": 3, "folds": 5, "max_majority": 0.9,
              "max_redraws": 1000},
    "paper": {"n_samples": 100_000, "epochs": [2000], "draws": 5, "folds": 5, "eval_every": 20},
}


def row_label(depth: int, teacher: str) -> str:
    return f"{depth}/{teacher}"


def record_path(depth: int, teacher: str, student: str, draw: int, fold: int) -> str:
    return os.path.join("folds", f"d{depth}-{teacher}__{student}__draw{draw}__fold{fold}.json")


class Table1(TableExperiment):
    name = "table1"
    title = "Table 1: teacher-student simulation (accuracy %)"
    config_class = Table1Config
    presets = PRESETS
    paper = {row_label(*row): values for row, values in PAPER_TABLE1.items()}
    row_title = "layers/teacher"
    majority_column = True
    draw_name = "teacher draw"
    csv_key_columns = ("depth", "teacher", "student", "draw", "fold")
    csv_columns = ("accuracy", "majority_rate", "positive_rate", "n_train", "n_test", "teacher_redraw")
    paired_units = ("teacher draw x fold: the students of a row's teacher draw and fold share its data, its fold split, "
                    "their initial weights and their minibatch order (seeds from the row, draw and fold)")

    def rows(self, cfg: Table1Config) -> List[str]:
        return [row_label(d, t) for d in cfg.depths for t in cfg.teachers]

    def columns(self, cfg: Table1Config) -> List[str]:
        return list(cfg.students)

    def comparisons(self, rows: List[str], columns: List[str]) -> List[Comparison]:
        return [Comparison((row, adaptive), (row, fixed), f"{adaptive} vs {fixed}", f"{row}: {adaptive} - {fixed}")
                for row in rows for adaptive, fixed in COUNTERPARTS if adaptive in columns and fixed in columns]

    def record_from_csv(self, row):
        depth, draw, fold = int(row["depth"]), int(row["draw"]), int(row["fold"])
        rec = {"row": row_label(depth, row["teacher"]), "column": row["student"], "draw": draw, "fold": fold,
               "accuracy": csv_float(row["accuracy"]), "majority_rate": csv_float(row["majority_rate"])}
        return rec, record_path(depth, row["teacher"], row["student"], draw, fold)

    # ------------------------------------------------------------------------------------ tasks
    def tasks(self, cfg: Table1Config) -> List[Task]:
        # one task per row, its draws x students x folds in one batch (the per-step overhead amortised); cost ~ layers
        return [Task(f"d{d}-{t}", {"depth": d, "teacher": t, "epochs": cfg.epochs_for(d),
                                    "cost": (d + 1) * cfg.epochs_for(d)},
                     tuple(record_path(d, t, s, k, f) for k in range(cfg.draws) for s in cfg.students
                           for f in range(cfg.folds)))
                for d in cfg.depths for t in cfg.teachers]

    def memory_estimate(self, cfg: Table1Config):
        """Peak memory of one task (one row, sized for the deepest row), in bytes, with 25% slack: the batched
        students (:func:`..models.students.batched_memory`) and the teacher draws (``24 n (F + W D)``)."""
        from ..models.students import batched_memory
        from ..resources import MemoryEstimate

        M, n, D = cfg.draws * cfg.folds * len(cfg.students), cfg.n_samples, max(cfg.depths)
        evals = max(cfg.epochs_for(d) // cfg.eval_every + 1 for d in cfg.depths)
        total = batched_memory(M, n, cfg.n_features, cfg.width, D, 8 if cfg.dtype == "float64" else 4,
                               cfg.batch_size, n // cfg.folds + 1, evals) + 3 * 8 * n * (cfg.n_features + cfg.width * D)
        return MemoryEstimate(total * 5 // 4, f"{M} students (draws x folds x students) on {n} examples x "
                                              f"{cfg.n_features} features, width {cfg.width}, depth {D}")

    def data(self, cfg: Table1Config, depth: int, teacher: str, draw: int):
        """``(X, y, splits, redraw)`` of one teacher draw: the data, its ``(train_idx, test_idx)`` folds (plain
        shuffled ones for a teacher of (nearly) one class), which redraw was kept (see ``max_majority``)."""
        from ..folds import stratified_folds

        X, y, attempt = cfg.teacher_data(lambda k: stable_seed(cfg.seed, "teacher", depth, teacher, draw,
                                                               *(("redraw", k) if k else ())), depth, teacher)
        seed = stable_seed(cfg.seed, "folds", depth, teacher, draw)
        return X, y, stratified_folds(y.numpy(), cfg.folds, seed, short_class="plain"), attempt

    def run_task(self, cfg: Table1Config, task: Task, run_dir: str, progress=None) -> None:
        import time

        import torch

        from ..models.students import StudentSpec, train_batched
        from ..runner import write_record

        depth, teacher = task.params["depth"], task.params["teacher"]
        specs, keys = [], []
        for draw in range(cfg.draws):
            X, y, splits, redraw = self.data(cfg, depth, teacher, draw)
            for fold, (tr, te) in enumerate(splits):
                tr, te = torch.as_tensor(tr), torch.as_tensor(te)
                majority = float((y[te] == int(y[tr].float().mean() > 0.5)).float().mean())
                seeds = [stable_seed(cfg.seed, kind, depth, teacher, draw, fold) for kind in ("init", "shuffle")]
                for student in cfg.students:
                    specs.append(StudentSpec(student, *seeds, X_train=X[tr], y_train=y[tr], X_test=X[te], y_test=y[te]))
                    keys.append({"student": student, "draw": draw, "fold": fold, "column": student,
                                 "majority_rate": majority, "positive_rate": float(y.float().mean()),
                                 "n_train": len(tr), "n_test": len(te), "teacher_redraw": redraw})
        t0, settings = time.perf_counter(), cfg.student_settings(depth, cfg.width, cfg.epochs_for(depth), cfg.alpha_init)
        res = train_batched(specs, settings, progress=progress)
        seconds, chash = time.perf_counter() - t0, run_hash(cfg)
        for m, key in enumerate(keys):
            write_record(run_dir, record_path(depth, teacher, key["student"], key["draw"], key["fold"]), {
                "table": self.name, "depth": depth, "teacher": teacher, "row": row_label(depth, teacher), **key,
                "accuracy": res.accuracy[m], "curve_epochs": res.curve_epochs, "train_loss": res.train_loss[m],
                "test_accuracy": res.test_acc[m], "alphas": res.alphas[m], "task_seconds": seconds,
                "task_models": len(specs), "diverged": res.diverged_epoch[m] is not None,
                "diverged_epoch": res.diverged_epoch[m]}, chash)

    # ---------------------------------------------------------------------------------- results
    def se_covers(self, cfg: Table1Config) -> str:
        return (f"teacher draws: SE of the {cfg.draws} per-draw means, each the mean over {cfg.folds} folds (so it "
                "includes the spread between teachers); se_folds is the SE over folds within a draw, averaged over "
                "draws (the paper's kind, max 0.22)" if cfg.draws > 1
                else f"folds: SE over the {cfg.folds} folds of the single teacher draw")

    def summary_extras(self, cfg: Table1Config, recs: List[Dict]) -> Dict:
        draws = {(r["row"], r["draw"]): {"row": r["row"], "draw": r["draw"], "redraw": r["teacher_redraw"],
                                         "majority_rate": max(r["positive_rate"], 1 - r["positive_rate"])} for r in recs}
        return {"teacher_draws": [draws[k] for k in sorted(draws)], "figure_students": {
            s: learned(recs, max(cfg.depths), s, FIGURE_KEYS) for s in ("AGumb", "AReLU") if s in cfg.students}}

    def choices(self, cfg: Table1Config) -> Dict[str, str]:
        return {
            **cfg.teacher_choices(),
            "teacher draws": f"{cfg.draws} per row (the paper reports one table; the draw dominates the spread)"
            + ("" if cfg.max_majority >= 1.0 else
               f"; a teacher whose majority-class rate is above {cfg.max_majority:g} is redrawn (up to {cfg.max_redraws} "
               "times, keeping the least one-sided; see teacher_redraw in folds.csv)"),
            "folds": "stratified 5-fold (plain shuffled folds when a class has fewer examples than folds)",
            **cfg.student_choices(cfg.alpha_init),
            "sizes": f"{cfg.n_samples} examples; epochs " + ", ".join(f"{cfg.epochs_for(d)} for {d} layer(s)"
                                                                      for d in cfg.depths)
            + f"; batch {cfg.batch_size}; lr {cfg.lr}",
        }

    # ----------------------------------------------------------------------------------- report
    def report_intro(self, cfg: Table1Config, results: Dict) -> List[str]:
        return [f"Each cell: our mean accuracy ± SE (the paper's value; its largest SE is {PAPER_MAX_SE}). *majority*: "
                "the accuracy of always predicting the training folds' majority class, which a student that learns "
                "nothing scores; where it is near 100%, the teacher draw gave (nearly) one class."]

    def report_sections(self, cfg: Table1Config, results: Dict) -> List[str]:
        draws, lines = results.get("teacher_draws") or [], []
        redrawn = [t for t in draws if t["redraw"]]
        over = [f"{t['row']} draw {t['draw']} ({fmt_num(100 * t['majority_rate'])}%)" for t in draws
                if t["majority_rate"] > cfg.max_majority]
        if cfg.max_majority < 1.0:
            lines += [f"Teachers redrawn because their labels' majority-class rate was above {cfg.max_majority:g}: "
                      f"{len(redrawn)} of {len(draws)} draws" + (" (" + ", ".join(
                          f"{t['row']} draw {t['draw']}: kept redraw {t['redraw']}" for t in redrawn) + ")" if redrawn else "")
                      + (f". Still above it after {cfg.max_redraws} redraws: {', '.join(over)}." if over else "."), ""]
        missing = [s for s, r in (results.get("figure_students") or {}).items() if r is None]
        return lines + ([f"Figures 3-4: no {max(cfg.depths)}-layer {' or '.join(missing)} student beat its majority-class "
                         f"rate at this budget ({cfg.epochs_for(max(cfg.depths))} epochs): no learned curves to draw.",
                         ""] if missing else [])

    def draw_figures(self, cfg: Table1Config, recs: List[Dict], plt, save) -> None:
        """Figure 2 (the shallow students' alphas), Figures 3-4 and the training curves (:mod:`.table1_figures`)."""
        from .table1_figures import draw_figures

        draw_figures(cfg, self.rows(cfg), recs, plt, save)

register(Table1())
