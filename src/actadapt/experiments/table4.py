"""Table 4: user intention from URL sequences, on a public stand-in (PAPER.md §2.4).

Rows are the activation of the convolutional layers, columns that of the fully connected layer (ReLU, AReLU,
AGumb). The paper's data (about 13,500 private web sessions of up to 50 URLs, four intents) are not
available; by default this runs on ISCX-URL-2016 (``<data root>/url-iscx2016``: benign, malware, phishing,
spam single URLs), which is a different task (URL *type*, one URL per example). ``input=PATH`` runs the same
pipeline on a user's data instead: a sessions file (``.csv``/``.jsonl``, format (a)) or a folder with one CSV
per class (format (b)); see :mod:`.urls`.

Pipeline (all seeded): read (bad rows counted, see the report) -> deduplicate (``dedup``, before any split, so
no session is in both train and test) -> class-balanced sample of ``sample`` sessions (0: all) -> stratified
``folds``-fold CV. One task trains one (conv, fc) cell on one fold (:func:`.urlcnn.fit_evaluate`): the
vocabulary and the Word2Vec vectors come from the training fold only. Each cell reports macro precision
and recall (the paper's P and R), accuracy and the summed confusion matrix, with standard errors over folds.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Dict, List

from .config import ConfigError, option
from .grid import cell_id, fold_grid_tasks, record_path
from .registry import Experiment, Task, register
from .report import RESULTS_FORMAT, cell_stats, fmt_num, markdown_table
from .runner import read_records, write_record
from .table1 import stable_seed

__all__ = ["Table4Config", "Table4", "PAPER_TABLE4"]

# PAPER.md §2.4, (precision, recall) in %: conv activation -> fc activation -> (P, R)
PAPER_TABLE4 = {
    "ReLU": {"ReLU": (68.0, 68.0), "AReLU": (68.1, 67.9), "AGumb": (68.0, 67.8)},
    "AReLU": {"ReLU": (68.1, 67.9), "AReLU": (68.0, 68.0), "AGumb": (67.9, 67.9)},
    "AGumb": {"ReLU": (68.1, 68.3), "AReLU": (68.2, 68.1), "AGumb": (68.1, 68.3)},
}
PAPER_SIZE = 13500  # sessions in the paper's data
GRID = ("ReLU", "AReLU", "AGumb")
CHOICES = ("ReLU", "AReLU", "AGumb", "Sig", "Swish")


@dataclass
class Table4Config:
    """The settings of Table 4; the paper gives only the data size, the session cap and the model family."""

    seed: int = option(0, help="base seed: sampling, folds, Word2Vec, initialisation and batches derive from it")
    data_dir: str = option("", help="data root holding url-iscx2016/ (--data-dir or $ACTADAPT_DATA)")
    input: str = option("", help="your data instead of ISCX: a sessions .csv/.jsonl file or a folder of per-class CSVs")
    classes: str = option("", help="comma-separated label set and order for input (default: labels met / file stems)")
    max_session: int = option(50, min=1, help="URLs kept per session (paper: at most 50)")
    dedup: str = option("tokens", choices=("tokens", "url", "none"),
                        help="drop repeated sessions before splitting: same words (tokens), same strings (url)")
    sample: int = option(-1, min=-1, help="class-balanced sample of this many sessions (0: all; -1: 13,500, the "
                         "paper's size, on ISCX and all of a user's input)")
    fill: bool = option(False, help="give a small class's shortfall to the other classes to reach 'sample'")
    scheme: bool = option(False, help="tokeniser: keep the scheme as a word")
    host: bool = option(True, help="tokeniser: keep the host as a word")
    query: str = option("keys", choices=("keys", "full", "drop"), help="tokeniser: query parameter names, name=value, or none")
    fragment: bool = option(False, help="tokeniser: keep the fragment as a word")
    embedding: str = option("word2vec", choices=("word2vec", "learned"),
                            help="Word2Vec on the training fold (the paper's two steps) or learned end to end")
    static: bool = option(True, help="freeze the Word2Vec vectors")
    dim: int = option(50, min=2, help="embedding size")
    rows: str = option("auto", choices=("auto", "urls", "words"),
                       help="CNN sequence: one row per URL (sessions) or per word (single URLs); auto picks")
    max_words: int = option(16, min=1, help="words per URL (rows=urls) or per session (rows=words)")
    min_count: int = option(1, min=1, help="words seen fewer times in the training fold are unknown")
    w2v_epochs: int = option(5, min=1, help="Word2Vec epochs")
    folds: int = option(5, min=2, help="stratified cross-validation folds")
    epochs: int = option(10, min=1, help="training epochs")
    batch_size: int = option(50, min=2, help="minibatch size")
    lr: float = option(1e-3, min=0.0, help="Adam learning rate")
    weight_decay: float = option(0.0, min=0.0, help="Adam weight decay")
    hidden: int = option(500, min=1, help="FC hidden neurons")
    conv_acts: List[str] = option(list(GRID), choices=CHOICES, help="rows: activations of the conv layers")
    fc_acts: List[str] = option(list(GRID), choices=CHOICES, help="columns: activations of the FC layer")
    backend: str = option("auto", choices=("auto", "native", "compile", "eager"),
                          help="actadapt backend in the workers (auto: the fused C++ kernel on CPU)")
    threads: int = option(1, min=1, help="torch threads per worker process")

    def validate(self) -> None:
        if self.sample > 0 and self.sample < 4 * self.folds:
            raise ConfigError(f"config key 'sample': expected 0 (all) or at least {4 * self.folds}, got {self.sample}")
        if len(set(self.conv_acts)) != len(self.conv_acts) or len(set(self.fc_acts)) != len(self.fc_acts):
            raise ConfigError("config keys 'conv_acts'/'fc_acts': expected no repeated names")


PRESETS = {
    # seconds: plumbing only
    "smoke": {"sample": 400, "folds": 2, "epochs": 1, "dim": 16, "hidden": 32, "w2v_epochs": 1},
    # the 3x3 grid over 5 folds on ~13,500 URLs, a few epochs
    "quick": {"epochs": 3},
    "paper": {"epochs": 20},
}


def _tokenizer(cfg: "Table4Config"):
    from .urls import Tokenizer

    return Tokenizer(scheme=cfg.scheme, host=cfg.host, query=cfg.query, fragment=cfg.fragment)


_VOCAB: Dict = {}  # (config hash, data dir, fold) -> (index, vectors) of the fold's training part


@functools.lru_cache(maxsize=2)
def _prepared(data_dir: str, input: str, classes: tuple, max_session: int, dedup: str, sample: int, fill: bool,
              tok, folds: int, seed: int) -> Dict:
    from .urls import balanced_sample, deduplicate, load_iscx, read_class_folder, read_sessions, url_folds

    if input:
        if os.path.isdir(input):
            ds = read_class_folder(input, list(classes) or None, max_session)
        else:
            ds = read_sessions(input, list(classes) or None, max_session)
        source = input
    else:
        if not data_dir:
            raise ConfigError("no data: give --data-dir or $ACTADAPT_DATA (the folder holding url-iscx2016/), "
                              "or --set input=YOUR_FILE")
        ds = load_iscx(data_dir, max_session)
        source = os.path.join(data_dir, "url-iscx2016")
    if dedup != "none":
        ds = deduplicate(ds, by=dedup, tokenizer=tok)
    if sample < 0:
        sample = 0 if input else PAPER_SIZE
    ds = balanced_sample(ds, sample, seed=stable_seed(seed, "sample") % (2**32), fill=fill)
    files = ds.report.files  # one per class for a class folder, in class order
    where = dict(zip(ds.classes, files)) if len(files) == len(ds.classes) > 1 else source
    return {"ds": ds, "folds": url_folds(ds.labels, folds, stable_seed(seed, "folds"), ds.classes, where),
            "source": source}


class Table4(Experiment):
    name = "table4"
    title = "Table 4: URL-sequence classifier (macro P/R %, rows conv, columns FC activation)"
    config_class = Table4Config
    presets = PRESETS
    needs_data = True

    def memory_estimate(self, cfg: Table4Config):
        """Peak memory of one task in bytes (25% slack): the sessions as Python strings and token tuples
        (20x the input files' size); ``N`` sessions (``sample``, else the input's size / 20 bytes) encoded as
        ``8 N L W`` bytes (``L x W`` = ``max_session x max_words`` per session, ``max_words`` for single
        URLs);
        up to 200,000 words x ``dim`` floats x4 (vectors, gradient, two Adam states) and x3 for Word2Vec;
        the FC layer's ``50 (L / 4) hidden`` weights x4; the embedded batches ``(N, L, W, dim)`` of training
        (x3) and of an evaluation batch of 500 (x2)."""
        from .resources import MemoryEstimate
        from .urls import ISCX_DIR

        where = cfg.input or os.path.join(cfg.data_dir or ".", ISCX_DIR)
        files = [os.path.join(where, f) for f in os.listdir(where)] if os.path.isdir(where) else [where]
        size = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
        if cfg.sample > 0:
            n = cfg.sample
        else:
            n = PAPER_SIZE if cfg.sample < 0 and not cfg.input else size // 20 + 1
        words = cfg.rows == "words" or (cfg.rows == "auto" and not cfg.input)
        L, W = (cfg.max_words, 1) if words else (cfg.max_session, cfg.max_words)
        vocab = 200_000
        total = (20 * size + 8 * n * L * W + vocab * cfg.dim * 4 * 7 + 16 * 50 * (L // 4 + 1) * cfg.hidden
                 + 4 * L * W * cfg.dim * (3 * cfg.batch_size + 2 * 500))
        return MemoryEstimate(total * 5 // 4, f"{n} sessions of {L} x {W} words, dim {cfg.dim}, "
                                              f"hidden {cfg.hidden}, batch_size {cfg.batch_size}")

    def tasks(self, cfg: Table4Config) -> List[Task]:
        self.prepared(cfg)  # read the data here, so a bad file fails at once with one message
        return fold_grid_tasks(cfg.folds, cfg.conv_acts, cfg.fc_acts, cfg.epochs)

    def prepared(self, cfg: Table4Config) -> Dict:
        return _prepared(cfg.data_dir, cfg.input, tuple(c.strip() for c in cfg.classes.split(",") if c.strip()), cfg.max_session, cfg.dedup, cfg.sample,
                         cfg.fill, _tokenizer(cfg), cfg.folds, cfg.seed)

    def settings(self, cfg: Table4Config, conv: str, fc: str, fold: int):
        from .urlcnn import UrlCNNSettings

        return UrlCNNSettings(conv_act=conv, fc_act=fc, embedding=cfg.embedding, static=cfg.static, dim=cfg.dim,
                              rows=cfg.rows, max_urls=cfg.max_session, max_words=cfg.max_words,
                              min_count=cfg.min_count, w2v_epochs=cfg.w2v_epochs, epochs=cfg.epochs,
                              batch=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay, hidden=cfg.hidden,
                              seed=stable_seed(cfg.seed, "fold", fold) % (2**31))

    def run_task(self, cfg: Table4Config, task: Task, run_dir: str, progress=None) -> None:
        from .config import config_hash
        from .runner import hashed_config
        from .urlcnn import fit_evaluate, fold_vocab

        conv, fc, fold = task.params["conv"], task.params["fc"], task.params["fold"]
        prep = self.prepared(cfg)
        ds = prep["ds"]
        tr, te = prep["folds"][fold]
        s = self.settings(cfg, conv, fc, fold)
        # every cell of a fold gets the same vocabulary and vectors (paired comparisons); a worker keeps the
        # last fold's, as tasks come fold by fold
        key = (config_hash(hashed_config(cfg)), cfg.data_dir, fold)
        if key not in _VOCAB:
            _VOCAB.clear()
            _VOCAB[key] = fold_vocab(ds, tr, s, _tokenizer(cfg))
        vocab = _VOCAB[key]
        res = fit_evaluate(ds, tr, te, s, _tokenizer(cfg), progress, vocab)
        record = {
            "table": self.name, "conv": conv, "fc": fc, "fold": fold, "draw": 0, "row": conv, "column": fc,
            # fractions, as cell_stats expects; the fold's metrics in % are in "metrics"
            "precision": res["precision"] / 100, "recall": res["recall"] / 100, "accuracy": res["accuracy"] / 100,
            "majority_rate": res["majority_rate"] / 100,
            "metrics": {k: res[k] for k in ("precision_per_class", "recall_per_class", "confusion",
                                            "train_accuracy", "train_loss", "vocab", "rows", "seq_len",
                                            "unknown_test_words", "alphas")},
            "n_train": len(tr), "n_test": len(te), "seconds": res["seconds"],
            "diverged": res["diverged_epoch"] is not None, "diverged_epoch": res["diverged_epoch"],
        }
        write_record(run_dir, record_path(conv, fc, fold), record, config_hash(hashed_config(cfg)))

    def records(self, cfg: Table4Config, run_dir: str) -> List[Dict]:
        return read_records(run_dir, cfg, (record_path(conv, fc, k) for conv in cfg.conv_acts
                                           for fc in cfg.fc_acts for k in range(cfg.folds)))

    def summarize(self, cfg: Table4Config, run_dir: str) -> Dict:
        from .config import config_hash
        from .runner import hashed_config

        recs = self.records(cfg, run_dir)
        cells: Dict[str, List[Dict]] = {"precision": [], "recall": [], "accuracy": []}
        confusion = {}
        for conv in cfg.conv_acts:
            for fc in cfg.fc_acts:
                mine = [r for r in recs if r["conv"] == conv and r["fc"] == fc]
                paper = PAPER_TABLE4.get(conv, {}).get(fc)
                for i, key in enumerate(cells):
                    ref = paper[i] if paper and i < 2 else None
                    cells[key].append({"row": conv, "column": fc, **cell_stats(mine, key=key, paper=ref)})
                if mine:
                    k = len(mine[0]["metrics"]["confusion"])
                    confusion[cell_id(conv, fc)] = [[sum(r["metrics"]["confusion"][a][b] for r in mine)
                                                     for b in range(k)] for a in range(k)]
        data = {}
        try:
            prep = self.prepared(cfg)
            data = {"source": prep["source"], "classes": prep["ds"].classes, "counts": prep["ds"].counts(),
                    "load_report": prep["ds"].report.to_dict()}
        except (ConfigError, OSError):
            pass
        return {
            "format": RESULTS_FORMAT, "table": self.name, "title": self.title,
            "config_hash": config_hash(hashed_config(cfg)),
            "metric": "precision", "unit": "%", "rows": list(cfg.conv_acts), "columns": list(cfg.fc_acts),
            "se_covers": f"folds: standard error over the {cfg.folds} cross-validation folds",
            "cells": cells["precision"], "cells_recall": cells["recall"], "cells_accuracy": cells["accuracy"],
            "confusion": confusion, "data": data,
            "choices": {
                "data": "ISCX-URL-2016 single URLs (URL type, not user intent)" if not cfg.input else f"user data {cfg.input}",
                "dedup": f"by {cfg.dedup}, before splitting", "sample": "all (no sampling)" if cfg.sample == 0 or (cfg.sample < 0 and cfg.input)
                else f"class-balanced, target {cfg.sample if cfg.sample > 0 else PAPER_SIZE} in all",
                "tokeniser": f"scheme {cfg.scheme}, host {cfg.host}, query {cfg.query}, fragment {cfg.fragment}",
                "embedding": cfg.embedding + (" (training fold only, frozen)" if cfg.static and cfg.embedding == "word2vec" else ""),
                "optimiser": f"Adam lr {cfg.lr:g}, batch {cfg.batch_size}, {cfg.epochs} epochs (the paper gives none)",
            },
        }

    def report(self, cfg: Table4Config, run_dir: str, results: Dict) -> str:
        rows, cols = results["rows"], results["columns"]
        p = {(c["row"], c["column"]): c for c in results["cells"]}
        r = {(c["row"], c["column"]): c for c in results["cells_recall"]}
        a = {(c["row"], c["column"]): c for c in results["cells_accuracy"]}

        def pr(row, col):
            paper = PAPER_TABLE4.get(row, {}).get(col)
            ours = (f"{fmt_num(p[(row, col)]['mean'])}±{fmt_num(p[(row, col)]['se'], 2)} / "
                    f"{fmt_num(r[(row, col)]['mean'])}±{fmt_num(r[(row, col)]['se'], 2)}")
            return ours + (f" ({paper[0]}/{paper[1]})" if paper else "")

        body = [[row] + [pr(row, col) for col in cols] for row in rows]
        acc = [[row] + [f"{fmt_num(a[(row, col)]['mean'])} ± {fmt_num(a[(row, col)]['se'], 2)}" for col in cols]
               for row in rows]
        data = results.get("data") or {}
        lines = [
            f"# {self.title}", "",
            f"Preset `{results.get('preset')}`, config hash `{results['config_hash']}`"
            + ("" if results.get("complete", True) else " — **incomplete run: only the finished folds are counted**"),
            "",
            "Each cell: our macro precision ± SE / macro recall ± SE (the paper's P/R). **The data differ**: the "
            "paper classifies ~13,500 private web sessions into four user intents; this run uses "
            + (f"`{data.get('source')}`." if cfg.input else "ISCX-URL-2016 (four URL types, one URL per example)."),
            "",
            markdown_table(["conv \\ fc"] + cols, body), "",
            "Accuracy ± SE:", "", markdown_table(["conv \\ fc"] + cols, acc), "",
            f"Standard error: {results['se_covers']}.", "",
            "## Data", "",
            f"- classes: {', '.join(data.get('classes', []))}; sessions per class after dedup and sampling: "
            f"{data.get('counts')}",
        ]
        rep = data.get("load_report") or {}
        if rep:
            lines.append(f"- read {rep.get('rows')} rows; left out: {rep.get('problems')}; malformed URLs dropped "
                         f"inside sessions: {rep.get('bad_urls')}; sessions cut to {cfg.max_session}: {rep.get('truncated')}")
            lines += [f"- {step}" for step in rep.get("steps", [])]
        conf = results.get("confusion") or {}
        first = cell_id(rows[0], cols[0]) if rows and cols else ""
        if first in conf:
            names = data.get("classes") or [str(i) for i in range(len(conf[first]))]
            lines += ["", f"Confusion matrix of {rows[0]}/{cols[0]}, summed over the test folds (rows true, columns "
                      "predicted; every cell's is in results.json):", "",
                      markdown_table(["true \\ predicted"] + names,
                                     [[n] + [str(v) for v in row] for n, row in zip(names, conf[first])])]
        lines += ["", "## Choices", ""] + [f"- {k}: {v}" for k, v in results.get("choices", {}).items()]
        return "\n".join(lines) + "\n"


register(Table4())
