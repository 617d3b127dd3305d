"""What ``--executor ray`` costs on one machine: Table 1's smoke preset through the sequential executor and
through a local Ray instance, side by side, and where Ray's time goes.

    python benchmarks/bench_ray_overhead.py [--reps 2] [--set key=value ...]

1. The whole command, ``actadapt reproduce table1 --preset smoke`` (eager backend, a fresh run folder each
   time), interleaved in each repetition: ``--workers 1`` (the tasks one after another in the driver) and
   ``--executor ray`` (a local Ray instance started and stopped by the run, as many tasks in flight as it
   has CPUs). Printed: the median wall time of the command and of its training phase (the runner's
   ``training:`` line, which includes starting and stopping the instance).
2. The Ray executor alone, one task in flight (``workers=1``), on the same tasks: the time to start the local
   instance and join it; the first task's time beyond its own training (a worker process starting and
   importing torch and actadapt); the median of the later tasks' time beyond their training (submission,
   the result shipped back, its files written into the run folder); the time to stop the instance.

Differences and ratios measured in one run are what to compare: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {"sequential": ["--workers", "1"], "ray": ["--executor", "ray"]}


def run_command(args, sets, folder):
    cmd = [sys.executable, "-m", "actadapt", "reproduce", "table1", "--preset", "smoke", "--out", folder,
           "--set", "backend=eager", *sets, *args]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stdout}{res.stderr}")
    training = float(re.search(r"^training: ([0-9.]+) s$", res.stdout, re.M).group(1))
    return wall, training


def executor_timeline(overrides, folder):
    """``(start, first task's extra, later tasks' median extra, stop)`` in seconds, from a RayExecutor run."""
    from actadapt.experiments.config import config_to_dict, resolve_config
    from actadapt.experiments.executors import Job
    from actadapt.experiments.ray_executor import RayExecutor
    from actadapt.experiments.registry import get_experiment

    exp = get_experiment("table1")
    cfg = resolve_config(exp.config_class, exp.presets["smoke"], {"backend": "eager", **overrides})
    jobs = [Job(exp.name, config_to_dict(cfg), t.id, t.params, tuple(t.outputs), folder)
            for t in exp.tasks(cfg)]
    marks = {}
    executor = RayExecutor(workers=1, log=lambda line: marks.setdefault("joined", time.perf_counter()))
    t0 = last = time.perf_counter()
    extra = []
    results = executor.run(jobs)
    for _, seconds in results:
        now = time.perf_counter()
        extra.append(now - last - seconds)
        last = now
        if len(extra) == len(jobs):
            break
    t_stop = time.perf_counter()
    for _ in results:  # the generator stops the instance on its way out
        pass
    executor.shutdown()
    stop = time.perf_counter() - t_stop
    start = marks["joined"] - t0
    return start, extra[0] - start, statistics.median(extra[1:]), stop


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    sets = [x for kv in a.sets for x in ("--set", kv)]
    from actadapt.experiments.config import parse_overrides

    overrides = parse_overrides(a.sets)
    times = {name: [] for name in COMMANDS}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as root:
        for rep in range(a.reps):
            for name, args in COMMANDS.items():
                times[name].append(run_command(args, sets, os.path.join(root, f"{rep}-{name}")))
        parts = [executor_timeline(overrides, os.path.join(root, f"executor-{rep}")) for rep in range(a.reps)]
    print(f"Table 1 smoke{' ' + ' '.join(a.sets) if a.sets else ''}, {os.cpu_count()} CPUs, "
          f"median of {a.reps} (seconds):")
    print(f"  {'':12}{'command':>10}{'training':>10}")
    med = {name: tuple(statistics.median(x) for x in zip(*runs)) for name, runs in times.items()}
    for name, (wall, training) in med.items():
        print(f"  {name:12}{wall:10.1f}{training:10.1f}")
    print(f"  ray / sequential, whole command: {med['ray'][0] / med['sequential'][0]:.2f}x")
    start, first, later, stop = (statistics.median(x) for x in zip(*parts))
    print(f"  Ray executor, one task in flight: start and join the local instance {start:.1f} s; first task "
          f"+{first:.1f} s (its worker starts); each later task +{later:.3f} s; stop {stop:.1f} s")


if __name__ == "__main__":
    main()
