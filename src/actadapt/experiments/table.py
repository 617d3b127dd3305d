"""A paper table as an experiment: rows x columns of cells, each a mean over units (folds, draws, seeds).

:class:`TableExperiment` turns a run folder's records into ``results.json``, ``folds.csv`` and the report,
from the records alone (so ``actadapt report`` rebuilds them without training). Every record names its cell
(``row``, ``column``) and unit (``draw``, ``fold``); :func:`.report.cell_stats` makes a cell of them. It owns:

* ``summarize``: the main grid (``cells``, the metric :attr:`TableExperiment.metric`) and any further grids
  (:attr:`~TableExperiment.extra_grids`, e.g. Table 4's recall), each cell beside the paper's value, plus the
  table's :meth:`~TableExperiment.cell_extras`, :meth:`~TableExperiment.summary_extras` and
  :meth:`~TableExperiment.choices`;
* ``paired``: the paper's comparisons (:meth:`~TableExperiment.comparisons`) as paired differences over the
  units both cells share (:mod:`.paired`), for each metric of :attr:`~TableExperiment.paired_metrics`;
* ``folds.csv``: one row per record (or per epoch of each record), from :attr:`~TableExperiment.csv_columns`;
  :meth:`~TableExperiment.csv_records` reads the paired fields back from it (``actadapt report --status``
  works from ``config.json``, ``results.json`` and ``folds.csv`` alone, :mod:`.status`);
* the report: header, the table beside the paper's, the standard errors, the distance from the paper, the
  paired comparisons with their verdicts (:mod:`.verdict`), the table's own sections
  (:meth:`~TableExperiment.report_sections`), the choices made where the paper is silent, and the figures
  (:meth:`~TableExperiment.draw_figures`).

A table subclass says which rows, columns and record paths it has, how it trains (``tasks``, ``run_task``),
and what is its own. The conv x FC grids of Tables 2-4 build on it in :mod:`.grid`.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Collection, Dict, Iterable, List, Mapping, Tuple

from .config import ConfigError, run_hash
from .paired import CONFIDENCE, Comparison, compare, format_comparison
from .registry import Experiment
from .report import (
    RESULTS_FORMAT,
    cell_stats,
    choices_and_figures_markdown,
    figure_saver,
    fmt_num,
    markdown_table,
    mean_se,
    plottable,
)
from .verdict import verdict

__all__ = ["TableExperiment", "csv_float"]


class TableExperiment(Experiment):
    """Base class of the paper's tables; see the module notes."""

    paper: Dict[str, Dict] = {}  # row -> column -> the paper's value
    metric = "accuracy"  # the record key of the main grid
    extra_grids: Dict[str, str] = {}  # further results.json grids: key -> record metric
    distance_grids: Tuple[str, ...] = ("cells",)  # the grids whose distance from the paper the report shows
    extra_tables: Dict[str, str] = {}  # further grids the report shows after that: key -> caption
    stuck_reason = ""  # why cells may not leave chance level (the report adds it where some did not)
    draw_name = "draw"  # what a ``draw`` of a record is (a teacher draw, a seed): the report's per-draw table
    digits = 1  # decimals of the reported means
    row_title = "conv \\ fc"  # the corner of the report's tables
    majority_column = False  # a column of each row's majority-class rate (Table 1: it differs per row)
    csv_key_columns: Tuple[str, ...] = ("conv", "fc", "fold")  # folds.csv: sorted by these, then ...
    csv_columns: Tuple[str, ...] = ()  # ... these record keys, one row per record ...
    csv_final_columns: Tuple[str, ...] = ("train_loss",)  # ... and the last value of these curves
    csv_epoch_columns: Tuple[str, ...] = ()  # or one row per epoch (``epochs``) of these curves
    paired_metrics: Tuple[str, ...] = ()  # the metrics the paper's comparisons are made on (default: metric)
    paired_units = "fold: the cells of a fold share its split"  # what a unit is and why cells pair on it
    status_note = ""  # what a reader of the reproduction status must know about this table's runs

    # ------------------------------------------------------------------------------------- the table
    def rows(self, cfg) -> List[str]:
        raise NotImplementedError

    def columns(self, cfg) -> List[str]:
        raise NotImplementedError

    def record_paths(self, cfg) -> Iterable[str]:
        """Every record a complete run holds, run-folder-relative (default: the tasks' outputs, in task order;
        a cell's records are read in this order)."""
        return [path for task in self.tasks(cfg) for path in task.outputs]

    def records(self, cfg, run_dir: str) -> List[Dict]:
        from .runner import read_records

        return read_records(run_dir, cfg, self.record_paths(cfg))

    def paper_value(self, row: str, col: str, metric: str):
        return self.paper.get(row, {}).get(col)

    def paper_rows(self) -> List[str]:
        return list(self.paper)

    def paper_columns(self) -> List[str]:
        return list(dict.fromkeys(col for values in self.paper.values() for col in values))

    # ------------------------------------------------------------------------------ paired comparisons
    def comparisons(self, rows: List[str], columns: List[str]) -> List[Comparison]:
        """The paper's comparisons among the cells ``rows x columns`` (both cells of each in them)."""
        return []

    def metrics_compared(self) -> Tuple[str, ...]:
        return self.paired_metrics or (self.metric,)

    def paired(self, cfg, recs: List[Mapping]) -> Dict:
        """The ``paired`` section of ``results.json`` (:mod:`.paired`): every comparison among this run's cells,
        per metric of :meth:`metrics_compared`, from the records (real ones or :meth:`csv_records`)."""
        comps = self.comparisons(self.rows(cfg), self.columns(cfg))
        return {"units": self.paired_units, "confidence": CONFIDENCE,
                "comparisons": [c for m in self.metrics_compared() for c in compare(
                    recs, comps, m, lambda row, col, m=m: self.paper_value(row, col, m))]}

    def record_from_csv(self, row: Mapping[str, str]) -> Tuple[Dict, str]:
        """``(record, its run-folder path)`` from the ``folds.csv`` row of a record (its last epoch's row when
        the CSV has one per epoch): ``row``, ``column``, ``draw``, ``fold`` and the metrics compared."""
        raise NotImplementedError

    def csv_records(self, path: str, diverged: Collection[str] = ()) -> List[Dict]:
        """The records' paired fields rebuilt from the ``folds.csv`` at ``path`` (:meth:`record_from_csv`);
        a record is ``diverged`` when its ``diverged`` column says so or its path is in ``diverged`` (a run's
        ``diverged_records``: the CSVs of Tables 1 and 2 have no such column). A CSV that lacks a column or
        holds a bad number is a one-line :class:`ConfigError` naming it."""
        keys = list(self.csv_key_columns)
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                rows = list(csv.DictReader(fh))
            groups: Dict[Tuple, List[Mapping[str, str]]] = {}
            for r in rows:
                groups.setdefault(tuple(r[k] for k in keys), []).append(r)
            out = []
            for rs in groups.values():
                last = max(rs, key=lambda r: int(r["epoch"])) if self.csv_epoch_columns else rs[0]
                rec, rel = self.record_from_csv(last)
                rec["diverged"] = last.get("diverged") == "True" or os.path.normpath(rel) in diverged
                out.append(rec)
        except KeyError as err:
            raise ConfigError(f"{path!r} has no column {err}; expected the folds.csv of a {self.name} run") from None
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{path!r} holds a value that is not a number ({err}); it is not what "
                              "`actadapt reproduce` writes") from None
        return out

    # ---------------------------------------------------------------------------------- results.json
    def se_covers(self, cfg) -> str:
        """Which spread the standard errors measure, in words."""
        return f"folds: standard error over the {cfg.folds} cross-validation folds"

    def cell_extras(self, cfg, mine: List[Dict]) -> Dict:
        """Further fields of a main-grid cell, from its records."""
        return {}

    def summary_extras(self, cfg, recs: List[Dict]) -> Dict:
        """Further top-level fields of ``results.json``."""
        return {}

    def choices(self, cfg) -> Dict[str, str]:
        """Where the paper is silent: ``{setting: what this run did}``."""
        return {}

    def summarize(self, cfg, run_dir: str) -> Dict:
        recs = self.records(cfg, run_dir)
        self.write_folds_csv(recs, run_dir)
        grids: Dict[str, List[Dict]] = {key: [] for key in ("cells", *self.extra_grids)}
        for row in self.rows(cfg):
            for col in self.columns(cfg):
                mine = [r for r in recs if r["row"] == row and r["column"] == col]
                for key, metric in (("cells", self.metric), *self.extra_grids.items()):
                    stats = cell_stats(mine, key=metric, paper=self.paper_value(row, col, metric))
                    extras = self.cell_extras(cfg, mine) if key == "cells" else {}
                    grids[key].append({"row": row, "column": col, **stats, **extras})
        return {"format": RESULTS_FORMAT, "table": self.name, "title": self.title, "config_hash": run_hash(cfg),
                "metric": self.metric, "unit": "%", "rows": self.rows(cfg), "columns": self.columns(cfg),
                "se_covers": self.se_covers(cfg), **grids, "paired": self.paired(cfg, recs),
                **self.summary_extras(cfg, recs), "choices": self.choices(cfg)}

    def write_folds_csv(self, recs: List[Dict], run_dir: str) -> None:
        """``folds.csv``: one row per record (per epoch with ``csv_epoch_columns``), sorted by the key columns."""
        from .runner import write_text

        buf = io.StringIO()
        w = csv.writer(buf)
        keys, per_epoch = list(self.csv_key_columns), bool(self.csv_epoch_columns)
        w.writerow(keys + (["epoch", *self.csv_epoch_columns] if per_epoch
                           else [*self.csv_columns, *(f"final_{k}" for k in self.csv_final_columns)]))
        for r in sorted(recs, key=lambda r: tuple(r[k] for k in keys)):
            first = [r[k] for k in keys]
            if per_epoch:
                for i, ep in enumerate(r["epochs"]):
                    w.writerow(first + [ep] + [r[k][i] for k in self.csv_epoch_columns])
            else:
                w.writerow(first + [r.get(c) for c in self.csv_columns]
                           + [r[k][-1] if r.get(k) else "" for k in self.csv_final_columns])
        write_text(os.path.join(run_dir, "folds.csv"), buf.getvalue(), root=run_dir)

    # ---------------------------------------------------------------------------------------- report
    def report_intro(self, cfg, results: Dict) -> List[str]:
        """What a cell of the main table shows (the lines under the report's header)."""
        return []

    def report_sections(self, cfg, results: Dict) -> List[str]:
        """The table's own sections, after the distance from the paper."""
        return []

    def per_draw_table(self, results: Dict) -> List[str]:
        """Each cell per draw, where there are several: mean ± SE over its folds (majority-class rate)."""
        n = max((len(c["draws"]) for c in results["cells"]), default=0)
        if n < 2:
            return []
        rows = [[c["row"], c["column"]] + [f"{fmt_num(d['mean'])} ± {fmt_num(d['se_folds'], 2)} (maj "
                                           f"{fmt_num(d['majority_rate'])})" for d in c["draws"]] for c in results["cells"]]
        return [f"## Per {self.draw_name}", "", "Mean over folds ± SE over folds (majority-class rate).", "",
                markdown_table(["row", "column"] + [f"{self.draw_name} {d}" for d in range(n)], rows), ""]

    def paired_section(self, results: Dict) -> List[str]:
        """The paired comparisons (:mod:`.paired`) beside the paper's, with their verdicts (:mod:`.verdict`)."""
        paired = results.get("paired") or {}
        comps = paired.get("comparisons") or []
        if not comps:
            return []
        several = len(self.metrics_compared()) > 1
        rows = []
        for c in comps:
            shown = format_comparison(c)
            judged = verdict(c["paper"], c) if c["paper"] is not None else ("no paper value", "-")
            rows.append(([c["metric"]] if several else []) + [c["label"], c["kind"], shown["paper"], shown["ours"],
                                                              shown["interval"], shown["units"], *judged])
        return ["## Paired comparisons", "",
                f"Cell a - cell b, in points, over the units both cells share. Units: {paired['units']}. *ours*: mean paired difference ± its standard error; the "
                f"{100 * paired['confidence']:g}% t interval; *a > b / a < b / tie* over the paired "
                "units (excluded: a diverged or non-finite model). The verdicts follow the rules of "
                "`actadapt.experiments.verdict`, quoted in full by `actadapt report --status` (docs/REPRODUCTION.md).",
                "",
                markdown_table((["metric"] if several else []) + ["a - b", "claim", "paper", "ours", "interval",
                                                                 "a > b / a < b / tie", "verdict", "reason"], rows), ""]

    def stuck_note(self, results: Dict) -> List[str]:
        """A note on the cells whose final training error (``final_train_error``, %) is still within 5 points of
        the majority-class error: they had not left chance level, rather than learned a poor model."""
        stuck = [f"{c['row']}/{c['column']} ({fmt_num(c['final_train_error'])}%)" for c in results["cells"]
                 if c.get("final_train_error") is not None and c.get("majority_rate") is not None
                 and c["final_train_error"] > 95.0 - c["majority_rate"]]
        if not stuck:
            return []
        return [f"Not started: the training error of {', '.join(stuck)} was still near the majority-class error in "
                "the last epoch: these cells had not left chance level, rather than converged to a poor model."
                + (f" {self.stuck_reason}" if self.stuck_reason else ""), ""]

    def format_cell(self, cells: Dict, row: str, col: str, grid: str = "cells") -> str:
        """A cell: our mean ± our SE (when there are several units) (the paper's value, if it has one)."""
        c = cells[grid][(row, col)]
        spread = f" ± {fmt_num(c['se'], 2)}" if (c.get("n") or 0) > 1 else ""
        return f"{fmt_num(c['mean'], self.digits)}{spread}" + ("" if c["paper"] is None else f" ({fmt_num(c['paper'])})")

    def grid_table(self, results: Dict, cell, extra: Tuple[str, object] = None) -> str:
        """A markdown table of ``cell(row, col)`` over the results' rows and columns (and ``extra``: a
        ``(header, row -> text)`` column after the row label)."""
        head = [self.row_title] + ([extra[0]] if extra else []) + results["columns"]
        return markdown_table(head, [[r] + ([extra[1](r)] if extra else []) + [cell(r, c) for c in results["columns"]]
                                     for r in results["rows"]])

    def report(self, cfg, run_dir: str, results: Dict) -> str:
        figures = self.figures(cfg, run_dir)
        cells = {key: {(c["row"], c["column"]): c for c in results[key]} for key in ("cells", *self.extra_grids)}
        several = any((c.get("n") or 0) > 1 for c in results["cells"])
        maj = [c["majority_rate"] for c in results["cells"] if c["majority_rate"] is not None]
        majority = ("majority", lambda r: fmt_num(cells["cells"][(r, results["columns"][0])]["majority_rate"]))
        lines = [f"# {self.title}", "",
                 f"Preset `{results.get('preset')}`, config hash `{results['config_hash']}`"
                 + ("" if results.get("complete", True) else " — **incomplete run: only the finished tasks are counted**"),
                 "", *self.report_intro(cfg, results), "",
                 self.grid_table(results, lambda r, c: self.format_cell(cells, r, c),
                                 majority if self.majority_column else None), "",
                 f"Standard error: {results['se_covers']}."
                 + ("" if self.majority_column else " Majority-class rate of the test sets: "
                    + (f"{fmt_num(mean_se(maj)[0])}%." if maj else "n/a.")), "",
                 "Distance from the paper: ours - paper, in points" + (" and in our standard errors." if several else "."),
                 ""]
        for key in self.distance_grids:
            if len(self.distance_grids) > 1:
                lines += [f"{results[key][0]['metric'] if results[key] else key}:", ""]
            lines += [self.grid_table(results, lambda r, c: _distance(cells[key][(r, c)], self.digits, several)), ""]
        for key, caption in self.extra_tables.items():
            lines += [caption, "", self.grid_table(results, lambda r, c: self.format_cell(cells, r, c, key)), ""]
        lines += self.stuck_note(results) + self.per_draw_table(results) + self.paired_section(results)
        lines += self.report_sections(cfg, results)
        lines += choices_and_figures_markdown(results["choices"], figures, "finished tasks")
        return "\n".join(lines)

    # --------------------------------------------------------------------------------------- figures
    def figures(self, cfg, run_dir: str):
        """Write the table's figures into ``figures/`` (:meth:`draw_figures`); ``[(caption, relpath)]``."""
        saver = figure_saver(run_dir)
        recs = plottable(self.records(cfg, run_dir))
        if saver is None or not recs:
            return []
        plt, save, made = saver
        self.draw_figures(cfg, recs, plt, save)
        return made

    def draw_figures(self, cfg, recs: List[Dict], plt, save) -> None:
        """Draw the figures from the (finite) records: ``save(fig, file_name, caption)`` writes each."""


def csv_float(text: str):
    """A number of ``folds.csv`` (``None`` for an empty field: a value that was missing or non-finite)."""
    return float(text) if text else None


def _distance(c: Dict, digits: int, several: bool) -> str:
    """ours - paper, and in our standard errors when there are several units."""
    if c["diff"] is None:
        return "n/a"
    if not several:
        return f"{c['diff']:+.{digits}f}"
    return f"{c['diff']:+.{digits}f} " + ("(n/a: SE 0)" if c["diff_in_se"] is None else f"({c['diff_in_se']:+.1f} SE)")
