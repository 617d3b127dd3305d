"""Table 2 and Figure 6: LeNet5 with adaptive activations on MNIST (PAPER.md §2.2).

Rows are the activation of the conv layers, columns that of the hidden FC layer (:class:`.lenet.LeNet5`).
One task is one cell and repeat: it trains one LeNet5 with plain SGD (lr 0.01, batch 100, cross-entropy)
and writes one JSON record with the final test accuracy and the per-epoch curves (training error and loss,
validation error and loss, test error) behind Figure 6.

* Data: the standard MNIST files (:mod:`.mnist`), held whole in memory as uint8 tensors; a minibatch is an
  index selection scaled to [0, 1]. The last ``val_size`` training images (10,000: the 50k/10k split of the
  Theano LeNet tutorial whose hyper-parameters the paper uses) are held out for the validation curve; the
  test accuracy is on the standard 10,000-image test set after the last epoch (no early stopping).
* Pairing: every cell of a repeat starts from the same weights (same init seed; the activations hold no
  random state) and sees the same minibatch order (one seed per epoch), as Table 1 pairs its students.
* Resume inside a cell: after every epoch the model, optimiser and curves are saved atomically to
  ``checkpoints/CELL.pt``; a rerun continues from there, and since each epoch's order depends only on the
  seed and the epoch number, it ends with the same numbers as an uninterrupted run (to rounding).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Dict, List

from .config import ConfigError, option
from .lenet import ACTIVATIONS
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
from .rundir import remove_file
from .runner import read_records, write_record, write_text

__all__ = ["Table2Config", "Table2", "PAPER_TABLE2"]

# PAPER.md §2.2, test accuracy in %: conv activation -> fc activation -> value
PAPER_TABLE2 = {
    "ReLU": {"ReLU": 99.1, "AReLU": 98.7, "AGumb": 99.1},
    "AReLU": {"ReLU": 98.8, "AReLU": 98.9, "AGumb": 98.9},
    "AGumb": {"ReLU": 98.7, "AReLU": 98.8, "AGumb": 98.9},
}
GRID = ("ReLU", "AReLU", "AGumb")
BACKEND_CHOICES = ("env", "auto", "native", "compile", "eager")


@dataclass
class Table2Config:
    """The settings of Table 2. Defaults are the paper's where it gives them; see ``help`` of each."""

    seed: int = option(0, help="base seed; init, minibatch-order and repeat seeds derive from it")
    data_dir: str = option("", help="data root holding mnist/, or an MNIST-layout folder itself (default: $ACTADAPT_DATA)")
    conv_acts: List[str] = option(list(GRID), choices=tuple(ACTIVATIONS), help="activations of the conv layers (rows)")
    fc_acts: List[str] = option(list(GRID), choices=tuple(ACTIVATIONS), help="activations of the FC layer (columns)")
    epochs: int = option(150, min=1, help="training epochs (paper: 150)")
    repeats: int = option(1, min=1, help="independent seeds per cell (the paper reports one number per cell)")
    batch_size: int = option(100, min=2, help="minibatch size (paper: 100)")
    lr: float = option(0.01, min=0.0, help="SGD learning rate (paper: 0.01)")
    momentum: float = option(0.0, min=0.0, help="SGD momentum (paper: plain SGD, 0)")
    weight_decay: float = option(0.0, min=0.0, help="L2 weight decay on weights and biases (paper: none stated)")
    alpha_lr_scale: float = option(1.0, min=0.0, help="learning rate of rho (alpha = exp rho) relative to lr")
    alpha_init: float = option(1.0, min=1e-6, help="initial alpha of the adaptive activations")
    val_size: int = option(10_000, min=0, help="last training images held out for validation (Theano tutorial: 10,000); 0 trains on all")
    train_size: int = option(0, min=0, help="use only the first N of the remaining training images (0: all)")
    test_size: int = option(0, min=0, help="use only the first N test images (0: all 10,000)")
    eval_batch: int = option(1000, min=1, help="batch size of the evaluation passes")
    backend: str = option("env", choices=BACKEND_CHOICES, help="actadapt backend in the workers; env: $ACTADAPT_BACKEND, else auto (the fused CPU kernel)")
    threads: int = option(1, min=1, help="torch threads per worker process")

    def validate(self) -> None:
        if len(set(self.conv_acts)) != len(self.conv_acts) or len(set(self.fc_acts)) != len(self.fc_acts):
            raise ConfigError("config keys 'conv_acts'/'fc_acts': expected no repeated names")


