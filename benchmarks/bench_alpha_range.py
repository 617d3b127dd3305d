"""Speed of the fused CPU kernel across the range of alpha and x: it should not depend on them.

    python benchmarks/bench_alpha_range.py [--reps 15] [--threads 1] [--dtype float32] [--x-scales 1,100]
    ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_alpha_range.py ...   # torch's kernels and ours at AVX2

Where alpha |x| is large, e^{-alpha |x|} falls below the smallest normal float32 (1.2e-38, from alpha |x| = 87.3),
and x86 cores run each vector instruction that has a subnormal input or result lane through a microcode assist,
a hundred cycles or more. This times, per family (adaptive Gumbel, adaptive ReLU, Swish, through the fused
operator), forward + backward with gradients for x and alpha on a conv-shaped tensor (64, 32, 28, 28),
x ~ N(0, 1) times each x scale, per-channel alpha all set to each value in {1e-3, 1, 10, 100, 1000}. Every case
runs once in each repetition, in a shuffled order (so that the shared machine's noise falls on all of them
alike), and the table gives the median time and its ratio to alpha = 1 at the first x scale. It prints the CPU
capability that ran, and whether Python's own arithmetic still keeps subnormals before and after (the kernel
never changes the caller's flush-to-zero mode).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

import actadapt
from actadapt import functional as AF

FAMILIES = {"gumbel": AF.adaptive_gumbel, "relu": AF.adaptive_relu, "swish": AF.swish}
ALPHAS = (1e-3, 1.0, 10.0, 100.0, 1000.0)


def kernel_capability() -> str:
    from actadapt.kernels import cpu

    module = cpu.load()
    return "not built (no C++ compiler?)" if module is None else module.capability


def python_keeps_subnormals(tiny: float = 1e-300) -> bool:
    """True unless this thread flushes subnormals to zero (torch.set_flush_denormal(True)). The product is
    computed at run time (a constant expression would be folded when the file is compiled)."""
    return tiny * 1e-10 != 0.0


def bench(reps: int, dtype: torch.dtype, x_scales: list[float], families: list[str]) -> None:
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 32, 28, 28, generator=g, dtype=torch.float64)
    grad = torch.randn(x0.shape, generator=g, dtype=torch.float64).to(dtype)
    cases = [(s, a) for s in x_scales for a in ALPHAS]
    inputs = {s: (x0 * s).to(dtype) for s in x_scales}
    runs = {}
    for name in families:
        fn = FAMILIES[name]
        for s, a in cases:
            alpha = torch.full((32, 1, 1), a, dtype=dtype)

            def step(fn=fn, x=inputs[s], alpha=alpha):
                xr, ar = x.detach().requires_grad_(), alpha.detach().requires_grad_()
                y = fn(xr, ar)
                y.backward(grad)

            runs[(name, s, a)] = step
    for step in runs.values():  # warm up: allocations
        step()
    times = {k: [] for k in runs}
    order = list(runs)
    for rep in range(reps):
        random.Random(rep).shuffle(order)  # no case always runs first, or after the same one
        for key in order:
            t0 = time.perf_counter()
            runs[key]()
            times[key].append(time.perf_counter() - t0)
    print(f"\nforward+backward, {str(dtype).replace('torch.', '')} (64,32,28,28), alpha (32,1,1), "
          f"{reps} interleaved reps: median ms, and its ratio to alpha = 1 at x scale {x_scales[0]:g}")
    header = "".join(f"{f'alpha={a:g}':>14}" for a in ALPHAS)
    for name in families:
        base = statistics.median(times[(name, x_scales[0], 1.0)])
        print(f"  {name:<8}{'x scale':>8}{header}")
        for s in x_scales:
            medians = [statistics.median(times[(name, s, a)]) for a in ALPHAS]
            print(f"  {'':<8}{s:>8g}" + "".join(f"{m * 1e3:8.1f} {m / base:4.2f}x" for m in medians))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--x-scales", default="1,100", help="comma-separated factors for x ~ N(0, 1)")
    parser.add_argument("--families", default="gumbel,relu,swish")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    actadapt.set_backend("native")
    families = [f.strip() for f in args.families.split(",")]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; valid: {', '.join(FAMILIES)}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, actadapt {actadapt.__version__}")
    print(f"CPU capability: torch {torch.backends.cpu.get_cpu_capability()}, actadapt kernel {kernel_capability()}")
    before = python_keeps_subnormals()
    bench(args.reps, getattr(torch, args.dtype), [float(s) for s in args.x_scales.split(",")], families)
    after = python_keeps_subnormals()
    print(f"caller keeps subnormals before/after: {before}/{after}")


if __name__ == "__main__":
    main()
