"""The conv x FC activation grid that Tables 2-4 share: config, tasks, a task's run, figures.

A grid table trains one model per (conv activation, FC activation, unit), where the unit is a
cross-validation fold (Tables 3 and 4) or an independent seed (Table 2's repeats). :class:`GridExperiment`
owns everything but the training: the tasks and their record paths, a task's run (its checkpoint for a
mid-task resume, its record, the clean-up) and the figures (error curves per cell, the fitted alphas per
layer); from :class:`.table.TableExperiment` it has ``results.json``, ``folds.csv`` and the report (header,
the table beside the paper's, the distance from the paper, the choices made). A table supplies only what is
its own:

* its config (a :class:`GridConfig` subclass), presets, the paper's values (:attr:`GridExperiment.paper`);
* ``train_cell(cfg, conv, fc, unit, checkpoint, progress) -> dict``: train one model (its data, its model,
  usually through :func:`.loop.train_epochs`) and return its record's own fields;
* ``choices(cfg)`` and any extra report sections or figures (``report_sections``, ``cell_extras``,
  ``summary_extras``, ``curve_figure``).

Every (conv, fc, unit) is one task, unit-major (the first fold of every cell finishes first); it writes
``folds/<conv>-<fc>__fold<k>.json`` (Table 2: ``cells/<conv>__<fc>__r<k>.json``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Tuple

from .config import ConfigError, ExperimentConfig, option, run_hash
from .paired import Comparison
from .registry import Task
from .table import TableExperiment, csv_float

__all__ = ["GRID", "GRID_ACTIVATIONS", "GridConfig", "GridExperiment"]

GRID = ("ReLU", "AReLU", "AGumb")  # the paper's rows and columns
# the names a grid accepts; each is resolved by the one activation factory, actadapt.get_activation
GRID_ACTIVATIONS = ("ReLU", "AReLU", "AGumb", "Sig", "Swish")
FIXED, ADAPTIVE = "ReLU", ("AReLU", "AGumb", "Swish")  # the paper's comparisons: an adaptive side against ReLU


@dataclass
class GridConfig(ExperimentConfig):
    """The keys every grid table has, beside :class:`.config.ExperimentConfig`'s."""

    data_dir: str = option("", help="data root holding the table's data folders (--data-dir or $ACTADAPT_DATA)")
    conv_acts: List[str] = option(list(GRID), choices=GRID_ACTIVATIONS, help="rows: activations of the conv layers")
    fc_acts: List[str] = option(list(GRID), choices=GRID_ACTIVATIONS, help="columns: activations of the FC layer")

    def validate(self) -> None:
        super().validate()
        if len(set(self.conv_acts)) != len(self.conv_acts) or len(set(self.fc_acts)) != len(self.fc_acts):
            raise ConfigError("config keys 'conv_acts'/'fc_acts': expected no repeated names")

    def data_root(self) -> str:
        return self.data_dir or os.environ.get("ACTADAPT_DATA", "")


