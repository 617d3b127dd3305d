r"""The fused autograd path for built-in cdf families: pure forward/backward functions and one Function.

For a family with cdf :math:`F` and derivatives :math:`F_x, F_\alpha`, and incoming gradient :math:`g`:

============  =====================  ============================================  ====================================
form          :math:`\sigma`         :math:`g\,\partial\sigma/\partial x`          :math:`g\,\partial\sigma/\partial\alpha`
============  =====================  ============================================  ====================================
bounded       :math:`F`              :math:`g F_x`                                 :math:`g F_\alpha`
gated         :math:`x F`            :math:`g (F + x F_x)`                         :math:`g\, x F_\alpha`
============  =====================  ============================================  ====================================

This table is the only place the forms are applied. ``_CdfActivation`` saves only ``x`` and ``alpha`` (no
outputs, no intermediates: :math:`\le` 4 B/element in float32) and recomputes the rest in backward, which
costs a few transcendental functions but lets ``torch.compile`` fuse each direction into one kernel.
The gradient for alpha is reduced over the broadcast axes to alpha's own shape inside the same kernel.

Half-precision inputs (float16, bfloat16) are computed in float32 and rounded once at the end.
"""

from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch import Tensor

from . import _backend, _native
from .families import CdfFamily

__all__ = ["cdf_activation", "activation_forward", "activation_backward", "reduce_to_shape"]

_HALF = (torch.float16, torch.bfloat16)


def compute_dtype(x: Tensor, alpha: Tensor) -> torch.dtype:
    """float64 if either input is float64, else float32 (half inputs are computed in float32)."""
    if x.dtype == torch.float64 or alpha.dtype == torch.float64:
        return torch.float64
    return torch.float32


def reduce_to_shape(t: Tensor, shape: torch.Size) -> Tensor:
    """Sum ``t`` over the axes along which a tensor of ``shape`` was broadcast to ``t.shape``."""
    if t.shape == shape:
        return t
    lead = t.dim() - len(shape)
    dims = list(range(lead)) + [lead + i for i, n in enumerate(shape) if n == 1 and t.shape[lead + i] != 1]
    out = t.sum(dim=dims, keepdim=True) if dims else t
    return out.reshape(shape)


def activation_forward(family: CdfFamily, gated: bool, x: Tensor, alpha: Tensor) -> Tensor:
    """Pure forward: :math:`F_\\alpha(x)` or :math:`x F_\\alpha(x)` (``x`` and ``alpha`` broadcastable)."""
    F = family.cdf(x, alpha)
    return x * F if gated else F


def activation_backward(
    family: CdfFamily, gated: bool, grad: Tensor, x: Tensor, alpha: Tensor
) -> Tuple[Tensor, Tensor]:
    """Pure backward: ``(grad * dsigma/dx, grad * dsigma/dalpha)``, both of the broadcast shape."""
    assert family.cdf_and_grads is not None
    F, F_x, F_alpha = family.cdf_and_grads(x, alpha)
    if gated:
        return grad * (F + x * F_x), grad * (x * F_alpha)
    return grad * F_x, grad * F_alpha


def _make_forward(family: CdfFamily, gated: bool, out_dtype: torch.dtype) -> Callable:
    def forward_kernel(x: Tensor, alpha: Tensor) -> Tensor:
        dtype = compute_dtype(x, alpha)
        return activation_forward(family, gated, x.to(dtype), alpha.to(dtype)).to(out_dtype)

    return forward_kernel


def _make_backward(family: CdfFamily, gated: bool) -> Callable:
    def backward_kernel(grad: Tensor, x: Tensor, alpha: Tensor) -> Tuple[Tensor, Tensor]:
        dtype = compute_dtype(x, alpha)
        gx, ga = activation_backward(family, gated, grad.to(dtype), x.to(dtype), alpha.to(dtype))
        return reduce_to_shape(gx, x.shape).to(x.dtype), reduce_to_shape(ga, alpha.shape).to(alpha.dtype)

    return backward_kernel


_kernels: dict = {}


def _kernel(kind: str, family: CdfFamily, gated: bool, *spec) -> Tuple[Callable, tuple]:
    key = (kind, family.name, id(family), "gated" if gated else "bounded", *spec)
    fn = _kernels.get(key)
    if fn is None:
        fn = _make_forward(family, gated, spec[0]) if kind == "fwd" else _make_backward(family, gated)
        if not torch.compiler.is_compiling():  # dynamo may not trace a mutation of module state
            _kernels[key] = fn
    return fn, key


