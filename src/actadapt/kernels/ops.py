r"""The fused operator, registered with ``torch.library``: ``actadapt::cdf_activation`` and its backward.

.. code-block:: text

    actadapt::cdf_activation(Tensor x, Tensor alpha, int kind) -> Tensor
    actadapt::cdf_activation_backward(Tensor grad, Tensor x, Tensor alpha, int kind) -> (Tensor, Tensor)

``kind`` is the index into :data:`actadapt.kernels.dispatch.FUSED` (0 adaptive Gumbel, 1 adaptive ReLU,
2 Swish); ``alpha`` broadcasts to ``x`` (``x`` itself is never broadcast). The output has ``x``'s shape, dtype
and strides; the backward returns ``(grad_x, grad_alpha)`` in the shapes and dtypes of ``x`` and ``alpha``,
with grad_alpha summed over the broadcast axes. Half inputs are computed in float32.

Registered here, once: the device kernels (CPU: the C++ kernel; CUDA: Triton; any other device: the reference
formulas), fake (meta) implementations for tracing, the autograd formula (which saves only ``x`` and
``alpha``) and vmap rules. So ``torch.compile`` (``fullgraph=True`` included) and ``torch.export`` keep the
operator as one node and call the fused kernel, and ``torch.func`` transforms and
``torch.utils.checkpoint`` work through it.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from . import cpu, reference
from .dispatch import FUSED, implementation, run_triton

__all__ = ["cdf_activation", "cdf_activation_backward"]


def _check(x: Tensor, alpha: Tensor, kind: int) -> None:
    if not 0 <= kind < len(FUSED):
        raise ValueError(f"actadapt::cdf_activation: kind must be 0..{len(FUSED) - 1}, got {kind}")
    if alpha.dim() > x.dim() or any(a != 1 and a != n for a, n in zip(reversed(alpha.shape), reversed(x.shape))):
        raise ValueError(f"actadapt::cdf_activation: alpha of shape {tuple(alpha.shape)} must broadcast to x of "
                         f"shape {tuple(x.shape)} without broadcasting x")


def _like(out: Tensor, x: Tensor) -> Tensor:
    """``out`` with the strides the fake kernel promised (those of ``empty_like(x)``)."""
    expected = torch.empty_like(x)
    return out if out.stride() == expected.stride() or out.numel() <= 1 else expected.copy_(out)


def _run_forward(x: Tensor, alpha: Tensor, kind: int) -> Tensor:
    _check(x, alpha, kind)
    if x.numel() == 0:
        return torch.empty_like(x)
    impl = implementation(x)
    y: Optional[Tensor] = None
    if impl == "cpu":
        y = cpu.forward(cpu.load(), x, alpha, kind)
    elif impl == "triton":
        from . import gpu  # imports triton: only when a Triton kernel runs

        y = run_triton(gpu.forward, x, alpha, kind)
    if y is None:  # reference, or a layout the kernel does not take
        y = _like(reference.forward(FUSED[kind].family, FUSED[kind].gated, x, alpha), x)
    return y


def _run_backward(grad: Tensor, x: Tensor, alpha: Tensor, kind: int) -> Tuple[Tensor, Tensor]:
    _check(x, alpha, kind)
    if x.numel() == 0:
        return torch.empty_like(x), torch.zeros_like(alpha, memory_format=torch.contiguous_format)
    impl = implementation(x)
    out: Optional[Tuple[Tensor, Tensor]] = None
    if impl == "cpu":
        out = cpu.backward(cpu.load(), grad, x, alpha, kind)
    elif impl == "triton":
        from . import gpu  # imports triton: only when a Triton kernel runs

        out = run_triton(gpu.backward, grad, x, alpha, kind)
    if out is None:
        gx, ga = reference.backward(FUSED[kind].family, FUSED[kind].gated, grad, x, alpha)
        out = _like(gx, x), ga.contiguous()
    return out


# ------------------------------------------------------------------------------------- the operators
# A Library with explicit kernels rather than torch.library.custom_op: the custom_op wrappers cost several
# times the kernel on small layers, and their generated autograd Function does not run under torch.func.
_lib = torch.library.Library("actadapt", "DEF")
_lib.define("cdf_activation(Tensor x, Tensor alpha, int kind) -> Tensor")
_lib.define("cdf_activation_backward(Tensor grad, Tensor x, Tensor alpha, int kind) -> (Tensor, Tensor)")
for _device in ("CPU", "CUDA", "CompositeExplicitAutograd"):  # CompositeExplicitAutograd: any other device
    _lib.impl("cdf_activation", _run_forward, _device)
    _lib.impl("cdf_activation_backward", _run_backward, _device)

_forward_op = torch.ops.actadapt.cdf_activation.default
_backward_op = torch.ops.actadapt.cdf_activation_backward.default


def cdf_activation(x: Tensor, alpha: Tensor, kind: int) -> Tensor:
    """sigma_alpha(x) for the fused activation ``kind`` (see the module docstring); differentiable.

    Under ``torch.func`` transforms (grad, vmap, jacrev, ...) the autograd formula is applied here, above the
    dispatcher, where functorch can see it; everywhere else the operator's own autograd kernel applies it."""
    if not torch.compiler.is_compiling() and torch._C._are_functorch_transforms_active():
        return _FusedFunc.apply(x, alpha, kind)
    return _forward_op(x, alpha, kind)