PRESETS = {
    # seconds: a small subset, used by the tests
    "smoke": {"epochs": 2, "train_size": 400, "val_size": 200, "test_size": 300},
    # the full data, a few epochs per cell: the 3x3 grid in about 20 minutes on 2 idle cores (--workers 2).
    # SGD lr 0.01 as the paper, plus momentum 0.9: with the paper's plain SGD, 3 epochs leave the cells with
    # AGumb in the FC layer at 96-97.7% (sigmoid-like units learn slowly at lr 0.01), still falling; momentum
    # lets every cell reach the paper's regime in 3 epochs. The paper preset keeps plain SGD.
    "quick": {"epochs": 3, "momentum": 0.9},
    # the paper's 150 epochs (about 3 CPU-hours per cell; use --workers)
    "paper": {"epochs": 150},
}


def stable_seed(*parts) -> int:
    from .table1 import stable_seed as _seed

    return _seed("table2", *parts)


def cell_id(conv: str, fc: str, repeat: int) -> str:
    return f"{conv}__{fc}__r{repeat}"


def record_path(conv: str, fc: str, repeat: int) -> str:
    return os.path.join("cells", cell_id(conv, fc, repeat) + ".json")


def checkpoint_path(run_dir: str, conv: str, fc: str, repeat: int) -> str:
    return os.path.join(run_dir, "checkpoints", cell_id(conv, fc, repeat) + ".pt")


def mnist_splits(cfg: Table2Config):
    """``(train, val, test)`` :class:`.mnist.Split` s as the config says (views of the cached tensors)."""
    from .mnist import DataError, Split, WHERE, load_mnist

    root = cfg.data_dir or os.environ.get("ACTADAPT_DATA", "")
    if not root:
        raise DataError(f"no MNIST data folder: give --data-dir or set $ACTADAPT_DATA; {WHERE}")
    data = load_mnist(root)
    tr, te = data["train"], data["test"]
    n = tr.images.shape[0]
    if cfg.val_size >= n:
        raise ConfigError(f"config key 'val_size': expected fewer than the {n} training images, got {cfg.val_size}")
    cut = n - cfg.val_size
    train = Split(tr.images[:cut], tr.labels[:cut])
    val = Split(tr.images[cut:], tr.labels[cut:])
    if cfg.train_size:
        train = Split(train.images[: cfg.train_size], train.labels[: cfg.train_size])
    if train.images.shape[0] < 2:
        raise ConfigError(f"config keys 'train_size'/'val_size': only {train.images.shape[0]} training images left; need at least 2")
    test = Split(te.images[: cfg.test_size], te.labels[: cfg.test_size]) if cfg.test_size else te
    return train, val, test


def _as_input(images):
    # uint8 (B, H, W) -> float (B, 1, H, W) in [0, 1]
    return images.unsqueeze(1).float().div_(255.0)


def evaluate(model, split, batch: int):
    """``(error, mean loss)`` of ``model`` (eval mode, no grad) on ``split``; ``(None, None)`` if empty."""
    import torch
    import torch.nn.functional as F

    n = split.images.shape[0]
    if n == 0:
        return None, None
    model.eval()
    wrong, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, n, batch):
            logits = model(_as_input(split.images[i: i + batch]))
            y = split.labels[i: i + batch]
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            wrong += int((logits.argmax(1) != y).sum())
    return wrong / n, loss / n


def _save_checkpoint(path: str, state: Dict, run_dir: str) -> None:
    import torch

    from .rundir import atomic_write

    atomic_write(path, lambda fh: torch.save(state, fh), binary=True, root=run_dir)


def _load_checkpoint(path: str, chash: str):
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # missing, partial or foreign: start the cell afresh
        return None
    return state if isinstance(state, dict) and state.get("config_hash") == chash else None


