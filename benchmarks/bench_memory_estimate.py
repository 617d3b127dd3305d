"""The runner's memory estimate of a task against the peak memory the task really takes.

    python benchmarks/bench_memory_estimate.py [--data-dir DATA] [--case table1:quick:epochs=1 ...]

For each case (``TABLE:PRESET[:key=value,...]``) it runs the first task of the table in a fresh process
(exactly as a pool worker does: :func:`actadapt.experiments.executors.execute_job`, into a temporary run
folder) and reads that process's peak resident memory (``ru_maxrss``). It prints the peak beside the
runner's estimate (``WORKER_BASE`` + the table's ``memory_estimate``): the estimate should be the larger
(conservative), and not by an order of magnitude. Run on demand; no asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

DEFAULT_CASES = ["table1:smoke", "table1:quick:epochs=1", "table1:paper:epochs=1,depths=1,draws=1",
                 "table2:smoke", "table3:smoke", "table3:quick:epochs=1", "table4:smoke", "table4:quick:epochs=1"]

CHILD = r"""
import json, resource, sys
from actadapt.experiments.config import resolve_config
from actadapt.experiments.executors import Job, execute_job
from actadapt.experiments.registry import get_experiment, get_preset
table, preset, overrides, data_dir, out = json.loads(sys.argv[1])
exp = get_experiment(table)
layers = [get_preset(exp, preset), overrides] + ([{"data_dir": data_dir}] if exp.needs_data else [])
cfg = resolve_config(exp.config_class, *layers)
from actadapt.experiments.config import config_to_dict
task = exp.tasks(cfg)[0]
execute_job(Job(exp.name, config_to_dict(cfg), task.id, task.params, tuple(task.outputs), out))
print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "task": task.id}))
"""


def _parse(case: str):
    table, preset, *rest = case.split(":")
    overrides = dict(kv.split("=", 1) for kv in rest[0].split(",")) if rest else {}
    return table, preset, overrides


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("ACTADAPT_DATA", ""))
    ap.add_argument("--case", action="append", help="TABLE:PRESET[:key=value,...] (repeatable)")
    args = ap.parse_args()

    from actadapt.experiments.config import resolve_config
    from actadapt.experiments.registry import get_experiment, get_preset
    from actadapt.experiments.resources import WORKER_BASE, fmt_bytes

    print(f"{'case':48} {'task':22} {'peak RSS':>10} {'estimate':>10} {'ratio':>6}")
    for case in args.case or DEFAULT_CASES:
        table, preset, overrides = _parse(case)
        exp = get_experiment(table)
        layers = [get_preset(exp, preset), overrides] + ([{"data_dir": args.data_dir}] if exp.needs_data else [])
        estimate = WORKER_BASE + exp.memory_estimate(resolve_config(exp.config_class, *layers)).bytes
        with tempfile.TemporaryDirectory() as out:
            payload = json.dumps([table, preset, overrides, args.data_dir, out])
            res = subprocess.run([sys.executable, "-c", CHILD, payload], capture_output=True, text=True)
        if res.returncode:
            print(f"{case:48} failed: {res.stderr.strip().splitlines()[-1]}")
            continue
        got = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"{case:48} {got['task']:22} {fmt_bytes(got['peak']):>10} {fmt_bytes(estimate):>10} "
              f"{estimate / got['peak']:6.2f}")


if __name__ == "__main__":
    main()
