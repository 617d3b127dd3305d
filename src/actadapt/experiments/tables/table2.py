"""Table 2 and Figure 6: LeNet5 with adaptive activations on MNIST (PAPER.md §2.2).

Rows are the activation of the conv layers, columns that of the hidden FC layer (:class:`..models.lenet.LeNet5`).
One task is one cell and repeat: it trains one LeNet5 with SGD (lr 0.01, batch 100, cross-entropy) through
:func:`..loop.train_epochs` and writes one JSON record with the final test accuracy and the per-epoch curves
(training error and loss, validation error and loss, test error) behind Figure 6.

* Data: the standard MNIST files (:mod:`..data.mnist`), held whole in memory as uint8 tensors; a minibatch is
  an index selection scaled to [0, 1]. The last ``val_size`` training images (10,000: the 50k/10k split of the
  Theano LeNet tutorial whose hyper-parameters the paper uses) are held out for the validation curve; the
  test accuracy is on the standard 10,000-image test set after the last epoch (no early stopping).
* Pairing: every cell of a repeat starts from the same weights (same init seed; the activations hold no
  random state) and sees the same minibatch order (one seed per epoch), as Table 1 pairs its students.
* Resume inside a cell: the loop's per-epoch checkpoint; since each epoch's order depends only on the seed
  and the epoch number, a resumed cell ends with the numbers of an uninterrupted run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List

from ..config import option
from ..data.mnist import MnistKeys
from ..grid import GridConfig, GridExperiment
from ..models.lenet import LeNetKeys
from ..registry import register
from ..report import fmt_num, markdown_table
from ..table import csv_float

__all__ = ["Table2Config", "Table2", "PAPER_TABLE2"]

# PAPER.md §2.2, test accuracy in %: conv activation -> fc activation -> value
PAPER_TABLE2 = {
    "ReLU": {"ReLU": 99.1, "AReLU": 98.7, "AGumb": 99.1},
    "AReLU": {"ReLU": 98.8, "AReLU": 98.9, "AGumb": 98.9},
    "AGumb": {"ReLU": 98.7, "AReLU": 98.8, "AGumb": 98.9},
}
CURVES = ("train_error", "train_loss", "val_error", "val_loss", "test_error", "test_loss", "train_seconds")


@dataclass
class Table2Config(LeNetKeys, MnistKeys, GridConfig):
    """The settings of Table 2: the data's keys (:class:`..data.mnist.MnistKeys`), LeNet5's training
    (:class:`..models.lenet.LeNetKeys`) and the repeats. Defaults are the paper's where it gives them."""

    data_dir: str = option("", help="data root holding mnist/, or an MNIST-layout folder itself (default: $ACTADAPT_DATA)")
    repeats: int = option(1, min=1, help="independent seeds per cell (the paper reports one number per cell)")


PRESETS = {
    # seconds: a small subset, used by the tests
    "smoke": {"epochs": 2, "train_size": 400, "val_size": 200, "test_size": 300},
    # the full data, a few epochs per cell: the 3x3 grid in about 20 minutes on 2 idle cores (--workers 2).
    # SGD lr 0.01 as the paper, plus momentum 0.9: with the paper's plain SGD, 3 epochs leave the cells with
    # AGumb in the FC layer at 96-97.7% (sigmoid-like units learn slowly at lr 0.01), still falling; momentum
    # lets every cell reach the paper's regime in 3 epochs. The paper preset keeps plain SGD.
    "quick": {"epochs": 3, "momentum": 0.9},
    # quick's recipe on 3 seeds per cell, so every comparison has 3 paired units and an interval (quick's one seed
    # has none): the most repeats that fit in about an hour. Estimated 50 minutes with --workers 2 on 2 idle
    # cores, from the quick run (/tmp/grid/quick/table2-quick, 2026-11-30): its 9 tasks of 3 epochs took 2,020 s
    # of task time (75 s per model-epoch, the evaluation of 20,000 images included) and 1,051 s of wall time
    # with 2 workers; study has 3x its tasks: 27 x 3 x 75 s / 2 workers = 3,030 s
    "study": {"epochs": 3, "momentum": 0.9, "repeats": 3},
    # the paper's 150 epochs (about 3 CPU-hours per cell; use --workers)
    "paper": {"epochs": 150},
}


def evaluate(model, split, batch: int):
    """``(error, mean loss)`` of ``model`` (eval mode, no grad) on ``split``; ``(None, None)`` if empty."""
    import torch
    import torch.nn.functional as F

    from ..data.mnist import as_float

    n = split.images.shape[0]
    if n == 0:
        return None, None
    model.eval()
    wrong, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, n, batch):
            logits = model(as_float(split.images[i: i + batch]))
            y = split.labels[i: i + batch]
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            wrong += int((logits.argmax(1) != y).sum())
    return wrong / n, loss / n