class Table2(Experiment):
    name = "table2"
    title = "Table 2: LeNet5 on MNIST, conv x FC activation (test accuracy %)"
    config_class = Table2Config
    presets = PRESETS
    needs_data = True

    # ------------------------------------------------------------------------------------ tasks
    def tasks(self, cfg: Table2Config) -> List[Task]:
        out = []
        for r in range(cfg.repeats):
            for conv in cfg.conv_acts:
                for fc in cfg.fc_acts:
                    params = {"conv": conv, "fc": fc, "repeat": r, "epochs": cfg.epochs}
                    out.append(Task(cell_id(conv, fc, r), params, (record_path(conv, fc, r),)))
        return out

    def memory_estimate(self, cfg: Table2Config):
        """Peak memory of one task in bytes (25% slack), for ``N`` images of ``H x W`` pixels (read from the
        IDX headers; MNIST's 70,000 28x28 when the files cannot be read yet), ``s = H W / 784``: the images
        held whole, x3 while a gzip file is decompressed and copied; LeNet5's ``0.05 + 0.8 s`` M parameters
        x 4 bytes x 5 (weights, gradients, momentum, two state_dict copies for the checkpoint); per training
        image ``0.4 s`` MB of saved activations (conv maps, BN, activation, pooling), per evaluated image
        ``0.15 s`` MB."""
        from .mnist import idx_sizes
        from .resources import MemoryEstimate

        images, pixels = idx_sizes(cfg.data_dir or os.environ.get("ACTADAPT_DATA", "")) or (70_000, 784)
        scale = pixels / 784
        evaluated = min(cfg.eval_batch, images)
        total = (3 * images * pixels + 20 * (50_000 + 800_000 * scale)
                 + (cfg.batch_size * 400_000 + evaluated * 150_000) * scale)
        detail = (f"LeNet5 on {images} images of {pixels} pixels, batch_size {cfg.batch_size}, "
                  f"eval_batch {cfg.eval_batch}")
        return MemoryEstimate(int(total) * 5 // 4, detail)

    def run_task(self, cfg: Table2Config, task: Task, run_dir: str, progress=None) -> None:
        import torch
        import torch.nn.functional as F

        from .. import get_backend, param_groups
        from ..inspect import alpha_dict
        from .config import config_hash
        from .divergence import nonfinite
        from .lenet import LeNet5
        from .runner import hashed_config

        conv, fc, rep = task.params["conv"], task.params["fc"], task.params["repeat"]
        chash = config_hash(hashed_config(cfg))
        train, val, test = mnist_splits(cfg)
        height, width = train.images.shape[1:]

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stable_seed(cfg.seed, "init", rep))  # the same start for every cell of a repeat
            model = LeNet5(conv, fc, image_size=(height, width), alpha_init=cfg.alpha_init)
        groups = param_groups(model, lr=cfg.lr, alpha_lr=cfg.lr * cfg.alpha_lr_scale, weight_decay=cfg.weight_decay)
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)

        hist: Dict[str, List] = {k: [] for k in (
            "epochs", "train_error", "train_loss", "val_error", "val_loss", "test_error", "test_loss", "train_seconds", "eval_seconds",
        )}
        ckpt = checkpoint_path(run_dir, conv, fc, rep)
        state = _load_checkpoint(ckpt, chash)
        start = 0
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            hist, start = state["history"], state["epoch"]

        n = train.images.shape[0]
        diverged_epoch = None
        for epoch in range(start + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            gen = torch.Generator().manual_seed(stable_seed(cfg.seed, "order", rep, epoch) % 2**63)
            perm = torch.randperm(n, generator=gen)
            if n % cfg.batch_size == 1:
                perm = perm[:-1]  # batch norm cannot train on a last minibatch of one example
            wrong = torch.zeros((), dtype=torch.long)
            loss_sum = torch.zeros(())
            for idx in perm.split(cfg.batch_size):
                x, y = _as_input(train.images[idx]), train.labels[idx]
                logits = model(x)  # (B, 10)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():  # running training error and loss (train mode, as the epoch goes)
                    loss_sum += loss.detach() * len(idx)
                    wrong += (logits.argmax(1) != y).sum()
            t1 = time.perf_counter()
            val_err, val_loss = evaluate(model, val, cfg.eval_batch)
            test_err, test_loss = evaluate(model, test, cfg.eval_batch)
            seen = perm.numel()
            for key, value in (
                ("epochs", epoch), ("train_error", int(wrong) / seen), ("train_loss", float(loss_sum) / seen),
                ("val_error", val_err), ("val_loss", val_loss), ("test_error", test_err), ("test_loss", test_loss),
                ("train_seconds", t1 - t0), ("eval_seconds", time.perf_counter() - t1),
            ):
                hist[key].append(value)
            if nonfinite(loss_sum):  # the weights are NaN from here on: stop, the record says so
                diverged_epoch = epoch
                break
            if epoch < cfg.epochs:
                _save_checkpoint(ckpt, {
                    "config_hash": chash, "epoch": epoch, "model": model.state_dict(),
                    "optimizer": opt.state_dict(), "history": hist,
                }, run_dir)
            if progress is not None:
                progress(epoch)

        if diverged_epoch is None and nonfinite(model):  # went bad in the very last step
            diverged_epoch = hist["epochs"][-1] if hist["epochs"] else cfg.epochs
        alphas = {name: a.tolist() for name, a in alpha_dict(model).items()}
        test_error = hist["test_error"][-1]
        counts = torch.bincount(test.labels, minlength=10)
        val_errs = [e for e in hist["val_error"] if e is not None]
        record = {
            "table": self.name, "conv": conv, "fc": fc, "repeat": rep,
            "row": conv, "column": fc, "draw": rep, "fold": 0,
            "accuracy": 1.0 - test_error,
            "majority_rate": float(counts.max()) / float(counts.sum()),
            "best_val_error": min(val_errs) if val_errs else None,
            "best_val_epoch": hist["epochs"][val_errs.index(min(val_errs))] if val_errs else None,
            "n_train": n, "n_val": int(val.images.shape[0]), "n_test": int(test.images.shape[0]),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "backend": get_backend(), "threads": torch.get_num_threads(),
            **hist, "alphas": alphas,
            "diverged": diverged_epoch is not None, "diverged_epoch": diverged_epoch,
        }
        write_record(run_dir, record_path(conv, fc, rep), record, chash)
        remove_file(ckpt, run_dir)  # the record supersedes it (the folder stays: another worker may use it)

    # ---------------------------------------------------------------------------------- results
    def records(self, cfg: Table2Config, run_dir: str) -> List[Dict]:
        return read_records(run_dir, cfg, (record_path(conv, fc, r) for r in range(cfg.repeats)
                                           for conv in cfg.conv_acts for fc in cfg.fc_acts))

    def summarize(self, cfg: Table2Config, run_dir: str) -> Dict:
        from .config import config_hash
        from .runner import hashed_config

        recs = self.records(cfg, run_dir)
        self._write_cells_csv(recs, run_dir)
        cells = []
        for conv in cfg.conv_acts:
            for fc in cfg.fc_acts:
                mine = [r for r in recs if r["conv"] == conv and r["fc"] == fc]
                paper = PAPER_TABLE2.get(conv, {}).get(fc)
                stats = cell_stats(mine, paper=paper)
                val = [r["best_val_error"] for r in mine if r.get("best_val_error") is not None]
                secs = [s for r in mine for s in r["train_seconds"]]
                stats.update({
                    "row": conv, "column": fc,
                    "best_val_error": 100 * sum(val) / len(val) if val else None,
                    "final_train_error": 100 * sum(r["train_error"][-1] for r in mine) / len(mine) if mine else None,
                    "epoch_seconds": sum(secs) / len(secs) if secs else None,
                    "epochs_done": min((len(r["epochs"]) for r in mine), default=0),
                })
                cells.append(stats)
        se_covers = (
            f"repeats: SE over the {cfg.repeats} seeds of a cell" if cfg.repeats > 1
            else "none: one run per cell, as in the paper (SE shown as 0; rerun with --set repeats=N for a spread)"
        )
        return {
            "format": RESULTS_FORMAT,
            "table": self.name,
            "title": self.title,
            "config_hash": config_hash(hashed_config(cfg)),
            "metric": "accuracy",
            "unit": "%",
            "rows": list(cfg.conv_acts),
            "columns": list(cfg.fc_acts),
            "se_covers": se_covers,
            "cells": cells,
            "choices": self.choices(cfg),
        }

    @staticmethod
    def choices(cfg: Table2Config) -> Dict[str, str]:
        return {
            "batch normalisation": "after each convolution and after the hidden FC layer, before the activation "
            "(conv -> BN -> act -> max-pool; FC -> BN -> act); no bias in the layers a norm follows",
            "alpha": "one per channel in the conv layers (20, 50), one per neuron in the FC layer (1000); "
            f"alpha = exp(rho), initial alpha {cfg.alpha_init:g}; Swish means the adaptive x*sigmoid(alpha x)",
            "optimiser": f"{'plain ' if not cfg.momentum else ''}SGD, lr {cfg.lr:g} (alpha: x{cfg.alpha_lr_scale:g}), momentum {cfg.momentum:g}, "
            f"weight decay {cfg.weight_decay:g} (none on alpha), batch {cfg.batch_size}, cross-entropy, no penalty",
            "initialisation": "PyTorch defaults (Kaiming-uniform conv/linear weights, BN weight 1 bias 0); every cell "
            "of a repeat starts from the same weights and sees the same minibatch order",
            "input": "pixels scaled to [0, 1]; no augmentation",
            "validation": (f"the last {cfg.val_size} training images (as the Theano LeNet tutorial's 50k/10k split), "
                           "used only for the curves") if cfg.val_size else "none (val_size=0): trained on every training image",
            "training error": "running error over each epoch's minibatches (train mode), as the epoch goes",
            "test accuracy": "on the standard test set"
            + (f" (first {cfg.test_size} images only)" if cfg.test_size else " (10,000 images)")
            + " after the last epoch; no early stopping or model selection",
            "sizes": f"{cfg.epochs} epochs"
            + (f", first {cfg.train_size} training images only" if cfg.train_size else "")
            + (f", {cfg.repeats} seeds per cell" if cfg.repeats > 1 else ", one seed per cell"),
        }

    @staticmethod
    def _write_cells_csv(recs: List[Dict], run_dir: str) -> None:
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["conv", "fc", "repeat", "epoch", "train_error", "train_loss", "val_error", "val_loss", "test_error",
                    "test_loss", "train_seconds"])
        for r in sorted(recs, key=lambda r: (r["conv"], r["fc"], r["repeat"])):
            for i, ep in enumerate(r["epochs"]):
                w.writerow([r["conv"], r["fc"], r["repeat"], ep] + [r[k][i] for k in (
                    "train_error", "train_loss", "val_error", "val_loss", "test_error", "test_loss", "train_seconds")])
        write_text(os.path.join(run_dir, "folds.csv"), buf.getvalue(), root=run_dir)

    # ----------------------------------------------------------------------------------- report
    def report(self, cfg: Table2Config, run_dir: str, results: Dict) -> str:
        figures = self.figures(cfg, run_dir)
        cells = {(c["row"], c["column"]): c for c in results["cells"]}
        cols, rows = results["columns"], results["rows"]
        several = cfg.repeats > 1

        def ours(c):
            if c["mean"] is None:
                return "n/a"
            return f"{fmt_num(c['mean'], 2)}" + (f" ± {fmt_num(c['se'], 2)}" if several else "")

        body = [[r] + [f"{ours(cells[(r, c)])} ({fmt_num(cells[(r, c)]['paper'])})" for c in cols] for r in rows]
        dist = [[r] + ["n/a" if cells[(r, c)]["diff"] is None else f"{cells[(r, c)]['diff']:+.2f}" for c in cols] for r in rows]
        detail = []
        for r in rows:
            for c in cols:
                x = cells[(r, c)]
                detail.append([r, c, str(x["epochs_done"]), fmt_num(x["mean"], 2), fmt_num(x["final_train_error"], 2),
                               fmt_num(x["best_val_error"], 2), fmt_num(x["epoch_seconds"], 1)])
        lines = [
            f"# {self.title}",
            "",
            f"Preset `{results.get('preset')}`, config hash `{results['config_hash']}`"
            + ("" if results.get("complete", True) else " — **incomplete run: only the finished cells are counted**"),
            "",
            "Rows: activation of the two conv layers; columns: activation of the hidden FC layer. Each cell: our test "
            "accuracy on the standard MNIST test set after the last epoch (the paper's value, after 150 epochs).",
            "",
            f"Standard error: {results['se_covers']}.",
            "",
            markdown_table(["conv \\ fc"] + cols, body),
            "",
            "Distance from the paper: ours - paper, in points (the paper gives no standard error for this table; "
            "differences of a few tenths are within the seed-to-seed spread of such runs).",
            "",
            markdown_table(["conv \\ fc"] + cols, dist),
            "",
            "## Per cell",
            "",
            "Final training error is the running error of the last epoch; best validation error is the lowest over "
            "the epochs (mean over seeds); seconds per training epoch on this machine.",
            "",
            markdown_table(["conv", "fc", "epochs", "test acc %", "train err %", "best val err %", "s/epoch"], detail),
            "",
        ]
        lines += choices_and_figures_markdown(results["choices"], figures, "cells")
        return "\n".join(lines)

    def figures(self, cfg: Table2Config, run_dir: str):
        """Write Figure 6 (error curves) and the fitted-alpha histograms into ``figures/``; ``[(caption, relpath)]``."""
        saver = figure_saver(run_dir)
        recs = plottable(self.records(cfg, run_dir))
        if saver is None or not recs:
            return []
        from ..plot import plot_alpha_histogram

        plt, save, made = saver

        # Figure 6: training and validation (and test) error per epoch; colour = conv, line style = fc
        from matplotlib.ticker import MaxNLocator, ScalarFormatter

        panels = [("train_error", "training error %")]
        if cfg.val_size:
            panels.append(("val_error", "validation error %"))
        panels.append(("test_error", "test error %"))
        colours = {a: f"C{i}" for i, a in enumerate(cfg.conv_acts)}
        styles = dict(zip(cfg.fc_acts, ("-", "--", ":", "-.", (0, (3, 1, 1, 1, 1, 1)))))
        fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False)
        for ax, (key, label) in zip(axes[0], panels):
            for conv in cfg.conv_acts:
                for fc in cfg.fc_acts:
                    mine = [r for r in recs if r["conv"] == conv and r["fc"] == fc]
                    if not mine:
                        continue
                    k = min(len(r["epochs"]) for r in mine)
                    err = [100 * sum(r[key][i] for r in mine) / len(mine) for i in range(k)]
                    ax.plot(mine[0]["epochs"][:k], err, color=colours[conv], linestyle=styles[fc], marker="." if k < 20 else None,
                            label=f"{conv} / {fc}")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(ScalarFormatter())
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3, which="both")
        axes[0][-1].legend(fontsize=7, title="conv / fc", title_fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle("LeNet5 on MNIST" + (f" (mean of {cfg.repeats} seeds)" if cfg.repeats > 1 else ""))
        save(fig, "fig6_error_curves.png", "Figure 6: training, validation and test error per epoch")

        # fitted alphas per adaptive layer (first repeat), one panel per layer
        layers = {"act1": "conv1", "act2": "conv2", "act3": "fc"}
        hists = {lay: {} for lay in layers}
        for r in sorted(recs, key=lambda r: r["repeat"]):
            for lay in layers:
                if lay in r["alphas"]:
                    act = r["conv"] if lay != "act3" else r["fc"]
                    hists[lay].setdefault(f"{r['conv']}/{r['fc']} ({act})", r["alphas"][lay])
        hists = {k: v for k, v in hists.items() if v}
        if hists:

            fig, axes = plt.subplots(1, len(hists), figsize=(4.8 * len(hists), 3.6), squeeze=False)
            for ax, (lay, per_cell) in zip(axes[0], hists.items()):
                plot_alpha_histogram({k: finite_tensor(v) for k, v in per_cell.items()}, ax=ax)
                ax.set_title(f"fitted alpha, {layers[lay]} layer")
                if ax.get_legend() is not None:
                    ax.legend(fontsize=6)
            save(fig, "alpha_histograms.png", "Fitted alpha per layer (cells with an adaptive activation there)")
        return made


register(Table2())
