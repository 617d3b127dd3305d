"""The fused C++ CPU kernel (csrc/activations.cpp), built once per instruction set, and the calls into it.

The source is compiled with ``torch.utils.cpp_extension`` on first use (about a minute, once; cached in
``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``), so ``pip install`` stays pure Python. It is built
for the instruction set that ATen's own kernels use in this process, ``torch.backends.cpu.get_cpu_capability()``:
AVX-512 or AVX2 on x86-64 (the same ``CPU_CAPABILITY`` defines and flags as ATen's builds), the portable
``DEFAULT`` build elsewhere (aarch64 gets NEON through ATen's portable vector type). So
``ATEN_CPU_CAPABILITY=avx2`` switches torch's kernels and this one together. Each build has its own module
name, which carries the capability and a digest of the source, the flags and the torch version, so a stale
build is never loaded. If a build fails, the next narrower one is tried; if none can be built (no C++
compiler, no headers), :func:`load` warns once and returns ``None``, and the reference formulas run instead.

The kernel reads ``x`` in memory order: a channels-last (or any other dense) tensor is walked as it lies, and
the output keeps the input's strides, as eager elementwise operations do.
"""

from __future__ import annotations

import hashlib
import os
import platform
import threading
import warnings
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from .reference import compute_dtype

__all__ = ["capability", "load", "layout", "forward", "backward"]

SOURCE = Path(__file__).with_name("csrc") / "activations.cpp"

# ATen's own flags for its per-capability kernel builds (cmake/Codegen.cmake), narrowest last.
_ISA_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"],
    "AVX2": ["-mavx2", "-mfma", "-mf16c"],
    "DEFAULT": [],
}
_FALLBACK = {"AVX512": "AVX2", "AVX2": "DEFAULT", "DEFAULT": None}

_state: dict = {"module": None, "failed": False}
_lock = threading.Lock()


def capability() -> str:
    """The build this process uses: ``"AVX512"``, ``"AVX2"`` (x86-64, as ATen reports) or ``"DEFAULT"``."""
    cap = torch.backends.cpu.get_cpu_capability()
    if platform.machine().lower() in ("x86_64", "amd64") and cap in ("AVX512", "AVX2"):
        return cap
    return "DEFAULT"


def _openmp() -> bool:
    # at::parallel_for is a header template: it only spreads work over threads when this file is compiled
    # with OpenMP, as libtorch is on Linux builds.
    return "OpenMP" in torch.__config__.parallel_info() and platform.system() == "Linux"


def _cflags(cap: str) -> list[str]:
    flags = ["-O3"] + (["-fopenmp"] if _openmp() else [])
    return flags + _ISA_FLAGS[cap] + [f"-DCPU_CAPABILITY={cap}", f"-DCPU_CAPABILITY_{cap}"]


def module_name(cap: str) -> str:
    """``actadapt_cpu_<capability>_<digest of source, flags and torch version>``."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(" ".join(_cflags(cap) + [torch.__version__]).encode())
    return f"actadapt_cpu_{cap.lower()}_{digest.hexdigest()[:12]}"


def _build(cap: str):
    from torch.utils.cpp_extension import load as build

    return build(
        name=module_name(cap),
        sources=[str(SOURCE)],
        extra_cflags=_cflags(cap),
        extra_ldflags=["-fopenmp"] if _openmp() else [],
        verbose=os.environ.get("ACTADAPT_VERBOSE_BUILD") == "1",
    )


def _first_error_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return next((ln for ln in lines if "error" in ln.lower() and ".cpp" in ln), lines[0] if lines else "")


def load() -> Optional[object]:
    """The compiled extension for :func:`capability`, built on first call; ``None`` if none can be built."""
    if _state["module"] is not None or _state["failed"]:
        return _state["module"]
    with _lock:
        cap: Optional[str] = capability()
        errors = []
        while _state["module"] is None and not _state["failed"] and cap is not None:
            try:
                _state["module"] = _build(cap)
            except Exception as err:  # no compiler, headers or linker, or no support for these flags
                errors.append(f"{cap}: {type(err).__name__}: {_first_error_line(err)}")
                cap = _FALLBACK[cap]
        if _state["module"] is None and not _state["failed"]:
            _state["failed"] = True
            warnings.warn(
                f"actadapt: the fused C++ kernel could not be built ({'; '.join(errors)}); "
                "using the PyTorch formulas instead (same results, slower).",
                RuntimeWarning,
                stacklevel=3,
            )
        elif errors:
            warnings.warn(f"actadapt: built the {cap} kernel instead ({'; '.join(errors)})", RuntimeWarning,
                          stacklevel=3)
    return _state["module"]


# ------------------------------------------------------------------------------------------- layout
def _blocks(dims: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive axis numbers: [0, 1, 3] -> [(0, 1), (3, 3)]."""
    runs: list[tuple[int, int]] = []
    for d in dims:
        if runs and d == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def layout(x_shape: Sequence[int], alpha_shape: Sequence[int]) -> Optional[Tuple[int, int, int, int]]:
    """``(G, M, C, inner)`` for the C++ kernel, or ``None`` when it does not apply.

    ``x`` (contiguous) is read as rows of ``inner`` elements; alpha holds ``G * C`` values and varies along at
    most two blocks of adjacent axes: one block of size ``C`` (per channel, per feature, ...) and optionally an
    earlier block of size ``G`` separated from it by axes of total size ``M`` (e.g. alpha of shape
    ``(models, 1, neurons)`` for a batch of models). Everything else is broadcast.
    """
    x_shape, alpha_shape = list(x_shape), list(alpha_shape)
    if len(alpha_shape) > len(x_shape):
        return None
    a_full = [1] * (len(x_shape) - len(alpha_shape)) + alpha_shape
    if any(a != 1 and a != n for a, n in zip(a_full, x_shape)):
        return None  # x itself is broadcast (e.g. an outer product): the generic path handles it
    keep = [i for i, n in enumerate(x_shape) if n != 1]  # size-1 axes of x join any block
    shape = [x_shape[i] for i in keep]
    varying = [i for i in range(len(keep)) if a_full[keep[i]] != 1]
    blocks = _blocks(varying)
    if len(blocks) > 2:
        return None

    def size(lo: int, hi: int) -> int:
        out = 1
        for n in shape[lo:hi]:
            out *= n
        return out

    if not blocks:
        return 1, 1, 1, size(0, len(shape))
    c_lo, c_hi = blocks[-1]
    G, M = 1, 1
    if len(blocks) == 2:
        g_lo, g_hi = blocks[0]
        G, M = size(g_lo, g_hi + 1), size(g_hi + 1, c_lo)
    return G, M, size(c_lo, c_hi + 1), size(c_hi + 1, len(shape))


