"""Batched trainer vs one model at a time, at equal settings (Table 1 students).

    .venv/bin/python benchmarks/bench_batched_trainer.py [--depth 8] [--draws 3] [--epochs 2] [--loop-models 8]

Trains one Table-1 row (4 student activations x 5 folds x draws) with ``train_batched`` in one go, and
``--loop-models`` of the same students one at a time, both with the reference trainer ``train_single``
(nn.Linear + torch.optim.SGD) and with ``train_batched`` on a single model; prints seconds per model and the
speed-up. No timed asserts: run on demand.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import actadapt
from actadapt.experiments.data.simulation import make_dataset
from actadapt.experiments.models.students import StudentSpec, TrainSettings, train_batched, train_single


def specs_for_row(depth: int, draws: int, n: int, folds: int = 5):
    out = []
    for d in range(draws):
        X, y, _ = make_dataset(d, n_samples=n, depth=depth, activation="ReLU")
        for f in range(folds):
            te = torch.arange(f, n, folds)
            tr = torch.tensor([i for i in range(n) if i % folds != f], dtype=torch.long)
            for a in ("Sig", "AGumb", "ReLU", "AReLU"):
                out.append(StudentSpec(a, 10 * d + f, 20 * d + f, X[tr], y[tr], X[te], y[te]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--loop-models", type=int, default=8, help="models timed one at a time (per-model time is extrapolated)")
    p.add_argument("--backend", default=os.environ.get("ACTADAPT_BACKEND", "eager"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    actadapt.set_backend(args.backend)
    torch.set_num_threads(args.threads)
    specs = specs_for_row(args.depth, args.draws, args.n_samples)
    settings = TrainSettings(depth=args.depth, epochs=args.epochs)
    steps = args.epochs * -(-specs[0].X_train.shape[0] // settings.batch_size)
    print(f"depth {args.depth}, {len(specs)} students (4 activations x 5 folds x {args.draws} draws), "
          f"{steps} SGD steps each, batch {settings.batch_size}, backend {args.backend}, {args.threads} thread(s)")

    # warm-up (allocations, and compilation for the compiled backends)
    train_batched(specs[:4], TrainSettings(depth=args.depth, epochs=1))
    train_single(specs[1], TrainSettings(depth=args.depth, epochs=1))

    t0 = time.perf_counter()
    train_batched(specs, settings)
    batched = time.perf_counter() - t0
    print(f"batched, all {len(specs)} together: {batched:8.2f} s  = {1e3 * batched / len(specs):8.1f} ms per model")

    loop = specs[: args.loop_models]  # every activation in equal share (specs cycle through the 4)
    t0 = time.perf_counter()
    for s in loop:
        train_single(s, settings)
    single = (time.perf_counter() - t0) / len(loop)
    t0 = time.perf_counter()
    for s in loop:
        train_batched([s], settings)
    alone = (time.perf_counter() - t0) / len(loop)
    per_model = batched / len(specs)
    print(f"one at a time, train_single (nn.Linear + SGD): {1e3 * single:8.1f} ms per model -> speed-up {single / per_model:5.1f}x")
    print(f"one at a time, train_batched on 1 model:       {1e3 * alone:8.1f} ms per model -> speed-up {alone / per_model:5.1f}x")


if __name__ == "__main__":
    main()
