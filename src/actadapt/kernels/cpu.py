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

The kernel reads ``x`` in memory order (:mod:`.layout`): a channels-last (or any other dense) tensor is walked
as it lies, and the output keeps the input's strides, as eager elementwise operations do.
"""

from __future__ import annotations

import hashlib
import os
import platform
import threading
import warnings
from pathlib import Path
from typing import Optional, Tuple

import torch
from torch import Tensor

from .layout import plan
from .reference import compute_dtype

__all__ = ["capability", "load", "forward", "backward"]

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


def _cflags(cap: str, defines: Tuple[str, ...] = ()) -> list[str]:
    flags = ["-O3"] + (["-fopenmp"] if _openmp() else [])
    flags += _ISA_FLAGS[cap] + [f"-DCPU_CAPABILITY={cap}", f"-DCPU_CAPABILITY_{cap}"]
    return flags + [f"-D{d}" for d in defines]


def module_name(cap: str, defines: Tuple[str, ...] = ()) -> str:
    """``actadapt_cpu_<capability>_<digest of source, flags and torch version>``."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(" ".join(_cflags(cap, defines) + [torch.__version__]).encode())
    return f"actadapt_cpu_{cap.lower()}_{digest.hexdigest()[:12]}"


def _build(cap: str, defines: Tuple[str, ...] = ()):
    """Build (or load from the cache) the kernel for ``cap``. ``defines`` are extra preprocessor macros, for the
    tests' variants: ``ACTADAPT_KEEP_SUBNORMALS`` builds the kernel as on a machine without x86's MXCSR (float
    subnormals kept, not flushed)."""
    from torch.utils.cpp_extension import load as build

    return build(
        name=module_name(cap, defines),
        sources=[str(SOURCE)],
        extra_cflags=_cflags(cap, defines),
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


def forward(module, x: Tensor, alpha: Tensor, kind: int) -> Optional[Tensor]:
    """``sigma(x)`` with ``x``'s strides and dtype, or ``None`` when the kernel does not take this layout."""
    dtype = compute_dtype(x, alpha)
    y = torch.empty_like(x, dtype=dtype)  # x's strides when x is dense (channels-last included)
    found = plan(y, alpha)
    if found is None:
        return None
    module.forward_out(found.order(x, dtype), found.alpha(alpha, dtype), found.view(y), kind, *found.layout)
    return y if y.dtype == x.dtype else y.to(x.dtype)


def backward(module, grad: Tensor, x: Tensor, alpha: Tensor, kind: int) -> Optional[Tuple[Tensor, Tensor]]:
    """``(grad_x, grad_alpha)`` in the shapes, dtypes (and, for grad_x, strides) of ``x`` and ``alpha``."""
    dtype = compute_dtype(x, alpha)
    gx = torch.empty_like(x, dtype=dtype)
    found = plan(gx, alpha)
    if found is None:
        return None
    alpha_k = found.alpha(alpha, dtype)
    ga = module.backward_out(found.order(grad, dtype), found.order(x, dtype), alpha_k, found.view(gx), kind,
                             *found.layout)
    return (gx if gx.dtype == x.dtype else gx.to(x.dtype)), found.alpha_back(ga, alpha_k, alpha)