def memory_order(strides: Sequence[int]) -> list[int]:
    """The permutation of the axes that lists them outermost first in memory (identity when contiguous)."""
    return sorted(range(len(strides)), key=lambda d: -strides[d])  # stable: size-1 axes keep their place


_plans: dict = {}


def plan(shape: Tuple[int, ...], strides: Tuple[int, ...], alpha_shape: Tuple[int, ...]):
    """``(memory order or None if contiguous, layout)`` for a dense output of these strides, ``None`` if the
    kernel declines. Cached: the same shapes come back every step."""
    key = (shape, strides, alpha_shape)
    if key not in _plans:
        perm = memory_order(strides)
        a_full = [1] * (len(shape) - len(alpha_shape)) + list(alpha_shape)
        lay = layout([shape[d] for d in perm], [a_full[d] for d in perm])
        if len(_plans) >= 4096:
            _plans.clear()
        _plans[key] = None if lay is None else (None if perm == sorted(perm) else perm, lay)
    return _plans[key]


def _in_order(t: Tensor, perm: Optional[list[int]], dtype: torch.dtype) -> Tensor:
    return (t if perm is None else t.permute(perm)).to(dtype).contiguous()


def _alpha_in_order(alpha: Tensor, dim: int, perm: Optional[list[int]], dtype: torch.dtype) -> Tensor:
    if perm is None:
        return alpha.to(dtype).contiguous()
    return _in_order(alpha.reshape([1] * (dim - alpha.dim()) + list(alpha.shape)), perm, dtype)


def forward(module, x: Tensor, alpha: Tensor, kind: int) -> Optional[Tensor]:
    """``sigma(x)`` with ``x``'s strides and dtype, or ``None`` when the kernel does not take this layout."""
    dtype = compute_dtype(x, alpha)
    y = torch.empty_like(x, dtype=dtype)  # x's strides when x is dense (channels-last included)
    found = plan(tuple(y.shape), y.stride(), tuple(alpha.shape))
    if found is None:
        return None
    perm, (G, M, C, inner) = found
    module.forward_out(_in_order(x, perm, dtype), _alpha_in_order(alpha, x.dim(), perm, dtype),
                       y if perm is None else y.permute(perm), kind, G, M, C, inner)
    return y if y.dtype == x.dtype else y.to(x.dtype)


def backward(module, grad: Tensor, x: Tensor, alpha: Tensor, kind: int) -> Optional[Tuple[Tensor, Tensor]]:
    """``(grad_x, grad_alpha)`` in the shapes, dtypes (and, for grad_x, strides) of ``x`` and ``alpha``."""
    dtype = compute_dtype(x, alpha)
    gx = torch.empty_like(x, dtype=dtype)
    found = plan(tuple(gx.shape), gx.stride(), tuple(alpha.shape))
    if found is None:
        return None
    perm, (G, M, C, inner) = found
    alpha_k = _alpha_in_order(alpha, x.dim(), perm, dtype)
    ga = module.backward_out(_in_order(grad, perm, dtype), _in_order(x, perm, dtype), alpha_k,
                             gx if perm is None else gx.permute(perm), kind, G, M, C, inner)  # (G*C,) in alpha_k's order
    if perm is not None:
        ga = ga.reshape(alpha_k.shape).permute(sorted(range(len(perm)), key=perm.__getitem__))
    return (gx if gx.dtype == x.dtype else gx.to(x.dtype)), ga.reshape(alpha.shape).to(alpha.dtype).contiguous()
