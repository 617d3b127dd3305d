"""Table 3 and Figure 8: Kim's text CNN with adaptive activations on movie reviews (PAPER.md §2.3).

Rows are the activation of the conv layers, columns that of the FC hidden layer. The data (sentence polarity
v1.0 by default, Kim's MR: :func:`..data.moviereview.prepare_reviews`) is split into ``folds`` stratified,
seeded folds, with ``dev_fraction`` of each training fold held out as Kim's validation set. One task trains
one cell on one fold (:func:`..models.textcnn.train_textcnn`); its record holds the test-fold accuracy at the
epoch of the best validation accuracy (``select=best_dev``) and after the last epoch (``select=last``), the
error curves (Figure 8), the fitted alphas and the vocabulary coverage of the word vectors. All cells of a
fold share the split, the initial weights and the minibatch order: rows and columns are paired comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

from ..config import ConfigError, option
from ..data.moviereview import ReviewKeys
from ..grid import GridConfig, GridExperiment
from ..models.textcnn import KimCNNKeys
from ..registry import register
from ..report import fmt_num, mean_se
from ..seeds import stable_seed

__all__ = ["Table3Config", "Table3", "PAPER_TABLE3", "KIM_CNN_STATIC_MR"]

# PAPER.md §2.3, accuracy in %: conv activation -> fc activation -> value
PAPER_TABLE3 = {
    "ReLU": {"ReLU": 79.1, "AReLU": 79.1, "AGumb": 78.9},
    "AReLU": {"ReLU": 78.9, "AReLU": 78.5, "AGumb": 79.3},
    "AGumb": {"ReLU": 52.3, "AReLU": 77.4, "AGumb": 78.7},
}
PAPER_MAX_SE = 0.17
KIM_CNN_STATIC_MR = 81.0  # Kim (2014), Table 2, CNN-static on MR (10-fold CV, full Google News vectors)


@dataclass
class Table3Config(KimCNNKeys, ReviewKeys, GridConfig):
    """The settings of Table 3: the data's keys (:class:`..data.moviereview.ReviewKeys`), the model's
    (:class:`..models.textcnn.KimCNNKeys`) and these. Defaults are the paper's (after Kim's CNN-static)."""

    FORMER_DEFAULTS = {"backend": "auto"}
    #: dropout acted before both linear layers until issue 15 showed the AGumb conv / AReLU FC cell stuck at chance
    #: with it; run folders written then (no dropout_at in their config.json) read and resume as that
    CHANGED_DEFAULTS = {"dropout_at": "linear"}

    data_dir: str = option("", help="data root holding movie-review/ and word-vectors/ (--data-dir or $ACTADAPT_DATA)")
    folds: int = option(5, min=2, help="stratified cross-validation folds (paper: 5)")
    select: str = option("best_dev", choices=("best_dev", "last"),
                         help="report the test accuracy at the best validation epoch (Kim) or after the last epoch")

    def validate(self) -> None:
        super().validate()
        if self.select == "best_dev" and self.dev_fraction <= 0:
            raise ConfigError("config key 'select': best_dev needs dev_fraction > 0 (or set select=last)")
        if self.max_examples and self.max_examples < 4 * self.folds:
            raise ConfigError(f"config key 'max_examples': expected 0 (all) or at least 4 x folds = {4 * self.folds}, "
                              f"got {self.max_examples}")


PRESETS = {
    # seconds: plumbing only (a small subset, narrow layers, one epoch)
    "smoke": {"max_examples": 300, "epochs": 1, "maps": 8, "hidden": 8, "bucket": True},
    # the whole 3x3 grid over 5 folds on all 10,662 snippets: 135 model-epochs of 5-9 s on one core
    # (11 minutes with --workers 2 on 2 idle cores)
    "quick": {"epochs": 3, "bucket": True},
    # decides the AGumb conv row's comparisons at the paper's 50 epochs (docs/REPRODUCTION.md): the cells that stay at
    # chance at quick's 3 epochs against its row's fixed FC cell. Measured: 2,396 s with --workers 2 on 2 cores
    # (load average 2-3; 3,166 s at load 4-5 with dropout before both linear layers, the default then)
    "study": {"epochs": 50, "bucket": True, "conv_acts": ["AGumb"]},
    # the paper's sizes: 50 epochs, random batches (2,250 model-epochs: about 6-10 CPU-hours here)
    "paper": {"epochs": 50},
}


class Table3(GridExperiment):
    name = "table3"
    title = "Table 3: text CNN on movie reviews (accuracy %, rows conv, columns FC activation)"
    config_class = Table3Config
    presets = PRESETS
    paper = PAPER_TABLE3
    extra_grids = {"cells_last_epoch": "accuracy_last"}
    extra_tables = {"cells_last_epoch": "Accuracy after the last epoch (no early stopping), same layout:"}
    csv_columns = ("accuracy", "accuracy_last", "accuracy_best_dev", "best_dev_epoch", "majority_rate", "n_train",
                   "n_dev", "n_test", "seconds", "diverged")
    paired_units = ("fold: the cells of a fold share its train/validation/test split, their initial weights (one seed per "
                    "fold), their dropout seed and their minibatch order")
    curve_file = ("fig8_error_curves.png", "Figure 8 (right): training, validation and test-fold error per epoch, "
                                           "mean over folds")
    alpha_layers = {"conv_acts": ("conv", "conv"), "fc_act": ("FC", "fc")}
    stuck_reason = ("An adaptive activation at alpha = 1 passes small inputs weakly: x(1 - exp(-x)) ~ x^2 for AReLU, a "
                    "near-constant 0.5 + x/4 for AGumb, so an AGumb conv layer starts from nearly constant features. At "
                    "quick's 3 epochs the AGumb row stays at chance whatever the FC activation (the training loss at "
                    "log 2 in every fold). At the paper's 50 epochs (study preset, 5 folds) AGumb/AReLU and AGumb/AGumb "
                    "learn (78.6 and 78.3; paper 77.4, 78.7) and AGumb/ReLU stays at chance, as the paper's 52.3 does. "
                    "With dropout before both linear layers (dropout_at=linear, the default before issue 15) "
                    "AGumb/AReLU stayed at chance in all 5 folds of the study run instead; docs/REPRODUCTION.md has every "
                    "reading tried.")

    def memory_estimate(self, cfg: Table3Config):
        """Peak memory of one task in bytes (25% slack): the documents as token lists (60 MB for polarity v1.0,
        150 MB for v2.0), the vectors file as gensim reads it and the model's training
        (:func:`..models.textcnn.training_memory`) on ``max_len`` tokens (else 60 for v1.0, 2,700 for v2.0)."""
        from ..data.wordvectors import reading_memory
        from ..models.textcnn import training_memory
        from ..resources import MemoryEstimate

        v1 = cfg.dataset == "polarity-v1"
        tokens = cfg.max_len or (60 if v1 else 2700)
        total = (60 if v1 else 150) * 2**20 + reading_memory(cfg.data_dir, cfg.vectors, cfg.vectors_file) + training_memory(
            50 if cfg.vectors == "glove" and not cfg.vectors_file else 300, cfg.widths, cfg.maps, cfg.hidden,
            cfg.batch_size, tokens, cfg.static)
        return MemoryEstimate(total * 5 // 4, f"text CNN with {cfg.maps} maps x widths {cfg.widths}, hidden "
                                              f"{cfg.hidden}, batch_size {cfg.batch_size}, {tokens + 2 * max(cfg.widths)} "
                                              "tokens per document")

    # ------------------------------------------------------------------------------------ training
    def train_cell(self, cfg: Table3Config, conv: str, fc: str, fold: int, checkpoint, progress) -> Dict:
        import torch

        from ...inspect import alpha_dict
        from ..loop import best_epoch
        from ..models.textcnn import train_textcnn

        prep = cfg.reviews(cfg.data_dir, cfg.folds, cfg.seed)
        tr, dv, te = prep["splits"][fold]
        seqs, labels = prep["seqs"], prep["labels"]
        model = cfg.kim_model(torch.from_numpy(prep["matrix"]), conv, fc, cfg.alpha_init)
        # the same initial weights for every cell of this fold (the alphas start at alpha_init)
        model.reset_parameters(torch.Generator().manual_seed(stable_seed(cfg.seed, "init", fold) % (2**63)))
        torch.manual_seed(stable_seed(cfg.seed, "dropout", fold) % (2**63))
        res = train_textcnn(model, *(([seqs[i] for i in idx], labels[idx]) for idx in (tr, dv, te)), cfg.kim_settings(),
                            shuffle_seed=stable_seed(cfg.seed, "shuffle", fold) % (2**63), progress=progress,
                            checkpoint=checkpoint)
        last, found = len(res.test_error) - 1, best_epoch(res.dev_error)
        best = last if found is None else found  # no dev set: the last epoch
        pick = best if cfg.select == "best_dev" else last
        majority = int(labels[tr].mean() > 0.5)
        return {
            "accuracy": 1.0 - res.test_error[pick], "accuracy_last": 1.0 - res.test_error[last],
            "accuracy_best_dev": 1.0 - res.test_error[best],
            "best_dev_epoch": res.epochs[best] if res.epochs else None,
            "selected_epoch": res.epochs[pick] if res.epochs else None,
            "dev_accuracy_best": None if found is None else 1.0 - res.dev_error[best],
            "diverged": res.diverged_epoch is not None, "diverged_epoch": res.diverged_epoch,
            "majority_rate": float((labels[te] == majority).mean()),
            "n_train": len(tr), "n_dev": len(dv), "n_test": len(te),
            "curve_epochs": res.epochs, "train_loss": res.train_loss, "train_error": res.train_error,
            "dev_error": res.dev_error, "test_error": res.test_error,
            "alphas": {name: [float(a) for a in t.reshape(-1)] for name, t in alpha_dict(model).items()},
            "coverage": prep["coverage"], "data": prep["data"], "seconds": res.seconds,
            "threads": torch.get_num_threads(),
        }

    # ------------------------------------------------------------------------------------- results
    def se_covers(self, cfg: Table3Config) -> str:
        return super().se_covers(cfg) + f" (the paper's kind, max {PAPER_MAX_SE})"

    def cell_extras(self, cfg: Table3Config, mine: List[Dict]) -> Dict:
        final_train = [r["train_error"][-1] for r in mine if r["train_error"]]
        return {"diverged_folds": sum(bool(r.get("diverged")) for r in mine),
                "final_train_error": 100 * mean_se(final_train)[0] if final_train else None}

    def summary_extras(self, cfg: Table3Config, recs: List[Dict]) -> Dict:
        seconds = [r["seconds"] for r in recs]
        return {"kim_cnn_static_mr": KIM_CNN_STATIC_MR, "coverage": recs[0].get("coverage") if recs else None,
                "data": recs[0].get("data") if recs else None,
                "train_seconds": {"total": sum(seconds), "per_model_mean": mean_se(seconds)[0] if seconds else None,
                                  "models": len(seconds)}}

    def choices(self, cfg: Table3Config) -> Dict[str, str]:
        return {
            **cfg.data_choices(cfg.static), **cfg.kim_choices(cfg.alpha_init),
            "folds": f"stratified, shuffled {cfg.folds}-fold cross-validation (seeded); "
                     f"{cfg.dev_fraction:g} of each training fold held out for validation (Kim)",
            "accuracy": {"best_dev": "test-fold accuracy at the epoch of the best validation accuracy (Kim's early "
                                     "stopping); the last-epoch accuracy is reported too",
                         "last": "test-fold accuracy after the last epoch"}[cfg.select],
            "sizes": f"{cfg.epochs} epochs (paper: 50)",
        }

    # -------------------------------------------------------------------------------------- report
    def report_intro(self, cfg: Table3Config, results: Dict) -> List[str]:
        return ["Each cell: our mean test accuracy ± our standard error over folds (the paper's value). Rows: "
                "activation of the convolutional layers; columns: activation of the fully connected hidden layer. "
                f"Kim (2014), CNN-static on MR: **{KIM_CNN_STATIC_MR}** (ReLU conv, no hidden layer, full Google News "
                "vectors, 10-fold CV)."]

    def report_sections(self, cfg: Table3Config, results: Dict) -> List[str]:
        from ..data.moviereview import describe_data
        from ..data.wordvectors import describe_coverage

        secs = results.get("train_seconds") or {}
        return ["## Data and vocabulary coverage", "", f"- data: {describe_data(results.get('data') or {})}",
                        *(f"- {line}" for line in describe_coverage(results.get("coverage") or {})),
                        f"- training time: {fmt_num(secs.get('total'), 0)} s over {secs.get('models', 0)} models "
                        f"({fmt_num(secs.get('per_model_mean'), 0)} s each on average)", ""]


register(Table3())