def _native_plan(family: CdfFamily, gated: bool, x: Tensor, alpha: Tensor):
    """``(module, kernel id, dtype, (G, M, C, inner))`` when the fused C++ kernel applies, else ``None``."""
    kernel_id = _native.NATIVE_FAMILIES.get((family.name, gated))
    if kernel_id is None or x.device.type != "cpu" or alpha.device.type != "cpu" or x.numel() == 0:
        return None
    backend = _backend.get_backend()
    if backend not in ("auto", "native") or torch.compiler.is_compiling():
        return None
    shape = _native.layout(x, alpha)
    if shape is None:
        return None
    module = _native.load()
    if module is None:
        if backend == "native":
            raise RuntimeError("actadapt: backend 'native' was asked for, but the C++ kernel could not be built")
        return None
    return module, kernel_id, compute_dtype(x, alpha), shape


def _as(t: Tensor, dtype: torch.dtype) -> Tensor:
    return (t if t.dtype == dtype else t.to(dtype)).contiguous()


def _native_forward(plan, x: Tensor, alpha: Tensor) -> Tensor:
    module, kernel_id, dtype, (G, M, C, inner) = plan
    y = module.forward(_as(x, dtype), _as(alpha, dtype).reshape(G * C), kernel_id, G, M, C, inner)
    return y if y.dtype == x.dtype else y.to(x.dtype)


def _native_backward(plan, grad: Tensor, x: Tensor, alpha: Tensor) -> Tuple[Tensor, Tensor]:
    module, kernel_id, dtype, (G, M, C, inner) = plan
    gx, ga = module.backward(
        _as(grad, dtype), _as(x, dtype), _as(alpha, dtype).reshape(G * C), kernel_id, G, M, C, inner
    )
    return (gx if gx.dtype == x.dtype else gx.to(x.dtype)), ga.reshape(alpha.shape).to(alpha.dtype)


def _run_forward(family: CdfFamily, gated: bool, x: Tensor, alpha: Tensor, plan=None) -> Tensor:
    if plan is not None:
        return _native_forward(plan, x, alpha)
    fn, key = _kernel("fwd", family, gated, x.dtype, alpha.dtype, x.dim(), tuple(alpha.shape) == ())
    return _backend.run(fn, key, x, alpha)


def _run_backward(family: CdfFamily, gated: bool, grad: Tensor, x: Tensor, alpha: Tensor, eager: bool = False):
    pattern = tuple(n == 1 for n in alpha.shape)
    fn, key = _kernel("bwd", family, gated, x.dtype, alpha.dtype, grad.dtype, x.dim(), alpha.dim(), pattern)
    return fn(grad, x, alpha) if eager else _backend.run(fn, key, grad, x, alpha)


class _CdfActivation(torch.autograd.Function):
    """sigma_alpha(x) for a built-in family; saves x and alpha only.

    Written in the ``forward(ctx, ...)`` style: the ``setup_context`` style re-binds the call signature with
    ``inspect`` on every call, which costs more than the whole kernel on small layers.
    """

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, family: CdfFamily, gated: bool) -> Tensor:  # type: ignore[override]
        plan = _native_plan(family, gated, x, alpha)
        ctx.save_for_backward(x, alpha)
        ctx.family, ctx.gated, ctx.plan = family, gated, plan
        return _run_forward(family, gated, x, alpha, plan)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, alpha = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph=True (double backward): eager ops, which autograd differentiates in turn.
            gx, ga = _run_backward(ctx.family, ctx.gated, grad, x, alpha, eager=True)
        elif ctx.plan is not None:
            gx, ga = _native_backward(ctx.plan, grad, x, alpha)
        else:
            gx, ga = _run_backward(ctx.family, ctx.gated, grad, x, alpha)
        return (
            gx if ctx.needs_input_grad[0] else None,
            ga if ctx.needs_input_grad[1] else None,
            None,
            None,
        )


def cdf_activation(x: Tensor, alpha: Tensor, family: CdfFamily, gated: bool) -> Tensor:
    """Apply a family in a form. Built-in (analytic) families use the fused Function; others use autograd."""
    if not family.analytic:
        dtype = compute_dtype(x, alpha)
        return activation_forward(family, gated, x.to(dtype), alpha.to(dtype)).to(x.dtype)
    if torch.is_grad_enabled() and (x.requires_grad or alpha.requires_grad):
        return _CdfActivation.apply(x, alpha, family, gated)
    return _run_forward(family, gated, x, alpha, _native_plan(family, gated, x, alpha))
