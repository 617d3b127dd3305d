"""The ``actadapt`` command (also ``python -m actadapt``).

::

    actadapt reproduce table1 --preset quick --out runs/table1 [--seed N] [--workers N]
                              [--executor local|ray] [--address ADDR]
                              [--data-dir PATH] [--config FILE.yaml] [--set key=value ...]
    actadapt plan table1 --preset paper [--workers N] [--probe-steps N] [--json]
                              [--data-dir PATH] [--config FILE.yaml] [--set key=value ...]
                                         # tasks, trainings, CPU-hours here; trains nothing, writes nothing
    actadapt report runs/table1          # rebuild results.json, report.md, figures; no training
    actadapt report --status RUN [RUN ...] [--out docs/REPRODUCTION.md] [--archive docs/runs]
                                         # the paper's claims as paired differences, with verdicts
    actadapt list                        # tables, each preset's resolved values, config keys
    actadapt demo                        # a few seconds of training, prints the fitted alphas
    actadapt --version

Bad input prints one line ``actadapt: error: ...`` naming the problem and the valid choices, exit code 2.
A run stopped by Ctrl-C, SIGTERM or SIGHUP stops its workers and prints one line, exit code 128 + the signal
(130 for Ctrl-C); a worker process that died prints one line, exit code 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from . import __version__

__all__ = ["main"]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage dump) and does not exit, so ``main`` can return 2."""

    def error(self, message):  # type: ignore[override]
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _add_executor_options(p: argparse.ArgumentParser) -> None:
    """``--workers``, ``--executor`` and ``--address``: where the tasks of a run go (any command that runs
    or sizes tasks takes the same three)."""
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="local: parallel worker processes (default: the number of CPUs, at most the number of "
                        "tasks and what memory allows; 1 runs the tasks in this process); ray: most tasks at "
                        "once (default: what the cluster holds)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: this machine (default); ray: one Ray task per task, on a Ray cluster "
                        "(pip install 'actadapt[ray]')")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="ray: the cluster to join, HOST:PORT of its head or 'auto' (the one running on this "
                        "machine); default: $RAY_ADDRESS, else a local Ray instance started for this run and "
                        "stopped at its end")


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """The table and what resolves its config: any command that runs or sizes a table takes the same."""
    p.add_argument("table", help="which table, e.g. table1 (see `actadapt list`)")
    p.add_argument("--preset", default="quick",
                   help="smoke | quick | study | paper (default: quick; see `actadapt list`)")
    p.add_argument("--seed", type=_int, default=None, help="base seed (default: the config's, 0)")
    p.add_argument("--data-dir", default=None, help="data root (default: $ACTADAPT_DATA); unused by table1")
    p.add_argument("--config", default=None, help="YAML or JSON file of config overrides")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable), e.g. --set epochs=10 --set students=Sig,AGumb")