def cdf_activation_backward(grad: Tensor, x: Tensor, alpha: Tensor, kind: int) -> Tuple[Tensor, Tensor]:
    """(grad * dsigma/dx, grad * dsigma/dalpha summed to alpha's shape)."""
    return _backward_op(grad, x, alpha, kind)


@torch.library.register_fake("actadapt::cdf_activation")
def _(x: Tensor, alpha: Tensor, kind: int) -> Tensor:
    _check(x, alpha, kind)
    return torch.empty_like(x)


@torch.library.register_fake("actadapt::cdf_activation_backward")
def _(grad: Tensor, x: Tensor, alpha: Tensor, kind: int) -> Tuple[Tensor, Tensor]:
    _check(x, alpha, kind)
    return torch.empty_like(x), alpha.new_empty(alpha.shape)


# ------------------------------------------------------------------------------------------ autograd
def _backward(ctx, grad: Tensor):
    x, alpha = ctx.saved_tensors
    if torch.is_grad_enabled():
        # create_graph=True (double backward): the reference formulas, which autograd differentiates in turn
        fused = FUSED[ctx.kind]
        gx, ga = reference.backward(fused.family, fused.gated, grad, x, alpha)
    else:
        gx, ga = _backward_op(grad, x, alpha, ctx.kind)
    return (gx if ctx.needs_input_grad[0] else None, ga if ctx.needs_input_grad[1] else None, None)


def _forward_below_autograd(x: Tensor, alpha: Tensor, kind: int) -> Tensor:
    with torch._C._AutoDispatchBelowAutograd():
        return _forward_op(x, alpha, kind)


class _Fused(torch.autograd.Function):
    """The registered autograd formula; saves only ``x`` and ``alpha`` (4 B/element in float32).

    In the ``forward(ctx, ...)`` style, which costs a few microseconds per call where the ``setup_context``
    style re-binds the signature with ``inspect`` (more than the kernel on small layers)."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, kind: int) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, alpha)
        ctx.kind = kind
        return _forward_below_autograd(x, alpha, kind)

    backward = staticmethod(_backward)


class _FusedFunc(torch.autograd.Function):
    """The same formula in the ``setup_context`` style that ``torch.func`` transforms require."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, alpha: Tensor, kind: int) -> Tensor:  # type: ignore[override]
        return _forward_below_autograd(x, alpha, kind)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, alpha, kind = inputs
        ctx.save_for_backward(x, alpha)
        ctx.kind = kind

    backward = staticmethod(_backward)


def _autograd_kernel(x: Tensor, alpha: Tensor, kind: int) -> Tensor:
    if torch.is_grad_enabled() and (x.requires_grad or alpha.requires_grad):
        return _Fused.apply(x, alpha, kind)
    return _forward_below_autograd(x, alpha, kind)


_lib.impl("cdf_activation", _autograd_kernel, "Autograd")


# ---------------------------------------------------------------------------------------------- vmap
def _batch_first(t: Tensor, bdim: Optional[int], size: int) -> Tensor:
    return t.movedim(bdim, 0) if bdim is not None else t.expand(size, *t.shape)


def _alpha_per_example(alpha: Tensor, bdim: Optional[int], size: int, x_dim: int) -> Tensor:
    """alpha of shape (B, *a), padded to (B, 1, ..., *a) so that it broadcasts against x of shape (B, *x)."""
    alpha = _batch_first(alpha, bdim, size)
    return alpha.reshape(size, *([1] * (x_dim - alpha.dim())), *alpha.shape[1:])


@torch.library.register_vmap("actadapt::cdf_activation")
def _(info, in_dims, x: Tensor, alpha: Tensor, kind: int):
    x_bdim, a_bdim, _ = in_dims
    x = _batch_first(x, x_bdim, info.batch_size)
    if a_bdim is not None:
        alpha = _alpha_per_example(alpha, a_bdim, info.batch_size, x.dim())
    return _forward_op(x, alpha, kind), 0


@torch.library.register_vmap("actadapt::cdf_activation_backward")
def _(info, in_dims, grad: Tensor, x: Tensor, alpha: Tensor, kind: int):
    g_bdim, x_bdim, a_bdim, _ = in_dims
    size = info.batch_size
    x, grad = _batch_first(x, x_bdim, size), _batch_first(grad, g_bdim, size)
    a_shape = alpha.shape if a_bdim is None else alpha.movedim(a_bdim, 0).shape[1:]
    # grad_alpha is per example even when alpha is shared by the batch: give the kernel one alpha per example
    gx, ga = _backward_op(grad, x, _alpha_per_example(alpha, a_bdim, size, x.dim()), kind)
    return (gx, ga.reshape(size, *a_shape)), (0, 0)
