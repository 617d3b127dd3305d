r"""Autograd for the built-in cdf families: the fused operator where it applies, else one custom Function.

* The three paper activations (adaptive Gumbel, adaptive ReLU, Swish) go through the fused operator
  ``actadapt::cdf_activation`` (:mod:`actadapt.kernels`) under the ``"auto"``, ``"native"`` and ``"triton"``
  backends: a C++ kernel on CPU, Triton on CUDA. It is a registered PyTorch operator, so ``torch.compile``
  and ``torch.export`` keep it in their graphs and call the same kernel.
* Every other analytic family, and every family under the ``"compile"`` and ``"eager"`` backends, goes
  through ``_CdfActivation``, whose pure forward/backward functions (:mod:`actadapt.kernels.reference`) run
  eagerly or fused by ``torch.compile`` (:mod:`actadapt._backend`).

Both save only ``x`` and ``alpha`` (no outputs, no intermediates: :math:`\le` 4 B/element in float32) and
recompute the rest in backward, and both reduce the gradient for alpha over the broadcast axes to alpha's own
shape. Half-precision inputs (float16, bfloat16) are computed in float32 and rounded once at the end.
"""

from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch import Tensor

from . import _backend, kernels
from .families import CdfFamily
from .kernels.reference import activation_backward, activation_forward, compute_dtype, reduce_to_shape

__all__ = ["cdf_activation", "activation_forward", "activation_backward", "reduce_to_shape"]


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


def _run_forward(family: CdfFamily, gated: bool, x: Tensor, alpha: Tensor) -> Tensor:
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
        ctx.save_for_backward(x, alpha)
        ctx.family, ctx.gated = family, gated
        return _run_forward(family, gated, x, alpha)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, alpha = ctx.saved_tensors
        # create_graph=True (double backward): eager ops, which autograd differentiates in turn
        gx, ga = _run_backward(ctx.family, ctx.gated, grad, x, alpha, eager=torch.is_grad_enabled())
        return (
            gx if ctx.needs_input_grad[0] else None,
            ga if ctx.needs_input_grad[1] else None,
            None,
            None,
        )


def cdf_activation(x: Tensor, alpha: Tensor, family: CdfFamily, gated: bool) -> Tensor:
    """Apply a family in a form: the fused operator, the fused Function, or plain autograd (user families)."""
    kind = kernels.fused_kind(family, gated)
    if kind is not None and kernels.takes(x, alpha):
        return kernels.cdf_activation(x, alpha, kind)
    if not family.analytic or (not torch.compiler.is_compiling() and torch._C._are_functorch_transforms_active()):
        # user families, and torch.func transforms (which a forward(ctx)-style Function does not support):
        # autograd through the stable formula itself (the twin the analytic backward is tested against)
        dtype = compute_dtype(x, alpha)
        return activation_forward(family, gated, x.to(dtype), alpha.to(dtype)).to(x.dtype)
    if torch.is_grad_enabled() and (x.requires_grad or alpha.requires_grad):
        return _CdfActivation.apply(x, alpha, family, gated)
    return _run_forward(family, gated, x, alpha)
