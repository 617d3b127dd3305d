"""Which implementation runs the adaptive activations: the fused operator, ``torch.compile``, or eager.

* ``"auto"`` (default): the fused operator (:mod:`actadapt.kernels`) for the three paper activations, a C++
  kernel on CPU and Triton on CUDA; ``torch.compile`` for every other built-in family. Where a kernel or a
  compiler is missing, warn once and run the PyTorch formulas from then on.
* ``"native"``: the fused operator where it applies (raise if its kernel cannot be built), eager elsewhere.
* ``"triton"``: like ``"native"``, with the Triton kernels on every device; CPU tensors need Triton's
  interpreter (``TRITON_INTERPRET=1``), which is how the Triton kernels are tested without a GPU.
* ``"compile"``: ``torch.compile`` everywhere, and raise if that fails.
* ``"eager"``: plain PyTorch operations, no compiler (fast start-up, several times slower per call).

Set it with :func:`set_backend` or the environment variable ``ACTADAPT_BACKEND``. Every path evaluates the
same formulas and meets the same accuracy contract (the tests run each one).
"""

from __future__ import annotations

import os
import types
import warnings
from typing import Callable, Hashable

import torch

__all__ = ["set_backend", "get_backend", "BACKENDS"]

BACKENDS = ("auto", "native", "triton", "compile", "eager")

_state = {"backend": None, "compile_failed": False}
_compiled: dict[Hashable, Callable] = {}


def _check(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown actadapt backend {name!r}; valid backends: {', '.join(BACKENDS)}")
    return name


def set_backend(name: str) -> None:
    """Choose ``"auto"``, ``"native"``, ``"triton"``, ``"compile"`` or ``"eager"`` for every adaptive activation."""
    _state["backend"] = _check(name)
    _state["compile_failed"] = False


def get_backend() -> str:
    """The backend in force: set by :func:`set_backend`, else ``$ACTADAPT_BACKEND``, else ``"auto"``."""
    if _state["backend"] is None:
        env = os.environ.get("ACTADAPT_BACKEND", "auto").strip().lower() or "auto"
        try:
            _state["backend"] = _check(env)
        except ValueError as err:
            raise ValueError(f"ACTADAPT_BACKEND: {err}") from None
    return _state["backend"]


def _fresh_copy(fn: Callable, tag: str) -> Callable:
    # torch.compile keeps its cache of compiled graphs on the *code object*; giving every (family, form,
    # direction, dtype, ...) its own copy of the code keeps each cache small and away from dynamo's
    # recompile limit, instead of piling every variant onto one shared code object.
    code = fn.__code__.replace(co_name=f"{fn.__name__}__{tag}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)


def run(fn: Callable, key: Hashable, *args):
    """Call ``fn(*args)``, through a cached ``torch.compile`` of it when the backend allows.

    ``key`` identifies one specialisation (everything static that ``fn`` depends on besides tensor shapes).
    """
    backend = get_backend()
    tensor = args[0]
    if (
        backend in ("eager", "native", "triton")
        or _state["compile_failed"]
        or torch.compiler.is_compiling()
        or tensor.device.type not in ("cpu", "cuda")
    ):
        return fn(*args)
    compiled = _compiled.get(key)
    if compiled is None:
        tag = "_".join(str(k).replace(".", "_") for k in (key if isinstance(key, tuple) else (key,)))
        compiled = torch.compile(_fresh_copy(fn, tag), fullgraph=True, dynamic=None)
        _compiled[key] = compiled
    try:
        return compiled(*args)
    except Exception as err:  # pragma: no cover - depends on the platform's compiler
        if backend == "compile":
            raise
        _state["compile_failed"] = True
        warnings.warn(
            f"actadapt: torch.compile failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            "falling back to the eager implementation (same results, slower). "
            "Set ACTADAPT_BACKEND=eager to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return fn(*args)