class GridExperiment(TableExperiment):
    """Base class of the conv x FC grid tables; see the module notes for what a table supplies."""

    needs_data = True
    unit = "fold"  # or "repeat": the config key `<unit>s` says how many
    csv_key_columns = ("conv", "fc", "fold")
    curve_file = ("error_curves.png", "Training and test error per epoch, mean over folds")
    alpha_layers: Dict[str, Tuple[str, str]] = {"act1": ("conv1", "conv"), "act2": ("conv2", "conv"),
                                                "act3": ("FC", "fc")}  # module name (prefix) -> (panel, side)

    # ---------------------------------------------------------------------------------------- tasks
    def rows(self, cfg) -> List[str]:
        return list(cfg.conv_acts)

    def columns(self, cfg) -> List[str]:
        return list(cfg.fc_acts)

    def units(self, cfg) -> int:
        return getattr(cfg, self.unit + "s")

    def unit_key(self, k: int) -> Dict[str, int]:
        """A record's ``draw`` and ``fold`` for unit ``k``: a repeat is a draw (of the seeds), a fold a fold."""
        return {"draw": k if self.unit == "repeat" else 0, "fold": k if self.unit == "fold" else 0}

    # ---------------------------------------------------------------------------- paired comparisons
    def comparisons(self, rows: List[str], columns: List[str]) -> List[Comparison]:
        """Every adaptive cell minus ReLU/ReLU; then, where they differ from those, each adaptive FC column
        minus the ReLU FC cell of its row, and each adaptive conv row minus the ReLU conv cell of its column."""
        cells = [(r, c) for r in rows for c in columns]
        base = (FIXED, FIXED)
        pairs = [(cell, base, "vs ReLU/ReLU") for cell in cells
                 if base in cells and (cell[0] in ADAPTIVE or cell[1] in ADAPTIVE)]
        pairs += [((r, c), (r, FIXED), "adaptive FC vs ReLU FC") for r, c in cells
                  if c in ADAPTIVE and r != FIXED and (r, FIXED) in cells]
        pairs += [((r, c), (FIXED, c), "adaptive conv vs ReLU conv") for r, c in cells
                  if r in ADAPTIVE and c != FIXED and (FIXED, c) in cells]
        return [Comparison(a, b, kind, f"{'/'.join(a)} - {'/'.join(b)}") for a, b, kind in pairs]

    def csv_metric(self, row, metric: str):
        """The value of ``metric`` in a ``folds.csv`` row (``None`` if empty)."""
        return csv_float(row[metric])

    def record_from_csv(self, row):
        k = int(row[self.unit])
        # accuracy and majority_rate: chance level; the extra grids' metrics: the status's cells (.status.cell_rows)
        metrics = dict.fromkeys((*self.metrics_compared(), "accuracy", "majority_rate", *self.extra_grids.values()))
        rec = {"row": row["conv"], "column": row["fc"], **self.unit_key(k),
               **{m: self.csv_metric(row, m) for m in metrics if m in row or m in self.metrics_compared()}}
        return rec, self.record_path(row["conv"], row["fc"], k)

    def task_id(self, conv: str, fc: str, k: int) -> str:
        return f"{conv}-{fc}-fold{k}"

    def record_path(self, conv: str, fc: str, k: int) -> str:
        return os.path.join("folds", f"{conv}-{fc}__fold{k}.json")

    def record_paths(self, cfg):
        return (self.record_path(conv, fc, k) for k in range(self.units(cfg))
                for conv in cfg.conv_acts for fc in cfg.fc_acts)

    def tasks(self, cfg) -> List[Task]:
        return [Task(self.task_id(conv, fc, k), {"conv": conv, "fc": fc, self.unit: k, "epochs": cfg.epochs, "cost": 1},
                     (self.record_path(conv, fc, k),))
                for k in range(self.units(cfg)) for conv in cfg.conv_acts for fc in cfg.fc_acts]

    def task_kind(self, task: Task) -> Dict:
        """A cell's tasks cost the same on every unit: the kind is the task's parameters but the unit."""
        return {key: value for key, value in task.params.items() if key != self.unit}

    def run_task(self, cfg, task: Task, run_dir: str, progress=None) -> None:
        from .loop import Checkpoint
        from .runner import write_record

        conv, fc, k = task.params["conv"], task.params["fc"], task.params[self.unit]
        chash = run_hash(cfg)
        checkpoint = Checkpoint(os.path.join(run_dir, "checkpoints", task.id + ".pt"), run_dir, chash)
        own = self.train_cell(cfg, conv, fc, k, checkpoint, progress)
        head = {"table": self.name, "conv": conv, "fc": fc, self.unit: k, "row": conv, "column": fc,
                **self.unit_key(k)}
        write_record(run_dir, self.record_path(conv, fc, k), {**head, **own}, chash)
        checkpoint.remove()  # the record supersedes it (the folder stays: another worker may use it)

    def train_cell(self, cfg, conv: str, fc: str, k: int, checkpoint, progress) -> Dict:
        """Train the model of cell (conv, fc) on unit ``k``, saving to and resuming from ``checkpoint`` (a
        :class:`.loop.Checkpoint`) and calling ``progress(epoch)``; return the record's own fields."""
        raise NotImplementedError

    # -------------------------------------------------------------------------------------- figures
    def draw_figures(self, cfg, recs: List[Dict], plt, save) -> None:
        self.curve_figure(cfg, recs, plt, save)
        self.alpha_figure(recs, plt, save)

    def curve_figure(self, cfg, recs: List[Dict], plt, save) -> None:
        """Training, validation and test error per epoch, one panel per cell, mean over the units."""
        from .figures import line_panels, mean_curve

        panels = {}
        for conv in cfg.conv_acts:
            for fc in cfg.fc_acts:
                rs = [r for r in recs if r["conv"] == conv and r["fc"] == fc and r.get("curve_epochs")]
                curves = {label: (rs[0]["curve_epochs"], mean_curve(rs, key)) for key, label in CURVES if rs}
                panels[f"conv {conv}, fc {fc}"] = {label: line for label, line in curves.items() if line[1]}
        if any(panels.values()):
            fig = line_panels(plt, panels, ncols=len(cfg.fc_acts), styles={"test fold": {"linestyle": "--"}})
            save(fig, *self.curve_file)

    def alpha_figure(self, recs: List[Dict], plt, save) -> None:
        """The fitted alphas, one panel per layer, one histogram per activation (pooled over cells, units)."""
        from .figures import histogram_panels

        panels: Dict[str, Dict[str, List[float]]] = {}
        for r in recs:
            alphas = r.get("alphas") or (r.get("metrics") or {}).get("alphas") or {}  # Table 4: under metrics
            for name, values in alphas.items():
                label, side = next((v for p, v in self.alpha_layers.items() if name == p or name.startswith(p + ".")),
                                   (name, "conv"))
                panel = panels.setdefault(f"fitted alpha, {label} layer", {})
                panel.setdefault(r["fc"] if side == "fc" else r["conv"], []).extend(values)
        fig = histogram_panels(plt, panels)
        if fig is not None:
            save(fig, "alpha_histograms.png", "Fitted alpha per layer, pooled over the cells with an adaptive "
                                              "activation there")


CURVES = (("train_error", "training"), ("dev_error", "validation"), ("test_error", "test fold"))
