"""The optional fused C++ CPU kernel (csrc/activations.cpp) for the three paper activations.

Built on first use with ``torch.utils.cpp_extension`` (about a minute, once; cached in
``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``), so ``pip install`` stays pure Python. If it
cannot be built (no C++ compiler, no headers), :func:`load` returns ``None`` after one warning and the
torch.compile / eager path runs instead. It evaluates the same formulas as :mod:`actadapt.families` and is
tested against the same mpmath reference.
"""

from __future__ import annotations

import os
import platform
import threading
import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

__all__ = ["load", "NATIVE_FAMILIES", "layout"]

# (family name, gated) -> kernel id in activations.cpp
NATIVE_FAMILIES = {("gumbel", False): 0, ("exponential", True): 1, ("logistic", True): 2}

_SOURCE = Path(__file__).with_name("csrc") / "activations.cpp"
_state: dict = {"module": None, "failed": False}
_lock = threading.Lock()


def _openmp() -> bool:
    # at::parallel_for is a header template: it only spreads work over threads when this file is compiled
    # with OpenMP, as libtorch is on Linux builds.
    return "OpenMP" in torch.__config__.parallel_info() and platform.system() == "Linux"


def _cflags() -> list[str]:
    flags = ["-O3"] + (["-fopenmp"] if _openmp() else [])
    capability = torch.backends.cpu.get_cpu_capability()
    if platform.machine().lower() in ("x86_64", "amd64") and capability in ("AVX2", "AVX512"):
        # AVX2 code runs on every AVX2/AVX-512 machine and links against the Sleef copy inside libtorch.
        flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return flags


def load() -> Optional[object]:
    """The compiled extension module, building it on first call; ``None`` if it cannot be built."""
    if _state["module"] is not None or _state["failed"]:
        return _state["module"]
    with _lock:
        if _state["module"] is None and not _state["failed"]:
            try:
                from torch.utils.cpp_extension import load as build

                tag = "avx2" if "-mavx2" in _cflags() else "generic"
                _state["module"] = build(
                    name=f"actadapt_native_v2_{tag}",
                    sources=[str(_SOURCE)],
                    extra_cflags=_cflags(),
                    extra_ldflags=["-fopenmp"] if _openmp() else [],
                    verbose=os.environ.get("ACTADAPT_VERBOSE_BUILD") == "1",
                )
            except Exception as err:  # no compiler, headers or linker: fall back, once, loudly
                _state["failed"] = True
                lines = str(err).strip().splitlines()
                detail = next((ln for ln in lines if "error" in ln.lower() and ".cpp" in ln), lines[0] if lines else "")
                warnings.warn(
                    f"actadapt: the fused C++ kernel could not be built ({type(err).__name__}: {detail}); "
                    "using torch.compile/eager instead (same results, slower).",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _state["module"]


def _blocks(dims: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive axis numbers: [0, 1, 3] -> [(0, 1), (3, 3)]."""
    runs: list[tuple[int, int]] = []
    for d in dims:
        if runs and d == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def layout(x: Tensor, alpha: Tensor) -> Optional[tuple[int, int, int, int]]:
    """``(G, M, C, inner)`` for the C++ kernel, or ``None`` when it does not apply.

    ``x`` is read as rows of ``inner`` elements; alpha holds ``G * C`` values and varies along at most two
    blocks of adjacent axes: one block of size ``C`` (per channel, per feature, ...) and optionally an
    earlier block of size ``G`` separated from it by axes of total size ``M`` (e.g. alpha of shape
    ``(models, 1, neurons)`` for a batch of models). Everything else is broadcast.
    """
    if alpha.dim() > x.dim() or torch.broadcast_shapes(x.shape, alpha.shape) != x.shape:
        return None  # x itself is broadcast (e.g. an outer product): the generic path handles it
    a_full = [1] * (x.dim() - alpha.dim()) + list(alpha.shape)
    keep = [i for i, n in enumerate(x.shape) if n != 1]  # size-1 axes of x join any block
    shape = [x.shape[i] for i in keep]
    a_shape = [a_full[i] for i in keep]
    varying = [i for i, n in enumerate(a_shape) if n != 1]
    if any(a_shape[i] != shape[i] for i in varying):
        return None
    blocks = _blocks(varying)
    if len(blocks) > 2:
        return None

    def size(lo: int, hi: int) -> int:
        out = 1
        for n in shape[lo:hi]:
            out *= n
        return out

    if not blocks:
        return 1, 1, 1, x.numel()
    c_lo, c_hi = blocks[-1]
    G, M = 1, 1
    if len(blocks) == 2:
        g_lo, g_hi = blocks[0]
        G, M = size(g_lo, g_hi + 1), size(g_hi + 1, c_lo)
    return G, M, size(c_lo, c_hi + 1), size(c_hi + 1, len(shape))