class Table2(GridExperiment):
    name = "table2"
    title = "Table 2: LeNet5 on MNIST, conv x FC activation (test accuracy %)"
    config_class = Table2Config
    presets = PRESETS
    paper = PAPER_TABLE2
    unit = "repeat"
    digits = 2
    csv_key_columns = ("conv", "fc", "repeat")
    csv_epoch_columns = CURVES
    paired_units = ("repeat (seed): the cells of a repeat train on the same images from the same initial weights "
                    "(one init seed per repeat) in the same minibatch order (one seed per repeat and epoch), and are "
                    "tested on the same 10,000 test images")

    def task_id(self, conv: str, fc: str, k: int) -> str:
        return f"{conv}__{fc}__r{k}"

    def record_path(self, conv: str, fc: str, k: int) -> str:
        return os.path.join("cells", self.task_id(conv, fc, k) + ".json")

    def csv_metric(self, row, metric: str):
        """``accuracy`` from folds.csv: 1 - the test error of the record's last epoch (the CSV's row for it). The
        CSV has no majority-class rate, so its units never count as at chance level (:mod:`..paired`)."""
        if metric != "accuracy":
            return super().csv_metric(row, metric)
        error = csv_float(row["test_error"])
        return None if error is None else 1.0 - error

    def memory_estimate(self, cfg: Table2Config):
        """Peak memory of one task in bytes (25% slack), for ``N`` images of ``H x W`` pixels (read from the
        IDX headers; MNIST's 70,000 28x28 when the files cannot be read yet), ``s = H W / 784``: the images
        held whole, x3 while a gzip file is decompressed and copied; LeNet5's ``0.05 + 0.8 s`` M parameters
        x 4 bytes x 5 (weights, gradients, momentum, two state_dict copies for the checkpoint); per training
        image ``0.4 s`` MB of saved activations (conv maps, BN, activation, pooling), per evaluated image
        ``0.15 s`` MB."""
        from ..data.mnist import idx_sizes
        from ..resources import MemoryEstimate

        images, pixels = idx_sizes(cfg.data_root()) or (70_000, 784)
        scale = pixels / 784
        evaluated = min(cfg.eval_batch, images)
        total = (3 * images * pixels + 20 * (50_000 + 800_000 * scale)
                 + (cfg.batch_size * 400_000 + evaluated * 150_000) * scale)
        detail = (f"LeNet5 on {images} images of {pixels} pixels, batch_size {cfg.batch_size}, "
                  f"eval_batch {cfg.eval_batch}")
        return MemoryEstimate(int(total) * 5 // 4, detail)

    def train_cell(self, cfg: Table2Config, conv: str, fc: str, rep: int, checkpoint, progress) -> Dict:
        import torch

        from ... import get_backend
        from ...inspect import alpha_dict
        from ..data.mnist import as_float
        from ..loop import best_epoch, train_epochs
        from ..models.lenet import LeNet5
        from ..seeds import stable_seed

        train, val, test = cfg.splits(cfg.data_root())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stable_seed("table2", cfg.seed, "init", rep))  # one start for every cell of a repeat
            model = LeNet5(conv, fc, image_size=tuple(train.images.shape[1:]), alpha_init=cfg.alpha_init)
        opt = cfg.lenet_optimizer(model)
        n = train.images.shape[0]

        def batches(epoch: int):  # each epoch's order from its own seed: the same in every cell of a repeat
            gen = torch.Generator().manual_seed(stable_seed("table2", cfg.seed, "order", rep, epoch) % 2**63)
            perm = torch.randperm(n, generator=gen)
            return (perm[:-1] if n % cfg.batch_size == 1 else perm).split(cfg.batch_size)  # BN: no batch of one

        def scores(m) -> Dict:
            (val_error, val_loss), (test_error, test_loss) = (evaluate(m, s, cfg.eval_batch) for s in (val, test))
            return {"val_error": val_error, "val_loss": val_loss, "test_error": test_error, "test_loss": test_loss}

        hist, diverged_epoch = train_epochs(
            model, opt, batches, lambda idx: (as_float(train.images[idx]), train.labels[idx]), epochs=cfg.epochs,
            evaluate=scores, loss_dtype=torch.float32, checkpoint=checkpoint, progress=progress)
        counts = torch.bincount(test.labels, minlength=10)
        best = best_epoch(hist["val_error"])
        return {
            "accuracy": 1.0 - hist["test_error"][-1],
            "majority_rate": float(counts.max()) / float(counts.sum()),
            "best_val_error": None if best is None else hist["val_error"][best],
            "best_val_epoch": None if best is None else hist["epochs"][best],
            "n_train": n, "n_val": int(val.images.shape[0]), "n_test": int(test.images.shape[0]),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "backend": get_backend(), "threads": torch.get_num_threads(),
            **hist, "alphas": {name: a.tolist() for name, a in alpha_dict(model).items()},
            "diverged": diverged_epoch is not None, "diverged_epoch": diverged_epoch,
        }

    # ---------------------------------------------------------------------------------- results
    def se_covers(self, cfg: Table2Config) -> str:
        return (f"repeats: SE over the {cfg.repeats} seeds of a cell" if cfg.repeats > 1 else
                "none: one run per cell, as in the paper (SE shown as 0; rerun with --set repeats=N for a spread)")

    def cell_extras(self, cfg: Table2Config, mine: List[Dict]) -> Dict:
        val = [r["best_val_error"] for r in mine if r.get("best_val_error") is not None]
        secs = [s for r in mine for s in r["train_seconds"]]
        return {"best_val_error": 100 * sum(val) / len(val) if val else None,
                "final_train_error": 100 * sum(r["train_error"][-1] for r in mine) / len(mine) if mine else None,
                "epoch_seconds": sum(secs) / len(secs) if secs else None,
                "epochs_done": min((len(r["epochs"]) for r in mine), default=0)}

    def choices(self, cfg: Table2Config) -> Dict[str, str]:
        return {**cfg.lenet_choices(cfg.alpha_init), **cfg.mnist_choices(),
                "sizes": f"{cfg.epochs} epochs" + (f", first {cfg.train_size} training images only" if cfg.train_size else "")
                + (f", {cfg.repeats} seeds per cell" if cfg.repeats > 1 else ", one seed per cell")}

    # ----------------------------------------------------------------------------------- report
    def report_intro(self, cfg: Table2Config, results: Dict) -> List[str]:
        return ["Rows: activation of the two conv layers; columns: activation of the hidden FC layer. Each cell: our "
                "test accuracy on the standard MNIST test set after the last epoch (the paper's value, after 150 "
                "epochs). The paper gives no standard error for this table; differences of a few tenths are within "
                "the seed-to-seed spread of such runs."]

    def report_sections(self, cfg: Table2Config, results: Dict) -> List[str]:
        detail = [[x["row"], x["column"], str(x["epochs_done"]), fmt_num(x["mean"], 2), fmt_num(x["final_train_error"], 2),
                   fmt_num(x["best_val_error"], 2), fmt_num(x["epoch_seconds"], 1)] for x in results["cells"]]
        return ["## Per cell", "",
                "Final training error is the running error of the last epoch; best validation error is the lowest over "
                "the epochs (mean over seeds); seconds per training epoch on this machine.", "",
                markdown_table(["conv", "fc", "epochs", "test acc %", "train err %", "best val err %", "s/epoch"], detail),
                ""]

    def curve_figure(self, cfg: Table2Config, recs: List[Dict], plt, save) -> None:
        """Figure 6: training, validation and test error per epoch; colour = conv, line style = fc."""
        from ..figures import line_panels, mean_curve

        keys = [("train_error", "training error %"), ("val_error", "validation error %"), ("test_error", "test error %")]
        cells = {f"{conv} / {fc}": [r for r in recs if r["conv"] == conv and r["fc"] == fc]
                 for conv in cfg.conv_acts for fc in cfg.fc_acts}
        panels = {title: {cell: (rs[0]["epochs"], mean_curve(rs, key)) for cell, rs in cells.items() if rs}
                  for key, title in keys if key != "val_error" or cfg.val_size}
        styles = {f"{conv} / {fc}": {"color": f"C{i}", "linestyle": ("-", "--", ":", "-.", (0, (3, 1, 1, 1, 1, 1)))[j % 5]}
                  for i, conv in enumerate(cfg.conv_acts) for j, fc in enumerate(cfg.fc_acts)}
        fig = line_panels(plt, panels, styles=styles, log_y=True, legend="last", size=(4.8, 3.8), ylabel="error %")
        fig.suptitle("LeNet5 on MNIST" + (f" (mean of {cfg.repeats} seeds)" if cfg.repeats > 1 else ""))
        save(fig, "fig6_error_curves.png", "Figure 6: training, validation and test error per epoch")


register(Table2())
