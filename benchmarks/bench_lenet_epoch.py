"""One training epoch of Table 2's LeNet5 with adaptive activations in every slot, against ReLU.

    python benchmarks/bench_lenet_epoch.py [--data-dir DATA] [--threads 1] [--repeats 3] [--batches N]
                                           [--models ReLU/ReLU,AReLU/AReLU,AGumb/AGumb] [--backend auto]

Each model (conv activation / FC activation) trains exactly as a cell of ``actadapt reproduce table2`` does:
the training images held in memory as uint8, a shuffled index selection per minibatch of 100 scaled to
[0, 1], SGD lr 0.01, cross-entropy (no evaluation pass). The models are timed in turn within every
repetition (interleaved, so a noisy shared machine slows them alike) and the script prints each model's
median and best epoch time and its ratio to ReLU/ReLU, beside the targets of issue 4: at most 1.10x for
AReLU and 1.25x for AGumb. It also reports the process CPU time (one thread: the time the epoch actually
ran), which a machine shared with other jobs disturbs far less than the wall time. ``--batches N`` times the first N minibatches of each epoch instead of all 500
(50,000 training images after the 10,000 held out); the ratio is what to compare.

Without MNIST (no --data-dir, no $ACTADAPT_DATA) it times random images of the same size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

import actadapt
from actadapt._backend import BACKENDS
from actadapt.experiments.models.lenet import LeNet5

TARGETS = {"AReLU": 1.10, "AGumb": 1.25}


def training_images(data_dir):
    if data_dir:
        from actadapt.experiments.data.mnist import load_mnist

        tr = load_mnist(data_dir)["train"]
        return tr.images[:50_000], tr.labels[:50_000], "MNIST (first 50,000 training images)"
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (50_000, 28, 28), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (50_000,), generator=g), "random 28x28 images (no MNIST found)")


def epoch(model, opt, images, labels, order, batches, batch_size=100):
    model.train()
    for idx in order.split(batch_size)[:batches]:
        x = images[idx].unsqueeze(1).float().div_(255.0)  # (B, 1, 28, 28)
        loss = F.cross_entropy(model(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get("ACTADAPT_DATA"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batches", type=int, default=500, help="minibatches timed per epoch (500: the whole epoch)")
    p.add_argument("--models", default="ReLU/ReLU,AReLU/AReLU,AGumb/AGumb")
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    actadapt.set_backend(args.backend)
    images, labels, what = training_images(args.data_dir)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    models, opts = {}, {}
    for name in names:
        conv, fc = name.split("/")
        torch.manual_seed(0)
        models[name] = LeNet5(conv, fc)
        opts[name] = torch.optim.SGD(models[name].parameters(), lr=0.01)
    # warm-up: builds/loads the fused kernel, allocator, oneDNN primitives
    warm = torch.randperm(images.shape[0])
    for name in names:
        epoch(models[name], opts[name], images, labels, warm, 5)

    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for rep in range(args.repeats):
        order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(rep))
        for name in names:
            t0, c0 = time.perf_counter(), time.process_time()
            epoch(models[name], opts[name], images, labels, order, args.batches)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)

    base = names[0]
    print(f"LeNet5 training epoch ({args.batches} minibatches of 100 of {what}), torch {torch.__version__}, "
          f"{args.threads} thread(s), backend {actadapt.get_backend()}, {args.repeats} interleaved repeats")
    print(f"{'model (conv/fc)':16}{'wall med s':>11}{'ratio':>8}{'wall best s':>12}{'ratio':>8}{'cpu med s':>10}{'ratio':>8}  target (cpu)")
    for n in names:
        acts = set(n.split("/"))
        target = max((TARGETS[a] for a in acts if a in TARGETS), default=None)
        wm, wb, cm = (statistics.median(wall[n]), min(wall[n]), statistics.median(cpu[n]))
        rw, rb, rc = (wm / statistics.median(wall[base]), wb / min(wall[base]), cm / statistics.median(cpu[base]))
        verdict = "" if target is None or n == base else f"<= {target:.2f}x: {'met' if rc <= target else 'NOT met'}"
        print(f"{n:16}{wm:11.2f}{rw:7.3f}x{wb:12.2f}{rb:7.3f}x{cm:10.2f}{rc:7.3f}x  {verdict}")


if __name__ == "__main__":
    main()
