"""GPU check of the Triton kernels: the accuracy tests on the GPU, then speed and memory bandwidth.

    python benchmarks/gpu_check.py                 # on a CUDA machine: tests, then 2^26 float32 elements
    python benchmarks/gpu_check.py --skip-tests    # timings only
    python benchmarks/gpu_check.py --interpret     # no GPU: the same code path on CPU tensors through
                                                   # Triton's interpreter, small sizes (checks the script, not speed)

1. Runs ``tests/test_kernels_triton.py`` with ``ACTADAPT_TEST_DEVICE=cuda``: the accuracy contract against the
   mpmath reference, random points, extreme inputs and half precision, on the GPU.
2. Times, for tensors of 2^26 float32 elements in two layouts (conv (256, 64, 64, 64) with one alpha per
   channel; dense (65536, 1024) with one alpha per feature), the fused operator's forward and backward
   against ``F.silu``'s (``aten.silu`` and ``aten.silu_backward``), interleaved, median of ``--reps``, and
   prints the ratio and the bandwidth reached: forward reads x and writes y (8 B/element), backward reads
   grad and x and writes grad_x (12 B/element); alpha and the partial sums are negligible.

Exit status: 0 if the tests pass and every ratio is at most ``--target`` (1.2), 1 otherwise, 2 when there is no
CUDA device (or no Triton) to check.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHAPES = {  # name: (x shape, alpha shape), 2^26 elements each
    "conv (256,64,64,64), alpha (64,1,1)": ((256, 64, 64, 64), (64, 1, 1)),
    "dense (65536,1024), alpha (1024,)": ((65536, 1024), (1024,)),
}
SMALL_SHAPES = {  # --interpret: the same layouts, 2^12 elements
    "conv (4,4,16,16), alpha (4,1,1)": ((4, 4, 16, 16), (4, 1, 1)),
    "dense (16,256), alpha (256,)": ((16, 256), (256,)),
}
KINDS = ("adaptive_gumbel", "adaptive_relu", "swish")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tests", action="store_true", help="only the timings")
    parser.add_argument("--reps", type=int, default=50, help="interleaved repetitions per variant (default 50)")
    parser.add_argument("--target", type=float, default=1.2, help="largest acceptable ratio to F.silu (1.2)")
    parser.add_argument("--test-timeout", type=int, default=240, help="seconds for the accuracy tests (240)")
    parser.add_argument("--interpret", action="store_true",
                        help="no GPU needed: CPU tensors through Triton's interpreter, small sizes")
    return parser.parse_args(argv)


def run_tests(args) -> bool:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "src"), os.environ.get("PYTHONPATH", "")]))
    if args.interpret:
        env.update(ACTADAPT_TEST_DEVICE="cpu", TRITON_INTERPRET="1")
    else:
        env["ACTADAPT_TEST_DEVICE"] = "cuda"
        env.pop("TRITON_INTERPRET", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "slow or not slow",
           "tests/test_kernels_triton.py", "-k", "contract or random or extreme or half"]
    print("gpu_check: " + " ".join(cmd[2:]), flush=True)
    try:
        result = subprocess.run(cmd, cwd=ROOT, env=env, timeout=args.test_timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"gpu_check: the accuracy tests did not finish in {args.test_timeout} s", flush=True)
        return False
    return result.returncode == 0


def _timer(device: str):
    import torch

    if device == "cuda":
        def measure(fn) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) * 1e-3
    else:
        def measure(fn) -> float:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
    return measure


def bench(args) -> bool:
    import torch

    import actadapt
    from actadapt.kernels import cdf_activation_backward
    from actadapt.kernels.ops import _forward_op

    device = "cpu" if args.interpret else "cuda"
    actadapt.set_backend("triton")
    measure = _timer(device)
    shapes = SMALL_SHAPES if args.interpret else SHAPES
    reps = min(args.reps, 3) if args.interpret else args.reps
    ok = True
    if device == "cuda":
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    for title, (x_shape, a_shape) in shapes.items():
        g = torch.Generator(device=device).manual_seed(0)
        x = torch.randn(x_shape, device=device, generator=g) * 3
        a = torch.rand(a_shape, device=device, generator=g) + 0.5
        grad = torch.randn(x_shape, device=device, generator=g)
        variants = {"F.silu": (lambda x=x: torch.ops.aten.silu(x),
                               lambda x=x, grad=grad: torch.ops.aten.silu_backward(grad, x))}
        for kind, name in enumerate(KINDS):
            variants[name] = (lambda x=x, a=a, kind=kind: _forward_op(x, a, kind),
                              lambda x=x, a=a, grad=grad, kind=kind: cdf_activation_backward(grad, x, a, kind))
        for fwd, bwd in variants.values():  # warm up: Triton compiles each kernel once
            fwd(), bwd()
        times = {name: ([], []) for name in variants}
        for _ in range(reps):
            for name, (fwd, bwd) in variants.items():
                times[name][0].append(measure(fwd))
                times[name][1].append(measure(bwd))
        n = x.numel()
        print(f"\n{title}: {n} float32 elements ({n.bit_length() - 1} = log2), median of {reps} interleaved reps")
        print(f"  {'variant':<17}{'fwd ms':>10}{'x silu':>9}{'GB/s':>8}{'bwd ms':>10}{'x silu':>9}{'GB/s':>8}")
        base_f, base_b = (statistics.median(t) for t in times["F.silu"])
        for name, (tf, tb) in times.items():
            mf, mb = statistics.median(tf), statistics.median(tb)
            rf, rb = mf / base_f, mb / base_b
            flag = "" if name == "F.silu" or args.interpret or max(rf, rb) <= args.target else f"  over {args.target}x"
            ok &= not flag
            print(f"  {name:<17}{mf * 1e3:10.3f}{rf:9.2f}{8 * n / mf / 1e9:8.0f}{mb * 1e3:10.3f}{rb:9.2f}"
                  f"{12 * n / mb / 1e9:8.0f}{flag}")
    return ok


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("gpu_check: torch is not installed", file=sys.stderr)
        return 2
    if args.interpret:
        os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check. "
              "Run it on a machine with a GPU, or with --interpret to try the code path on CPU.", file=sys.stderr)
        return 2
    try:
        import triton  # noqa: F401
    except ImportError as err:
        print(f"gpu_check: Triton cannot be imported ({err}); `pip install triton`", file=sys.stderr)
        return 2
    sys.path.insert(0, os.path.join(ROOT, "src"))
    tests_ok = True if args.skip_tests else run_tests(args)
    speed_ok = bench(args)
    if args.interpret:  # interpreter timings say nothing about a GPU's speed
        speed_verdict, speed_ok = "not judged (--interpret)", True
    else:
        speed_verdict = "yes" if speed_ok else "NO"
    print(f"\ngpu_check: accuracy tests {'skipped' if args.skip_tests else 'passed' if tests_ok else 'FAILED'}; "
          f"every ratio <= {args.target}: {speed_verdict}")
    return 0 if tests_ok and speed_ok else 1


if __name__ == "__main__":
    sys.exit(main())
