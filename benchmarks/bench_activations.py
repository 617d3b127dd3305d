"""Speed and memory of the adaptive activations against F.silu / F.relu, measured side by side.

    python benchmarks/bench_activations.py [--reps 15] [--threads 2] [--only native] [--skip-lenet] [--skip-compiled-model]
    ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_activations.py ...   # torch's kernels and ours at AVX2

It first prints the CPU capability torch's kernels use and the one actadapt's C++ kernel was built for (they
follow each other: ``ATEN_CPU_CAPABILITY`` switches both). For each shape (a conv activation (128, 32, 28, 28)
with per-channel alpha, and a dense (4096, 1000) with per-feature alpha) it times forward + backward with
gradients for x and alpha, in float32, for

* the baselines ``F.silu`` and ``F.relu``;
* ``naive``: the textbook formula composed from torch ops and differentiated by autograd;
* ``eager``: actadapt's custom autograd Function with the eager backend;
* ``compiled``: the same Function, its pure functions fused by torch.compile (backend "compile");
* ``native``: the fused operator with the C++ kernel (backend "native", what "auto" runs on CPU);

interleaving every variant in each repetition, and prints the median time and its ratio to F.silu. It also
counts the bytes each variant saves for backward (torch.autograd.graph.saved_tensors_hooks). Then it compares
a model of the three modules on the conv tensor run eagerly (the fused operator) and through
``torch.compile(model)`` (default mode, which keeps the operator in its graph). Last, it times a LeNet5-style
training step (batch 100, the activation in all three slots) against the same step with ReLU. Ratios, not
absolute times, are what to compare: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import getpass
import os
import statistics
import tempfile
import time

# torch.compile's on-disk cache (torch 2.13) is not keyed by ATEN_CPU_CAPABILITY: a kernel cached under one
# capability gives wrong results (or corrupts the heap) in a process under another. One cache per capability:
if os.environ.get("ATEN_CPU_CAPABILITY", "").strip():
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(
        tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}_{os.environ['ATEN_CPU_CAPABILITY'].strip().lower()}"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import actadapt  # noqa: E402
from actadapt import functional as AF  # noqa: E402


# ----------------------------------------------------------------------------- the variants
def naive_gumbel(x, a):
    return 1 - (1 + a * torch.exp(x)) ** (-1 / a)


def naive_relu(x, a):
    return torch.where(x > 0, x * (1 - torch.exp(-a * x)), torch.zeros_like(x))


def naive_swish(x, a):
    return x * torch.sigmoid(a * x)


def with_backend(fn, backend):
    def run(x, a):
        actadapt.set_backend(backend)
        return fn(x, a)

    return run


VARIANTS = {
    "F.silu": lambda x, a: F.silu(x),
    "F.relu": lambda x, a: F.relu(x),
}
for name, fn, naive in [("gumbel", AF.adaptive_gumbel, naive_gumbel), ("relu", AF.adaptive_relu, naive_relu),
                        ("swish", AF.swish, naive_swish)]:
    VARIANTS[f"{name} naive"] = naive
    VARIANTS[f"{name} eager"] = with_backend(fn, "eager")
    VARIANTS[f"{name} compiled"] = with_backend(fn, "compile")
    VARIANTS[f"{name} native"] = with_backend(fn, "native")


def step(fn, x, a, grad):
    y = fn(x, a)
    y.backward(grad)


def saved_bytes(fn, x, a) -> int:
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x, a)
    return sum(seen.values())


def bench_shapes(reps: int, only: str = "") -> None:
    shapes = {
        "conv (128,32,28,28), alpha (32,1,1)": ((128, 32, 28, 28), (32, 1, 1)),
        "dense (4096,1000), alpha (1000,)": ((4096, 1000), (1000,)),
    }
    for title, (xshape, ashape) in shapes.items():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(xshape, generator=g).mul_(3).requires_grad_()
        a = torch.rand(ashape, generator=g).add_(0.5).requires_grad_()
        grad = torch.randn(xshape, generator=g)
        variants = {k: v for k, v in VARIANTS.items() if k.startswith("F.") or only in k}
        for fn in variants.values():  # warm up: compile, allocate
            for _ in range(2):
                step(fn, x, a, grad)
        times = {k: [] for k in variants}
        for _ in range(reps):
            for name, fn in variants.items():
                x.grad = a.grad = None
                t0 = time.perf_counter()
                step(fn, x, a, grad)
                times[name].append(time.perf_counter() - t0)
        base, base_min = statistics.median(times["F.silu"]), min(times["F.silu"])
        print(f"\n{title}: forward+backward, float32, {reps} interleaved reps, {x.numel() * 4 / 2**20:.0f} MiB input")
        print(f"  {'variant':<18}{'median ms':>10}{'x F.silu':>10}{'min ms':>9}{'x F.silu':>10}{'saved B/elem':>14}")
        for name, fn in variants.items():
            med, best = statistics.median(times[name]), min(times[name])
            per_elem = saved_bytes(fn, x, a) / x.numel()
            print(f"  {name:<18}{med * 1e3:10.2f}{med / base:10.2f}{best * 1e3:9.2f}{best / base_min:10.2f}{per_elem:14.2f}")
    actadapt.set_backend("auto")


# -------------------------------------------------------------------------- compiled model
def bench_compiled_model(reps: int) -> None:
    """Adaptive activations on the conv tensor, eager (the fused operator) vs torch.compile (default mode): each
    module alone, and a model of all three in sequence (where torch.compile's fixed cost per call, guards and
    its autograd wrapper, is shared as in a real model)."""
    from actadapt import modules as M

    actadapt.set_backend("auto")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 32, 28, 28, generator=g).mul_(3).requires_grad_()
    grad = torch.randn(x.shape, generator=g)
    models = {"AReLU": M.AdaptiveReLU(32), "ASwish": M.AdaptiveSwish(32), "AGumb": M.AdaptiveGumbel(32)}
    models["AReLU>ASwish>AGumb"] = nn.Sequential(M.AdaptiveReLU(32), M.AdaptiveSwish(32), M.AdaptiveGumbel(32))
    runs = {}
    for name, model in models.items():
        runs[f"{name} eager"] = model
        runs[f"{name} compiled"] = torch.compile(model)

    def run(model):
        x.grad = None
        model(x).backward(grad)

    for model in runs.values():  # warm up: compile, then a few steps until allocations settle
        for _ in range(10):
            run(model)
    times = {k: [] for k in runs}
    for _ in range(reps):
        for name, model in runs.items():
            t0 = time.perf_counter()
            run(model)
            times[name].append(time.perf_counter() - t0)
    print(f"\nactivations on the conv tensor (128,32,28,28), forward+backward, float32, {reps} interleaved reps")
    print(f"  {'variant':<28}{'median ms':>10}{'x eager':>9}{'min ms':>9}{'x eager':>9}")
    for name in runs:
        eager = name.rsplit(" ", 1)[0] + " eager"
        med, best = statistics.median(times[name]), min(times[name])
        print(f"  {name:<28}{med * 1e3:10.2f}{med / statistics.median(times[eager]):9.2f}{best * 1e3:9.2f}"
              f"{best / min(times[eager]):9.2f}")


# ------------------------------------------------------------------------------ LeNet5 step
class LeNet5(nn.Module):
    """conv5x5x20 -> BN -> act -> pool -> conv5x5x50 -> BN -> act -> pool -> FC 1000 -> BN -> act -> FC 10."""

    def __init__(self, make_act):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.BatchNorm2d(20), make_act(20), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5), nn.BatchNorm2d(50), make_act(50), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(800, 1000), nn.BatchNorm1d(1000), make_act(1000), nn.Linear(1000, 10)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def lenet_activation_factories():
    from actadapt import modules as M

    return {
        "ReLU": lambda n: nn.ReLU(),
        "AReLU": lambda n: M.AdaptiveReLU(num_parameters=n),
        "ASwish": lambda n: M.AdaptiveSwish(num_parameters=n),
        "AGumb": lambda n: M.AdaptiveGumbel(num_parameters=n),
    }


def bench_lenet(reps: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(100, 1, 28, 28)
    y = torch.randint(0, 10, (100,))
    runs = {}
    for name, make in lenet_activation_factories().items():
        model = LeNet5(make)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def train_step(model=model, opt=opt):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        runs[name] = train_step
    for fn in runs.values():
        for _ in range(3):
            fn()
    times = {k: [] for k in runs}
    for _ in range(reps):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    base, base_min = statistics.median(times["ReLU"]), min(times["ReLU"])
    print(f"\nLeNet5 training step, batch 100, float32, {reps} interleaved reps")
    print(f"  {'activation':<12}{'median ms':>10}{'x ReLU':>9}{'min ms':>9}{'x ReLU':>9}")
    for name in runs:
        med, best = statistics.median(times[name]), min(times[name])
        print(f"  {name:<12}{med * 1e3:10.2f}{med / base:9.2f}{best * 1e3:9.2f}{best / base_min:9.2f}")


def kernel_capability() -> str:
    from actadapt.kernels import cpu

    module = cpu.load()
    return "not built (no C++ compiler?)" if module is None else module.capability


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-lenet", action="store_true")
    parser.add_argument("--skip-compiled-model", action="store_true")
    parser.add_argument("--only", default="", help="keep only variants whose name contains this (e.g. native)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, actadapt {actadapt.__version__}")
    print(f"CPU capability: torch {torch.backends.cpu.get_cpu_capability()}, actadapt kernel {kernel_capability()}")
    bench_shapes(args.reps, args.only)
    if not args.skip_compiled_model:
        bench_compiled_model(args.reps)
    if not args.skip_lenet:
        bench_lenet(args.reps * 4)


if __name__ == "__main__":
    main()