def _config_layers(args) -> dict:
    """The keyword arguments of :func:`.experiments.runner.resolve_run` from the parsed options."""
    from .experiments.config import load_config_file, parse_overrides

    return dict(seed=args.seed, overrides=parse_overrides(args.overrides), data_dir=args.data_dir,
                config_file=load_config_file(args.config) if args.config else None)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="actadapt", description="Adaptive activation functions: reproduce the paper's tables.")
    p.add_argument("--version", action="version", version=f"actadapt {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("reproduce", help="run (or resume) a table of the paper into a run folder")
    _add_config_options(r)
    r.add_argument("--out", default=None, help="run folder (default: runs/TABLE-PRESET); rerun to resume")
    _add_executor_options(r)

    pl = sub.add_parser("plan", help="list a run's tasks and estimate its CPU-hours on this machine, from a "
                                     "short timing probe of each kind of task; trains nothing, writes nothing",
                        description="What `actadapt reproduce` with the same settings would train, and what it "
                                    "would cost here: the tasks and trainings, and CPU-hours, wall time and memory "
                                    "extrapolated from the first steps of one task of each kind (run in a scratch "
                                    "folder that is deleted). Use it to decide whether a run needs a cluster.")
    _add_config_options(pl)
    pl.add_argument("--workers", type=_positive_int, default=None,
                    help="workers of the wall-time estimate (default: as many as reproduce would start here)")
    pl.add_argument("--probe-steps", type=_positive_int, default=None, metavar="N",
                    help="optimiser steps each probe times before it skips to the epoch's end (default: 30; "
                         "the first 5 are left out as warm-up)")
    pl.add_argument("--json", action="store_true", help="print the plan as JSON")

    rep = sub.add_parser("report", help="rebuild results.json, report.md and figures from a run folder; with "
                                        "--status, the reproduction status of the paper's claims over run folders")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN", help="run folder (with --status: one or more)")
    rep.add_argument("--status", action="store_true",
                     help="write the reproduction status document of the runs: each claim of the paper as a paired "
                          "difference, beside the paper's, with a verdict (reads config.json, results.json and "
                          "folds.csv of each run; writes nothing into them)")
    rep.add_argument("--out", default=None, metavar="FILE",
                     help="--status: write the document here (e.g. docs/REPRODUCTION.md; a file only this command "
                          "wrote is overwritten); default: print it")
    rep.add_argument("--archive", default=None, metavar="DIR",
                     help="--status: also copy each run's three files into DIR/<table>-<preset>/ (e.g. docs/runs), "
                          "so the document can be regenerated from them")

    sub.add_parser("list", help="list the tables, their presets and config keys")

    d = sub.add_parser("demo", help="train a small network with adaptive activations for a few seconds")
    d.add_argument("--seed", type=_int, default=0)
    d.add_argument("--epochs", type=_positive_int, default=20)
    return p


def _cmd_list() -> None:
    from .experiments import available_experiments, get_experiment
    from .experiments.registry import describe

    for name in available_experiments():
        try:
            print("\n".join(describe(get_experiment(name))))
        except Exception as err:  # one broken table must not hide the others
            print(f"{name}: cannot be loaded ({type(err).__name__}: {err})")


def _cmd_plan(args) -> None:
    import json

    from .experiments import plan

    found = plan.make_plan(
        args.table, args.preset, **_config_layers(args), workers=args.workers,
        steps=args.probe_steps or plan.PROBE_STEPS,
        log=lambda line: print(line, file=sys.stderr),  # stdout holds the plan alone (--json)
    )
    print(json.dumps(found.to_dict(), indent=1) if args.json else plan.format_plan(found))


def _print_table(results: dict) -> None:
    """Print the main table and any further metric tables (``cells_<metric>``, e.g. Table 4's recall)."""
    from .experiments.report import fmt_num

    extra = [(key[len("cells_"):], value) for key, value in results.items() if key.startswith("cells_") and value]
    tables = [(results.get("metric", "") if extra else "", results["cells"])] + extra
    cols = results["columns"]
    for metric, table in tables:
        cells = {(c["row"], c["column"]): c for c in table}
        print(f"{results['title']}{': ' + metric if metric else ''}: ours ± SE (when there are several runs) [paper]")
        print("  " + f"{'':10}" + "".join(f"{c:>22}" for c in cols) + f"{'majority':>10}")
        for row in results["rows"]:
            line = f"  {row:10}"
            for c in cols:
                cell = cells[(row, c)]
                spread = f" ± {fmt_num(cell['se'], 2)}" if (cell.get("n") or 0) > 1 else ""  # no SE from one run
                line += f"{fmt_num(cell['mean']) + spread + ' [' + fmt_num(cell['paper']) + ']':>22}"
            line += f"{fmt_num(cells[(row, cols[0])].get('majority_rate')):>10}"
            print(line)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = None
    try:
        args = _parser().parse_args(argv)
        command = args.command
        if args.command == "reproduce":
            from .experiments.runner import reproduce

            results = reproduce(
                args.table, args.preset, args.out, **_config_layers(args),
                workers=args.workers,  # None: as many as CPUs, tasks and memory allow
                executor=args.executor, address=args.address,
            )
            _print_table(results)
        elif args.command == "plan":
            _cmd_plan(args)
        elif args.command == "report" and args.status:
            from .experiments.status import report_status

            report_status(args.run_dirs, out=args.out, archive=args.archive)
        elif args.command == "report":
            from .experiments.runner import rebuild_report

            if len(args.run_dirs) > 1 or args.out or args.archive:
                raise _UsageError("report: several run folders, --out and --archive go with --status (see "
                                  "`actadapt report --help`)")
            _print_table(rebuild_report(args.run_dirs[0]))
        elif args.command == "list":
            _cmd_list()
        elif args.command == "demo":
            from .experiments.demo import run_demo

            run_demo(seed=args.seed, epochs=args.epochs)
        return 0
    except SystemExit as err:  # --help
        return int(err.code or 0)
    except BrokenPipeError:  # output piped into `head` and cut: not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except KeyboardInterrupt as err:  # Ctrl-C, or RunInterrupted for SIGINT/SIGTERM/SIGHUP
        from .experiments.lifecycle import RunInterrupted

        signalled = isinstance(err, RunInterrupted) and err.signame != "SIGINT"
        how = f"stopped by {err.signame}" if signalled else "interrupted"
        what = ("nothing was written (the probes' scratch folder is deleted)" if command == "plan" else
                "rerun the same command to resume (finished folds are kept)")
        print(f"actadapt: {how}; {what}", file=sys.stderr)
        return err.exit_code if isinstance(err, RunInterrupted) else 130
    except MemoryError:
        print("actadapt: error: out of memory; lower the sizes (--set) or --workers, then rerun the same "
              "command to resume (finished folds are kept)", file=sys.stderr)
        return 1
    except _UsageError as err:
        print(f"actadapt: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(f"actadapt: error: {err}; the experiments need: pip install 'actadapt[experiments]'", file=sys.stderr)
        return 2
    except ValueError as err:  # ConfigError and bad values from the library
        print(f"actadapt: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        from .experiments.executors import WorkerDied

        if not isinstance(err, WorkerDied):
            raise
        print(f"actadapt: error: {err}", file=sys.stderr)
        return 1
