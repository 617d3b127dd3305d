"""Table 4: user intention from URL sequences, on a public stand-in (PAPER.md §2.4).

Rows are the activation of the conv layers, columns that of the FC layer. The paper's data (about 13,500
private web sessions of up to 50 URLs, four intents) are not available; by default this runs on ISCX-URL-2016
(``<data root>/url-iscx2016``: benign, malware, phishing, spam single URLs), which is a different task (URL
*type*, one URL per example). ``input=PATH`` runs the same pipeline on a user's data instead: a sessions file
(``.csv``/``.jsonl``, format (a)) or a folder with one CSV per class (format (b)); see :mod:`..data.urls`.

Pipeline (all seeded, :func:`..data.urls.prepare_sessions`): read (bad rows counted, see the report) ->
deduplicate (before any split, so no session is in both train and test) -> class-balanced sample -> stratified
folds. One task trains one cell on one fold (:func:`..models.urlcnn.fit_evaluate`): the vocabulary and the
Word2Vec vectors come from the training fold only. Each cell reports macro precision and recall (the paper's P
and R), accuracy and the summed confusion matrix, with standard errors over folds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List

from ..config import ConfigError, option
from ..data.urls import PAPER_SIZE, SessionKeys
from ..grid import GridConfig, GridExperiment
from ..models.urlcnn import UrlCNNKeys
from ..registry import register
from ..report import fmt_num, markdown_table
from ..seeds import stable_seed

__all__ = ["Table4Config", "Table4", "PAPER_TABLE4"]

# PAPER.md §2.4, (precision, recall) in %: conv activation -> fc activation -> (P, R)
PAPER_TABLE4 = {
    "ReLU": {"ReLU": (68.0, 68.0), "AReLU": (68.1, 67.9), "AGumb": (68.0, 67.8)},
    "AReLU": {"ReLU": (68.1, 67.9), "AReLU": (68.0, 68.0), "AGumb": (67.9, 67.9)},
    "AGumb": {"ReLU": (68.1, 68.3), "AReLU": (68.2, 68.1), "AGumb": (68.1, 68.3)},
}


@dataclass
class Table4Config(UrlCNNKeys, SessionKeys, GridConfig):
    """The settings of Table 4: the sessions' keys (:class:`..data.urls.SessionKeys`), the model's
    (:class:`..models.urlcnn.UrlCNNKeys`) and the folds; the paper gives only the data size, the session cap and
    the model family."""

    FORMER_DEFAULTS = {"backend": "auto"}

    data_dir: str = option("", help="data root holding url-iscx2016/ (--data-dir or $ACTADAPT_DATA)")
    folds: int = option(5, min=2, help="stratified cross-validation folds")

    def validate(self) -> None:
        super().validate()
        if self.sample > 0 and self.sample < 4 * self.folds:
            raise ConfigError(f"config key 'sample': expected 0 (all) or at least {4 * self.folds}, got {self.sample}")


PRESETS = {
    # seconds: plumbing only
    "smoke": {"sample": 400, "folds": 2, "epochs": 1, "dim": 16, "hidden": 32, "w2v_epochs": 1},
    # the 3x3 grid over 5 folds on ~13,500 URLs, a few epochs
    "quick": {"epochs": 3},
    # 10 folds (10 paired units per comparison, quick has 5) at 10 epochs (quick: 3, paper: 20). Measured: 1,084 s
    # with --workers 2 on 2 cores shared with a CI run (docs/runs/table4-study); `actadapt plan` had said 11.3 min
    # of training
    "study": {"epochs": 10, "folds": 10},
    "paper": {"epochs": 20},
}
_VOCAB: Dict = {}  # (config hash, data dir, fold) -> (index, vectors) of the fold's training part


class Table4(GridExperiment):
    name = "table4"
    title = "Table 4: URL-sequence classifier (macro P/R %, rows conv, columns FC activation)"
    config_class = Table4Config
    presets = PRESETS
    paper = PAPER_TABLE4
    metric = "precision"
    extra_grids = {"cells_recall": "recall", "cells_accuracy": "accuracy"}
    distance_grids = ("cells", "cells_recall")
    paired_metrics = ("precision", "recall")  # the paper's P and R
    status_note = ("The data differ: the paper's ~13,500 private web sessions (four user intents) are not available; "
                   "the runs use ISCX-URL-2016 (four URL types, one URL per example) unless their settings name "
                   "another input.")
    paired_units = ("fold: the cells of a fold share its split, its vocabulary and word vectors (trained on the fold's "
                    "training part) and their seed (one per fold: initial weights, minibatch order)")
    extra_tables = {"cells_accuracy": "Accuracy ± SE:"}
    csv_columns = ("precision", "recall", "accuracy", "majority_rate", "n_train", "n_test", "seconds", "diverged")

    def paper_value(self, row: str, col: str, metric: str):
        pr = self.paper.get(row, {}).get(col)
        return pr[("precision", "recall").index(metric)] if pr and metric in ("precision", "recall") else None

    def memory_estimate(self, cfg: Table4Config):
        """Peak memory of one task in bytes (25% slack): the sessions as Python strings and token tuples
        (20x the input files' size); ``N`` sessions (``sample``, else the input's size / 20 bytes) encoded as
        ``8 N L W`` bytes (``L x W`` = ``max_session x max_words`` per session, ``max_words`` for single
        URLs); up to 200,000 words x ``dim`` floats x4 (vectors, gradient, two Adam states) and x3 for Word2Vec;
        the FC layer's ``50 (L / 4) hidden`` weights x4; the embedded batches ``(N, L, W, dim)`` of training
        (x3) and of an evaluation batch of 500 (x2)."""
        from ..data.urls import ISCX_DIR
        from ..resources import MemoryEstimate

        where = cfg.input or os.path.join(cfg.data_dir or ".", ISCX_DIR)
        files = [os.path.join(where, f) for f in os.listdir(where)] if os.path.isdir(where) else [where]
        size = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
        n = cfg.sample if cfg.sample > 0 else PAPER_SIZE if cfg.sample < 0 and not cfg.input else size // 20 + 1
        words = cfg.rows == "words" or (cfg.rows == "auto" and not cfg.input)
        L, W = (cfg.max_words, 1) if words else (cfg.max_session, cfg.max_words)
        total = (20 * size + 8 * n * L * W + 200_000 * cfg.dim * 4 * 7 + 16 * 50 * (L // 4 + 1) * cfg.hidden
                 + 4 * L * W * cfg.dim * (3 * cfg.batch_size + 2 * 500))
        return MemoryEstimate(total * 5 // 4, f"{n} sessions of {L} x {W} words, dim {cfg.dim}, "
                                              f"hidden {cfg.hidden}, batch_size {cfg.batch_size}")

    # ------------------------------------------------------------------------------------ training
    def tasks(self, cfg: Table4Config):
        self.prepared(cfg)  # read the data here, so a bad file fails at once with one message
        return super().tasks(cfg)

    def prepared(self, cfg: Table4Config) -> Dict:
        return cfg.sessions(cfg.data_dir, cfg.folds, cfg.seed)

    def train_cell(self, cfg: Table4Config, conv: str, fc: str, fold: int, checkpoint, progress) -> Dict:
        from ..config import run_hash
        from ..models.urlcnn import fit_evaluate, fold_vocab

        ds = self.prepared(cfg)["ds"]
        tr, te = self.prepared(cfg)["folds"][fold]
        s = cfg.urlcnn_settings(conv, fc, cfg.max_session, cfg.alpha_init, stable_seed(cfg.seed, "fold", fold) % (2**31))
        # every cell of a fold gets the same vocabulary and vectors (paired comparisons); a worker keeps the
        # last fold's, as tasks come fold by fold
        key = (run_hash(cfg), cfg.data_dir, fold)
        if key not in _VOCAB:
            _VOCAB.clear()
            _VOCAB[key] = fold_vocab(ds, tr, s, cfg.tokenizer())
        res = fit_evaluate(ds, tr, te, s, cfg.tokenizer(), progress, _VOCAB[key], checkpoint)
        return {
            # fractions, as cell_stats expects; the fold's metrics in % are in "metrics"
            "precision": res["precision"] / 100, "recall": res["recall"] / 100, "accuracy": res["accuracy"] / 100,
            "majority_rate": res["majority_rate"] / 100,
            "metrics": {k: res[k] for k in ("precision_per_class", "recall_per_class", "confusion", "train_accuracy",
                                            "train_loss", "vocab", "rows", "seq_len", "unknown_test_words", "alphas")},
            **{k: res[k] for k in ("curve_epochs", "train_loss", "train_error", "test_error")},
            "n_train": len(tr), "n_test": len(te), "seconds": res["seconds"],
            "diverged": res["diverged_epoch"] is not None, "diverged_epoch": res["diverged_epoch"],
        }

    # ------------------------------------------------------------------------------------- results
    def cell_extras(self, cfg: Table4Config, mine: List[Dict]) -> Dict:
        final = [r["train_error"][-1] for r in mine if r.get("train_error")]  # (records of older runs lack it)
        return {"final_train_error": 100 * sum(final) / len(final) if final else None}

    def summary_extras(self, cfg: Table4Config, recs: List[Dict]) -> Dict:
        confusion, data = {}, {}
        for conv in cfg.conv_acts:
            for fc in cfg.fc_acts:
                mine = [r["metrics"]["confusion"] for r in recs if r["conv"] == conv and r["fc"] == fc]
                if mine:
                    confusion[f"{conv}-{fc}"] = [[sum(m[a][b] for m in mine) for b in range(len(mine[0]))]
                                                 for a in range(len(mine[0]))]
        try:
            prep = self.prepared(cfg)
            data = {"source": prep["source"], "classes": prep["ds"].classes, "counts": prep["ds"].counts(),
                    "load_report": prep["ds"].report.to_dict()}
        except (ConfigError, OSError):
            pass
        return {"confusion": confusion, "data": data}

    def choices(self, cfg: Table4Config) -> Dict[str, str]:
        return {**cfg.session_choices(), **cfg.urlcnn_choices()}

    # -------------------------------------------------------------------------------------- report
    def format_cell(self, cells: Dict, row: str, col: str, grid: str = "cells") -> str:
        if grid != "cells":
            return super().format_cell(cells, row, col, grid)
        p, r, paper = cells["cells"][(row, col)], cells["cells_recall"][(row, col)], self.paper.get(row, {}).get(col)
        return (f"{fmt_num(p['mean'])}±{fmt_num(p['se'], 2)} / {fmt_num(r['mean'])}±{fmt_num(r['se'], 2)}"
                + (f" ({paper[0]}/{paper[1]})" if paper else ""))

    def report_intro(self, cfg: Table4Config, results: Dict) -> List[str]:
        return ["Each cell: our macro precision ± SE / macro recall ± SE (the paper's P/R). **The data differ**: the "
                "paper classifies ~13,500 private web sessions into four user intents; this run uses "
                + (f"`{(results.get('data') or {}).get('source')}`." if cfg.input
                   else "ISCX-URL-2016 (four URL types, one URL per example).")]

    def report_sections(self, cfg: Table4Config, results: Dict) -> List[str]:
        data = results.get("data") or {}
        lines = ["## Data", "", f"- classes: {', '.join(data.get('classes', []))}; sessions per class after dedup "
                 f"and sampling: {data.get('counts')}"]
        rep = data.get("load_report") or {}
        if rep:
            lines.append(f"- read {rep.get('rows')} rows; left out: {rep.get('problems')}; malformed URLs dropped inside "
                         f"sessions: {rep.get('bad_urls')}; sessions cut to {cfg.max_session}: {rep.get('truncated')}")
            lines += [f"- {step}" for step in rep.get("steps", [])]
        conf, rows, cols = results.get("confusion") or {}, results["rows"], results["columns"]
        first = f"{rows[0]}-{cols[0]}" if rows and cols else ""
        if first in conf:
            names = data.get("classes") or [str(i) for i in range(len(conf[first]))]
            lines += ["", f"Confusion matrix of {rows[0]}/{cols[0]}, summed over the test folds (rows true, columns "
                      "predicted; every cell's is in results.json):", "",
                      markdown_table(["true \\ predicted"] + names,
                                     [[n] + [str(v) for v in row] for n, row in zip(names, conf[first])])]
        return lines + [""]


register(Table4())
