r"""The pure-PyTorch forward and backward of a cdf family in a form: the reference every fused kernel matches.

For a family with cdf :math:`F` and derivatives :math:`F_x, F_\alpha`, and incoming gradient :math:`g`:

============  =====================  ============================================  ====================================
form          :math:`\sigma`         :math:`g\,\partial\sigma/\partial x`          :math:`g\,\partial\sigma/\partial\alpha`
============  =====================  ============================================  ====================================
bounded       :math:`F`              :math:`g F_x`                                 :math:`g F_\alpha`
gated         :math:`x F`            :math:`g (F + x F_x)`                         :math:`g\, x F_\alpha`
============  =====================  ============================================  ====================================

This table is the only place the forms are applied: the eager and ``torch.compile`` paths of
:mod:`actadapt._autograd` run these functions, and the fused operator (:mod:`actadapt.kernels.ops`) falls back to
them where no compiled kernel can run. Half-precision inputs (float16, bfloat16) are computed in float32.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from ..families import CdfFamily

__all__ = ["compute_dtype", "reduce_to_shape", "activation_forward", "activation_backward", "forward", "backward"]


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


def forward(family: CdfFamily, gated: bool, x: Tensor, alpha: Tensor) -> Tensor:
    """:func:`activation_forward` in the compute dtype, returned in ``x``'s dtype."""
    dtype = compute_dtype(x, alpha)
    return activation_forward(family, gated, x.to(dtype), alpha.to(dtype)).to(x.dtype)


def backward(family: CdfFamily, gated: bool, grad: Tensor, x: Tensor, alpha: Tensor) -> Tuple[Tensor, Tensor]:
    """:func:`activation_backward` in the compute dtype, reduced to (and in the dtypes of) ``x`` and ``alpha``."""
    dtype = compute_dtype(x, alpha)
    gx, ga = activation_backward(family, gated, grad.to(dtype), x.to(dtype), alpha.to(dtype))
    return reduce_to_shape(gx, x.shape).to(x.dtype), reduce_to_shape(ga, alpha.shape).to(alpha.dtype)
