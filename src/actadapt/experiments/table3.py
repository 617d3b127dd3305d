"""Table 3 and Figure 8: Kim's text CNN with adaptive activations on movie reviews (PAPER.md §2.3).

Rows are the activation of the convolutional layers, columns that of the fully connected hidden layer
(ReLU, AReLU, AGumb each). The data (sentence polarity v1.0 by default, Kim's MR) is split into ``folds``
stratified, seeded folds; one task trains one (conv, fc) cell on one fold and writes one JSON record with
the held-out accuracy, the per-epoch training/validation/test error curves (Figure 8), the fitted alphas
and the vocabulary coverage of the word vectors.

As in Kim's code, ``dev_fraction`` of each training fold is held out as a validation set; the reported
accuracy is the test-fold accuracy at the epoch of the best validation accuracy (``select=best_dev``) or
after the last epoch (``select=last``); every record holds both.

All cells of one fold share the split, the initial weights (drawn from a seed of the fold, before any
alpha) and the minibatch order: the columns and rows are paired comparisons.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from dataclasses import dataclass
from typing import Dict, List

from .config import ConfigError, option
from .grid import fold_grid_tasks, record_path
from .registry import Experiment, Task, register
from .report import (
    RESULTS_FORMAT,
    cell_stats,
    choices_and_figures_markdown,
    figure_saver,
    finite_tensor,
    fmt_num,
    markdown_table,
    mean_se,
    plottable,
)
from .runner import read_records, write_record, write_text
from .table1 import stable_seed

__all__ = ["Table3Config", "Table3", "PAPER_TABLE3", "KIM_CNN_STATIC_MR"]

# PAPER.md §2.3, accuracy in %: conv activation -> fc activation -> value
PAPER_TABLE3 = {
    "ReLU": {"ReLU": 79.1, "AReLU": 79.1, "AGumb": 78.9},
    "AReLU": {"ReLU": 78.9, "AReLU": 78.5, "AGumb": 79.3},
    "AGumb": {"ReLU": 52.3, "AReLU": 77.4, "AGumb": 78.7},
}
PAPER_MAX_SE = 0.17
KIM_CNN_STATIC_MR = 81.0  # Kim (2014), Table 2, CNN-static on MR (10-fold CV, full Google News vectors)
GRID = ("ReLU", "AReLU", "AGumb")
CHOICES = ("ReLU", "AReLU", "AGumb", "Sig", "Swish")


# Kim's unknown-word range a = 0.25 was chosen to match the variance of the (full) Google News vectors:
# a per-component standard deviation of a / sqrt(3).
KIM_VECTORS_STD = round(0.25 / 3 ** 0.5, 4)


@dataclass
class Table3Config:
    """The settings of Table 3. Defaults are the paper's (after Kim's CNN-static); see ``help`` of each."""

    seed: int = option(0, help="base seed; folds, dev split, unknown-word vectors, init, dropout, batches derive from it")
    data_dir: str = option("", help="data root holding movie-review/ and word-vectors/ (--data-dir or $ACTADAPT_DATA)")
    dataset: str = option("polarity-v1", choices=("polarity-v1", "polarity-v2"),
                          help="sentence polarity v1.0 (Kim's MR, 10,662 snippets) or polarity v2.0 (2,000 reviews)")
    max_examples: int = option(0, min=0, help="use a stratified random subset of this many documents (0: all)")
    max_len: int = option(0, min=0, help="cut documents to this many tokens (0: no cut; useful for polarity-v2)")
    vectors: str = option("word2vec", choices=("word2vec", "glove"),
                          help="word2vec: Google News 300-d (Bolukbasi subset, binary); glove: GloVe 6B 50-d (text)")
    vectors_file: str = option("", help="another vectors file (absolute, or under <data root>/word-vectors/)")
    vectors_format: str = option("auto", choices=("auto", "word2vec-binary", "word2vec-text", "glove"),
                                 help="format of the vectors file (auto: from the first line and the .bin suffix)")
    vectors_std: float = option(-1.0, min=-1.0,
                                help="rescale the known vectors to this component std before use; 0: as in the file; "
                                     "-1 (auto): 0.144 (Kim's U[-0.25, 0.25], the full Google News vectors' scale) "
                                     "for the default Google News subset, which is unit-normalised (0.058), and "
                                     "the file's own scale for any other vectors")
    unknown_range: float = option(0.0, min=0.0, help="unknown words ~ U[-a, a]; 0: a matches the known vectors' variance (Kim)")
    static: bool = option(True, help="frozen embeddings (CNN-static, the paper) or fine-tuned (CNN-non-static)")
    folds: int = option(5, min=2, help="stratified cross-validation folds (paper: 5)")
    dev_fraction: float = option(0.1, min=0.0, help="share of each training fold held out for validation (Kim: 0.1)")
    select: str = option("best_dev", choices=("best_dev", "last"),
                         help="report the test accuracy at the best validation epoch (Kim) or after the last epoch")
    epochs: int = option(50, min=1, help="training epochs (paper: 50)")
    batch_size: int = option(50, min=1, help="minibatch size (paper, Kim: 50)")
    optimizer: str = option("adadelta", choices=("adadelta", "sgd"),
                            help="adadelta (Kim's; lr scales its step) or plain sgd (the paper's eqs. 4-6)")
    lr: float = option(1.0, min=0.0, help="learning rate (paper: 0.05, read as an SGD step; Kim's Adadelta: 1.0)")
    momentum: float = option(0.0, min=0.0, help="SGD momentum (optimizer=sgd only)")
    max_norm: float = option(3.0, min=0.0, help="Kim's max-norm of each FC unit's weight vector (0: off)")
    dropout: float = option(0.5, min=0.0, help="dropout before each linear layer (paper, Kim: 0.5)")
    widths: List[int] = option([3, 4, 5], min=1, help="filter widths (paper, Kim: 3, 4, 5)")
    maps: int = option(100, min=1, help="feature maps per width (paper, Kim: 100)")
    hidden: int = option(100, min=0, help="FC hidden neurons (paper: 100; 0: Kim's original, no hidden layer)")
    conv_acts: List[str] = option(list(GRID), choices=CHOICES, help="rows: activations of the conv layers")
    fc_acts: List[str] = option(list(GRID), choices=CHOICES, help="columns: activations of the FC hidden layer")
    alpha_init: float = option(1.0, min=1e-6, help="initial alpha of the adaptive activations")
    bucket: bool = option(False, help="batch sentences of similar length (less padding, faster; Kim: random batches)")
    backend: str = option("auto", choices=("auto", "native", "compile", "eager"),
                          help="actadapt backend in the workers (auto: the fused C++ kernel on CPU)")
    threads: int = option(1, min=1, help="torch threads per worker process")

    def validate(self) -> None:
        if self.dropout >= 1.0:
            raise ConfigError(f"config key 'dropout': expected a rate in [0, 1), got {self.dropout}")
        if self.dev_fraction >= 0.5:
            raise ConfigError(f"config key 'dev_fraction': expected a share in [0, 0.5), got {self.dev_fraction}")
        if self.select == "best_dev" and self.dev_fraction <= 0:
            raise ConfigError("config key 'select': best_dev needs dev_fraction > 0 (or set select=last)")
        if self.max_examples and self.max_examples < 4 * self.folds:
            raise ConfigError(f"config key 'max_examples': expected 0 (all) or at least 4 x folds = {4 * self.folds}, "
                              f"got {self.max_examples}")
        if len(set(self.conv_acts)) != len(self.conv_acts) or len(set(self.fc_acts)) != len(self.fc_acts):
            raise ConfigError("config keys 'conv_acts'/'fc_acts': expected no repeated names")
        if self.momentum and self.optimizer != "sgd":
            raise ConfigError("config key 'momentum': only used with optimizer=sgd")
        if self.vectors_std < 0 and self.vectors_std != -1.0:
            raise ConfigError(f"config key 'vectors_std': expected -1 (auto), 0 (as in the file) or a positive std, "
                              f"got {self.vectors_std}")

    def effective_vectors_std(self) -> float:
        """The component std the known vectors are rescaled to (0: none); resolves -1 (auto)."""
        if self.vectors_std != -1.0:
            return self.vectors_std
        return KIM_VECTORS_STD if self.vectors == "word2vec" and not self.vectors_file else 0.0


PRESETS = {
    # seconds: plumbing only (a small subset, narrow layers, one epoch)
    "smoke": {"max_examples": 300, "epochs": 1, "maps": 8, "hidden": 8, "bucket": True},
    # the whole 3x3 grid over 5 folds on all 10,662 snippets: 135 model-epochs of 5-9 s on one core
    # (11 minutes with --workers 2 on 2 idle cores)
    "quick": {"epochs": 3, "bucket": True},
    # the paper's sizes: 50 epochs, random batches (2,250 model-epochs: about 6-10 CPU-hours here)
    "paper": {"epochs": 50},
}


@functools.lru_cache(maxsize=2)
def _prepared(root: str, dataset: str, max_examples: int, max_len: int, vectors: str, vectors_file: str,
              vectors_format: str, unknown_range: float, vectors_std: float, folds: int, seed: int) -> Dict:
    """Tokenised data, vocabulary, embedding matrix, coverage and folds (kept per worker process)."""
    import numpy as np

    from .moviereview import build_vocab, encode, load_movie_reviews, stratified_folds, stratified_subset
    from .wordvectors import load_embeddings

    data = load_movie_reviews(root, dataset)
    docs, labels = data.docs, data.labels
    sub = stratified_subset(labels, max_examples, stable_seed(seed, "subset"))
    if sub is not None:
        docs, labels = [docs[i] for i in sub], [labels[i] for i in sub]
    index, counts = build_vocab(docs)
    matrix, coverage = load_embeddings(root, index, counts, vectors, vectors_file, vectors_format,
                                       seed=stable_seed(seed, "unknown-words") % (2**32), unknown_range=unknown_range,
                                       target_std=vectors_std)
    seqs = encode(docs, index, max_len)
    lengths = np.array([len(s) for s in seqs])
    return {
        "seqs": seqs,
        "labels": np.asarray(labels, dtype=np.int64),
        "matrix": matrix,
        "coverage": coverage,
        "folds": stratified_folds(labels, folds, stable_seed(seed, "folds"), data.class_files),
        "data": {
            "dataset": dataset, "documents": len(seqs), "positive": int(sum(labels)),
            "sources": [os.path.basename(p) for p in data.sources],
            "mean_tokens": float(lengths.mean()), "max_tokens": int(lengths.max()),
            "empty_documents": int((lengths == 0).sum()),
        },
    }


class Table3(Experiment):
    name = "table3"
    title = "Table 3: text CNN on movie reviews (accuracy %, rows conv, columns FC activation)"
    config_class = Table3Config
    presets = PRESETS
    needs_data = True

    def memory_estimate(self, cfg: Table3Config):
        """Peak memory of one task in bytes (25% slack): the documents as token lists (60 MB for polarity
        v1.0, 150 MB for v2.0); the vectors file as gensim reads it (2x its size, 8x for gzip text); the
        embedding matrix of up to 50,000 types x ``D`` (300, or 50 for GloVe) floats, x2 (numpy and torch),
        x4 when fine-tuned (gradient, two Adadelta states); the CNN's parameters x4; a training batch's
        activations (``12 batch L (D + maps widths)`` bytes, the word projection capped at
        ``KimCNN.max_projection``) and an evaluation batch of 500 (``4 x 500 L (D + 2 maps widths)``), ``L``
        the tokens of a document (``max_len``, else 60 for v1.0 and 2,700 for v2.0) plus padding."""
        from .resources import MemoryEstimate
        from .textcnn import KimCNN
        from .wordvectors import vectors_path

        path, _ = vectors_path(cfg.data_dir or ".", cfg.vectors, cfg.vectors_file)
        try:
            with open(path, "rb") as fh:
                vec_bytes = os.path.getsize(path) * (8 if fh.read(2) == b"\x1f\x8b" else 2)
        except OSError:
            vec_bytes = 0  # missing: the loader says so with one line
        v1 = cfg.dataset == "polarity-v1"
        dim = 50 if cfg.vectors == "glove" and not cfg.vectors_file else 300
        L = (cfg.max_len or (60 if v1 else 2700)) + 2 * max(cfg.widths)
        conv = cfg.maps * sum(cfg.widths)
        pooled = cfg.maps * len(cfg.widths)
        params = dim * conv + pooled * max(cfg.hidden, 1) + 2 * max(cfg.hidden, pooled)
        cap = 4 * KimCNN.max_projection
        train = 12 * cfg.batch_size * L * (dim + pooled) + 3 * min(4 * cfg.batch_size * L * conv, cap)
        evaluate = 4 * 500 * L * (dim + 2 * pooled) + min(4 * 500 * L * conv, cap)
        total = ((60 if v1 else 150) * 2**20 + vec_bytes + 50_000 * dim * 4 * (2 if cfg.static else 4)
                 + 16 * params + train + evaluate)
        return MemoryEstimate(total * 5 // 4, f"text CNN with {cfg.maps} maps x widths {cfg.widths}, "
                                              f"hidden {cfg.hidden}, batch_size {cfg.batch_size}, {L} tokens "
                                              "per document")

    # ------------------------------------------------------------------------------------ tasks
    def tasks(self, cfg: Table3Config) -> List[Task]:
        return fold_grid_tasks(cfg.folds, cfg.conv_acts, cfg.fc_acts, cfg.epochs)

    def prepared(self, cfg: Table3Config) -> Dict:
        return _prepared(cfg.data_dir, cfg.dataset, cfg.max_examples, cfg.max_len, cfg.vectors, cfg.vectors_file,
                         cfg.vectors_format, cfg.unknown_range, cfg.effective_vectors_std(), cfg.folds, cfg.seed)

    def split(self, cfg: Table3Config, fold: int):
        """``(train_idx, dev_idx, test_idx)`` of ``fold``: the dev set is a stratified share of the training fold."""
        import numpy as np
        from sklearn.model_selection import train_test_split

        prep = self.prepared(cfg)
        tr, te = prep["folds"][fold]
        if cfg.dev_fraction <= 0:
            return tr, np.zeros(0, dtype=np.int64), te
        tr, dv = train_test_split(tr, test_size=cfg.dev_fraction, stratify=prep["labels"][tr],
                                  random_state=stable_seed(cfg.seed, "dev", fold) % (2**32))
        return np.sort(tr), np.sort(dv), te

    def run_task(self, cfg: Table3Config, task: Task, run_dir: str, progress=None) -> None:
        import math

        import torch

        from ..inspect import alpha_dict
        from .config import config_hash
        from .runner import hashed_config
        from .textcnn import KimCNN, TrainSettings, train_textcnn

        conv, fc, fold = task.params["conv"], task.params["fc"], task.params["fold"]
        prep = self.prepared(cfg)
        tr, dv, te = self.split(cfg, fold)
        seqs, labels = prep["seqs"], prep["labels"]

        def part(idx):
            return [seqs[i] for i in idx], labels[idx]

        model = KimCNN(torch.from_numpy(prep["matrix"]), cfg.widths, cfg.maps, cfg.hidden, 2, conv, fc,
                       cfg.dropout, cfg.static, cfg.alpha_init)
        # the same initial weights for every cell of this fold (the alphas start at alpha_init)
        model.reset_parameters(torch.Generator().manual_seed(stable_seed(cfg.seed, "init", fold) % (2**63)))
        torch.manual_seed(stable_seed(cfg.seed, "dropout", fold) % (2**63))
        settings = TrainSettings(
            epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer=cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum,
            max_norm=cfg.max_norm, bucket=cfg.bucket,
        )
        res = train_textcnn(model, part(tr), part(dv), part(te), settings,
                            shuffle_seed=stable_seed(cfg.seed, "shuffle", fold) % (2**63), progress=progress)
        finite_dev = [(e, i) for i, e in enumerate(res.dev_error) if not math.isnan(e)]
        best = min(finite_dev)[1] if finite_dev else len(res.test_error) - 1  # earliest epoch of the lowest dev error
        last = len(res.test_error) - 1
        pick = best if cfg.select == "best_dev" else last
        y_tr = labels[tr]
        majority = int(y_tr.mean() > 0.5)
        alphas = {name: [float(a) for a in t.reshape(-1)] for name, t in alpha_dict(model).items()}
        record = {
            "table": self.name, "conv": conv, "fc": fc, "fold": fold, "draw": 0,
            "row": conv, "column": fc,
            "accuracy": 1.0 - res.test_error[pick],
            "accuracy_last": 1.0 - res.test_error[last],
            "accuracy_best_dev": 1.0 - res.test_error[best],
            "best_dev_epoch": res.epochs[best] if res.epochs else None,
            "selected_epoch": res.epochs[pick] if res.epochs else None,
            "dev_accuracy_best": None if not finite_dev else 1.0 - res.dev_error[best],
            "diverged": res.diverged_epoch is not None, "diverged_epoch": res.diverged_epoch,
            "majority_rate": float((labels[te] == majority).mean()),
            "n_train": len(tr), "n_dev": len(dv), "n_test": len(te),
            "curve_epochs": res.epochs, "train_loss": res.train_loss, "train_error": res.train_error,
            "dev_error": res.dev_error, "test_error": res.test_error,
            "alphas": alphas, "coverage": prep["coverage"], "data": prep["data"],
            "seconds": res.seconds, "threads": torch.get_num_threads(),
        }
        write_record(run_dir, record_path(conv, fc, fold), record, config_hash(hashed_config(cfg)))

    # ---------------------------------------------------------------------------------- results
    def records(self, cfg: Table3Config, run_dir: str) -> List[Dict]:
        return read_records(run_dir, cfg, (record_path(conv, fc, k) for conv in cfg.conv_acts
                                           for fc in cfg.fc_acts for k in range(cfg.folds)))

    def summarize(self, cfg: Table3Config, run_dir: str) -> Dict:
        from .config import config_hash
        from .runner import hashed_config

        recs = self.records(cfg, run_dir)
        self._write_folds_csv(recs, run_dir)
        cells, cells_last = [], []
        for conv in cfg.conv_acts:
            for fc in cfg.fc_acts:
                mine = [r for r in recs if r["conv"] == conv and r["fc"] == fc]
                paper = PAPER_TABLE3.get(conv, {}).get(fc)
                final_train = [r["train_error"][-1] for r in mine if r["train_error"]]
                cells.append({"row": conv, "column": fc, **cell_stats(mine, paper=paper),
                              "diverged_folds": sum(bool(r.get("diverged")) for r in mine),
                              "final_train_error": 100 * mean_se(final_train)[0] if final_train else None})
                cells_last.append({"row": conv, "column": fc, **cell_stats(mine, key="accuracy_last", paper=paper)})
        first = recs[0] if recs else {}
        seconds = [r["seconds"] for r in recs]
        return {
            "format": RESULTS_FORMAT,
            "table": self.name,
            "title": self.title,
            "config_hash": config_hash(hashed_config(cfg)),
            "metric": "accuracy",
            "unit": "%",
            "rows": list(cfg.conv_acts),
            "columns": list(cfg.fc_acts),
            "se_covers": f"folds: standard error over the {cfg.folds} cross-validation folds (the paper's kind, max "
                         f"{PAPER_MAX_SE})",
            "cells": cells,
            "cells_last_epoch": cells_last,
            "kim_cnn_static_mr": KIM_CNN_STATIC_MR,
            "coverage": first.get("coverage"),
            "data": first.get("data"),
            "train_seconds": {"total": sum(seconds), "per_model_mean": mean_se(seconds)[0] if seconds else None,
                              "models": len(seconds)},
            "choices": self.choices(cfg),
        }

    @staticmethod
    def choices(cfg: Table3Config) -> Dict[str, str]:
        vectors_std = cfg.effective_vectors_std()
        opt = (
            f"Adadelta (Kim's optimiser: rho 0.95, eps 1e-6, lr {cfg.lr:g}). The paper gives lr 0.05 and describes "
            "plain gradient steps (eqs. 4-6), but also says it keeps Kim's hyper-parameters, and Kim trains with "
            "Adadelta. Plain SGD at lr 0.05 barely moves this network: on fold 0 (ReLU/ReLU) its test error was "
            "36.5% after 4 epochs where Adadelta's was 23.3%, so the 0.05 is read as a setting of some other "
            "optimiser and the presets use Kim's; `--set optimizer=sgd --set lr=0.05` runs the literal reading"
            if cfg.optimizer == "adadelta"
            else f"plain SGD, lr {cfg.lr:g}" + (f", momentum {cfg.momentum:g}" if cfg.momentum else "")
            + " (the paper's lr and eqs. 4-6)"
        )
        return {
            "data": {"polarity-v1": "sentence polarity v1.0 (Kim's MR: 10,662 snippets, 5,331 per class), "
                                    "as the paper says it uses Kim's data",
                     "polarity-v2": "polarity v2.0 (2,000 full reviews), the set the paper's text names"}[cfg.dataset]
            + (f"; a stratified subset of {cfg.max_examples}" if cfg.max_examples else "")
            + (f"; documents cut to {cfg.max_len} tokens" if cfg.max_len else ""),
            "pre-processing": "Kim's clean_str re-implemented (ASCII letters/digits and ( ) , ! ? ' ` kept, clitics "
                              "split, lower case); vocabulary over the whole data set (min count 1), as Kim",
            "word vectors": {"word2vec": "Google News word2vec 300-d, the Bolukbasi et al. subset (26,423 words, "
                                         "unit-normalised; the paper used the full 3M-word file)",
                             "glove": "GloVe 6B 50-d, the 100,000 most frequent words"}[cfg.vectors]
            + (f" (file {cfg.vectors_file})" if cfg.vectors_file else "")
            + ("; frozen (CNN-static)" if cfg.static else "; fine-tuned (CNN-non-static)")
            + (f"; rescaled to component std {vectors_std:g}"
               + (" (Kim's 0.25/sqrt(3), the full Google News vectors' scale; at the subset's unit norm every "
                  "pre-activation is 2.5x smaller and the adaptive ReLU, ~alpha x^2 near 0, hardly learns in the "
                  "first epochs)" if vectors_std == KIM_VECTORS_STD else "")
               if vectors_std else "; at the file's own scale"),
            "unknown words": "uniform on [-a, a], a = sqrt(3 x variance of the known vectors' components) (Kim's rule"
                             "; his code fixes a = 0.25)" if not cfg.unknown_range
            else f"uniform on [-{cfg.unknown_range:g}, {cfg.unknown_range:g}]",
            "model": f"widths {', '.join(map(str, cfg.widths))} x {cfg.maps} maps, max-over-time pooling, "
            + (f"FC {cfg.hidden} hidden" if cfg.hidden else "no hidden layer (Kim's original)")
            + f", dropout {cfg.dropout:g} before each linear layer, softmax over 2; one alpha per feature map "
              f"(conv) or neuron (FC), alpha_init {cfg.alpha_init:g}; 'two convolutional layers' of the paper's "
              "text read as the conv stage + the FC layer (Kim's design has one conv stage)",
            "initialisation": "Glorot-uniform weights, zero biases (Kim's code); the same draw for every cell of a fold",
            "optimiser": opt,
            "max-norm": f"each FC unit's incoming weight vector rescaled to L2 norm <= {cfg.max_norm:g} after every "
                        "step (Kim)" if cfg.max_norm else "off",
            "folds": f"stratified, shuffled {cfg.folds}-fold cross-validation (seeded); "
                     f"{cfg.dev_fraction:g} of each training fold held out for validation (Kim)",
            "accuracy": {"best_dev": "test-fold accuracy at the epoch of the best validation accuracy (Kim's early "
                                     "stopping); the last-epoch accuracy is reported too",
                         "last": "test-fold accuracy after the last epoch"}[cfg.select],
            "batches": f"batch {cfg.batch_size}, reshuffled every epoch, last partial batch kept"
            + ("; sentences of similar length batched together (chunks of 20 batches sorted by length)" if cfg.bucket else ""),
            "sizes": f"{cfg.epochs} epochs (paper: 50)",
        }

    @staticmethod
    def _write_folds_csv(recs: List[Dict], run_dir: str) -> None:
        buf = io.StringIO()
        cols = ["conv", "fc", "fold", "accuracy", "accuracy_last", "accuracy_best_dev", "best_dev_epoch",
                "majority_rate", "n_train", "n_dev", "n_test", "seconds", "diverged"]
        w = csv.writer(buf)
        w.writerow(cols + ["final_train_loss"])
        for r in sorted(recs, key=lambda r: (r["conv"], r["fc"], r["fold"])):
            w.writerow([r.get(c) for c in cols] + [r["train_loss"][-1] if r["train_loss"] else ""])
        write_text(os.path.join(run_dir, "folds.csv"), buf.getvalue(), root=run_dir)

    # ----------------------------------------------------------------------------------- report
    def report(self, cfg: Table3Config, run_dir: str, results: Dict) -> str:
        figures = self.figures(cfg, run_dir)
        rows, cols = results["rows"], results["columns"]

        def grid(cells_list):
            cells = {(c["row"], c["column"]): c for c in cells_list}
            body = []
            for r in rows:
                body.append([r] + [
                    f"{fmt_num(cells[(r, c)]['mean'])} ± {fmt_num(cells[(r, c)]['se'], 2)} ({fmt_num(cells[(r, c)]['paper'])})"
                    for c in cols
                ])
            return cells, body

        cells, body = grid(results["cells"])
        _, body_last = grid(results["cells_last_epoch"])
        dist = []
        for r in rows:
            dist.append([r] + [
                "n/a" if cells[(r, c)]["diff"] is None
                else f"{cells[(r, c)]['diff']:+.1f} (n/a: SE 0)" if cells[(r, c)]["diff_in_se"] is None
                else f"{cells[(r, c)]['diff']:+.1f} ({cells[(r, c)]['diff_in_se']:+.1f} SE)"
                for c in cols
            ])
        maj = [c["majority_rate"] for c in results["cells"] if c["majority_rate"] is not None]
        cov = results.get("coverage") or {}
        data = results.get("data") or {}
        secs = results.get("train_seconds") or {}
        diverged = [f"{c['row']}/{c['column']} ({c['diverged_folds']})" for c in results["cells"] if c.get("diverged_folds")]
        lines = [
            f"# {self.title}",
            "",
            f"Preset `{results.get('preset')}`, config hash `{results['config_hash']}`"
            + ("" if results.get("complete", True) else " — **incomplete run: only the finished folds are counted**"),
            "",
            "Each cell: our mean test accuracy ± our standard error over folds (the paper's value). Rows: activation "
            "of the convolutional layers; columns: activation of the fully connected hidden layer.",
            "",
            markdown_table(["conv \\ fc"] + cols, body),
            "",
            f"Kim (2014), CNN-static on MR: **{KIM_CNN_STATIC_MR}** (ReLU conv, no hidden layer, full Google News "
            f"vectors, 10-fold CV). Majority-class rate of the test folds: {fmt_num(mean_se(maj)[0]) if maj else 'n/a'}. "
            f"Standard error: {results['se_covers']}.",
            "",
            "Distance from the paper: ours - paper, in points and in our standard errors.",
            "",
            markdown_table(["conv \\ fc"] + cols, dist),
            "",
            "Accuracy after the last epoch (no early stopping), same layout:",
            "",
            markdown_table(["conv \\ fc"] + cols, body_last),
            "",
        ]
        if diverged:
            lines += [f"Diverged (non-finite training loss; curves end early): {', '.join(diverged)} folds.", ""]
        stuck = [f"{c['row']}/{c['column']} ({fmt_num(c['final_train_error'])}%)" for c in results["cells"]
                 if c.get("final_train_error") is not None and c["final_train_error"] > 45.0]
        if stuck:
            lines += [
                f"Not started: the training error of {', '.join(stuck)} was still near 50% in the last epoch "
                f"({cfg.epochs} epochs): these cells had not left chance level, rather than converged to a poor "
                "model (an adaptive activation at alpha = 1 passes small inputs weakly: x(1 - exp(-x)) ~ x^2 for AReLU, "
                "a near-constant 0.5 + x/4 for AGumb, whose 0.5 offset dropout then turns into noise). Measured on fold 0 "
                "(quick settings): AGumb/AReLU stayed at chance for 4 epochs with dropout 0.5 (8 with the vectors at their "
                "unit-norm scale) and left it in epoch 3 with dropout 0; the paper, too, reports AGumb conv with a ReLU FC layer at chance (52.3). Whether they start "
                "with more epochs is for a longer run (the paper preset).",
                "",
            ]
        lines += [
            "## Data and vocabulary coverage",
            "",
            f"- data: {data.get('dataset', 'n/a')}, {data.get('documents', 'n/a')} documents "
            f"({data.get('positive', 'n/a')} positive), {fmt_num(data.get('mean_tokens'))} tokens on average, "
            f"longest {data.get('max_tokens', 'n/a')}; files {', '.join(data.get('sources', []))}",
            f"- vectors: `{os.path.basename(cov.get('vectors', '') or '')}`, {cov.get('dim', 'n/a')}-d, "
            f"{cov.get('vectors_in_file', 'n/a')} words in the file",
            f"- coverage: {cov.get('known_types', 'n/a')} of {cov.get('types', 'n/a')} word types "
            f"(**{fmt_num(100 * cov['type_coverage']) if cov else 'n/a'}%**) and {cov.get('known_tokens', 'n/a')} of "
            f"{cov.get('tokens', 'n/a')} tokens (**{fmt_num(100 * cov['token_coverage']) if cov else 'n/a'}%**) have a "
            "pre-trained vector; the others get random vectors, uniform on "
            f"[-{fmt_num(cov.get('unknown_range'), 3)}, {fmt_num(cov.get('unknown_range'), 3)}] "
            f"(known vectors' component variance {fmt_num(cov.get('known_variance'), 5)}; the file's component std "
            f"{fmt_num(cov.get('file_std'), 4)}, rescaled x{fmt_num(cov.get('rescale'), 3)})",
            f"- training time: {fmt_num(secs.get('total'), 0)} s over {secs.get('models', 0)} models "
            f"({fmt_num(secs.get('per_model_mean'), 0)} s each on average)",
            "",
        ]
        lines += choices_and_figures_markdown(results["choices"], figures, "folds")
        return "\n".join(lines)

    def figures(self, cfg: Table3Config, run_dir: str):
        """Figure 8 (error curves of every cell) and alpha histograms into ``figures/``; ``[(caption, relpath)]``."""
        saver = figure_saver(run_dir)
        recs = plottable(self.records(cfg, run_dir))
        if saver is None or not recs:
            return []
        from ..plot import plot_alpha_histogram

        plt, save, made = saver

        def mean_curve(rs, key):
            n = min(len(r[key]) for r in rs)
            return [100 * sum(r[key][i] for r in rs) / len(rs) for i in range(n)]

        # Figure 8 (right): training and validation error per epoch, one panel per cell, mean over folds
        nr, nc = len(cfg.conv_acts), len(cfg.fc_acts)
        fig, axes = plt.subplots(nr, nc, figsize=(3.4 * nc, 2.7 * nr), squeeze=False, sharex=True, sharey=True)
        for i, conv in enumerate(cfg.conv_acts):
            for j, fc in enumerate(cfg.fc_acts):
                ax = axes[i][j]
                rs = [r for r in recs if r["conv"] == conv and r["fc"] == fc and r["curve_epochs"]]
                if rs:
                    n = min(len(r["curve_epochs"]) for r in rs)
                    ep = rs[0]["curve_epochs"][:n]
                    ax.plot(ep, mean_curve(rs, "train_error"), marker=".", label="training")
                    if cfg.dev_fraction > 0:
                        ax.plot(ep, mean_curve(rs, "dev_error"), marker=".", label="validation")
                    ax.plot(ep, mean_curve(rs, "test_error"), marker=".", label="test fold", linestyle="--")
                ax.set_title(f"conv {conv}, fc {fc}", fontsize=9)
                ax.grid(alpha=0.3)
                if i == nr - 1:
                    ax.set_xlabel("epoch")
                if j == 0:
                    ax.set_ylabel("error %")
        axes[0][0].legend(fontsize=7)
        save(fig, "fig8_error_curves.png", "Figure 8 (right): training, validation and test-fold error per epoch, "
                                           "mean over folds")

        # fitted alphas: conv (all widths' maps) and FC, for each adaptive activation

        hist = {}
        for r in recs:
            for name, vals in (r.get("alphas") or {}).items():
                where = "FC" if name.startswith("fc") else "conv"
                act = r["fc"] if where == "FC" else r["conv"]
                hist.setdefault(f"{act} ({where})", []).extend(vals)
        if hist:
            fig, axes = plt.subplots(1, len(hist), figsize=(4.2 * len(hist), 3.2), squeeze=False)
            for ax, (label, vals) in zip(axes[0], sorted(hist.items())):
                plot_alpha_histogram({label: finite_tensor(vals)}, ax=ax)
                ax.set_title(label, fontsize=9)
            save(fig, "alpha_histograms.png", "Fitted alpha of the adaptive layers, all cells and folds")
        return made


register(Table3())
