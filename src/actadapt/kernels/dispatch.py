"""The one dispatcher: whether the fused operator takes a call, and which implementation runs it.

Two questions, asked at two times:

* :func:`fused_kind` and :func:`takes`, when the activation is called (and when ``torch.compile`` or
  ``torch.export`` traces it): is this one of the three paper activations, with a backend, device and shapes
  that the fused operator serves? Only shapes, dtypes, devices and the backend setting are read, so tracing
  sees plain Python.
* :func:`implementation`, inside the operator when it runs: the C++ kernel (CPU), Triton (CUDA; CPU tensors
  under ``TRITON_INTERPRET=1`` with the ``"triton"`` backend), or the reference formulas when no compiled
  kernel is available (a warning says so once; the ``"native"`` and ``"triton"`` backends raise instead).

The ONNX exporter gets the reference formulas: they are standard operators that any ONNX runtime runs, where
a custom operator would need a runtime extension.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .. import _backend, families
from ..families import CdfFamily
from . import cpu

__all__ = ["FUSED", "Fused", "fused_kind", "takes", "implementation", "run_triton", "triton_interpreted"]


@dataclass(frozen=True)
class Fused:
    """One activation the fused kernels compute: a built-in family in a form. Its index is the kernel id."""

    name: str
    family: CdfFamily
    gated: bool


# kernel id -> activation; the ids are the `family` argument of csrc/activations.cpp and of the Triton kernels
FUSED = (
    Fused("adaptive_gumbel", families.get_family("gumbel"), False),  # eq. 1
    Fused("adaptive_relu", families.get_family("exponential"), True),  # eq. 2
    Fused("swish", families.get_family("logistic"), True),  # eq. 3
)

FUSED_BACKENDS = ("auto", "native", "triton")


def fused_kind(family: CdfFamily, gated: bool) -> Optional[int]:
    """The kernel id of a built-in paper activation (matched by its formulas, not its name), else ``None``."""
    for kind, fused in enumerate(FUSED):
        if family.cdf_and_grads is fused.family.cdf_and_grads and gated == fused.gated:
            return kind
    return None


def _onnx_exporting() -> bool:
    if torch.compiler.is_compiling() and not torch.compiler.is_exporting():
        return False  # torch.compile's tracing: never the ONNX exporter
    onnx = sys.modules.get("torch.onnx")  # only ever set once torch.onnx was imported
    return onnx is not None and onnx.is_in_onnx_export()


def takes(x: Tensor, alpha: Tensor) -> bool:
    """Whether the fused operator serves ``sigma(x, alpha)`` under the backend in force.

    It needs ``alpha`` broadcastable to ``x`` without broadcasting ``x`` (an outer product of ``x`` against
    ``alpha`` goes the generic way), both on one CPU or CUDA device.
    """
    if _backend.get_backend() not in FUSED_BACKENDS:
        return False
    if x.device.type not in ("cpu", "cuda") or alpha.device != x.device or alpha.dim() > x.dim():
        return False
    for n_a, n_x in zip(reversed(alpha.shape), reversed(x.shape)):
        if n_a != 1 and n_a != n_x:
            return False
    return not _onnx_exporting()


def triton_interpreted() -> bool:
    """True when Triton kernels run in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


_warned: set = set()
_triton_failure: list = []  # the first exception a Triton kernel raised under "auto"


def _fall_back(reason: str) -> str:
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"actadapt: {reason}; using the PyTorch formulas instead (same results, slower).",
                      RuntimeWarning, stacklevel=4)
    return "reference"


def _triton_problem(device_type: str) -> Optional[str]:
    try:
        from . import gpu  # imports triton
    except ImportError as err:  # triton is not installed (or broken): say so once, in the caller's words
        return f"Triton cannot be imported ({err}; `pip install triton`)"
    return gpu.unavailable(device_type)


def implementation(x: Tensor) -> str:
    """``"cpu"``, ``"triton"`` or ``"reference"``: what runs the fused operator on ``x``'s device now."""
    backend = _backend.get_backend()
    if backend not in FUSED_BACKENDS:  # a traced graph holding the operator, run under "eager"/"compile"
        return "reference"
    if x.device.type == "cpu" and backend != "triton":
        if cpu.load() is not None:
            return "cpu"
        if backend == "native":
            raise RuntimeError("actadapt: backend 'native' was asked for, but the C++ kernel could not be built "
                               "(see the warning above); use backend 'auto' to fall back to the PyTorch formulas")
        return "reference"
    if x.device.type == "cpu" and not triton_interpreted():
        raise RuntimeError("actadapt: backend 'triton' on CPU tensors needs Triton's interpreter: set "
                           "TRITON_INTERPRET=1 before anything imports triton (or move the tensors to a CUDA device)")
    if x.device.type not in ("cpu", "cuda"):
        return "reference"
    problem = _triton_problem(x.device.type) if not _triton_failure else _triton_failure[0]
    if problem is None:
        return "triton"
    if backend in ("native", "triton"):
        raise RuntimeError(f"actadapt: backend {backend!r} needs Triton for {x.device.type} tensors, but {problem}")
    return _fall_back(f"no Triton kernel for {x.device.type} tensors ({problem})")


def run_triton(fn, *args):
    """``fn(*args)`` for a Triton launcher. Under ``"auto"`` a failure (a GPU or Triton version the kernels do
    not compile for, say) is reported once and returns ``None``, and the reference formulas run from then on;
    under ``"native"`` and ``"triton"`` it raises."""
    try:
        return fn(*args)
    except Exception as err:  # compilation or launch errors from an untested GPU/Triton combination
        if _backend.get_backend() != "auto":
            raise
        lines = str(err).strip().splitlines()
        _triton_failure.append(f"the Triton kernel failed: {type(err).__name__}: {lines[0] if lines else ''}")
        _fall_back(_triton_failure[0])
        return None
