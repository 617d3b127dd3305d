r"""Adaptive activation functions, as plain differentiable functions of ``x`` and ``alpha``.

Every function takes

* ``x``: a floating-point tensor of any shape;
* ``alpha``: a positive floating-point tensor broadcastable to ``x``. A scalar shares one alpha; per-neuron
  alpha for an ``(N, C, H, W)`` input is shaped ``(C, 1, 1)`` (or ``(1, C, 1, 1)``), for ``(N, F)`` it is
  ``(F,)``;

and returns a tensor of ``x``'s shape and dtype, differentiable with respect to both. The gradient for
``alpha`` is summed over the broadcast axes, as usual.

Accuracy (float64: relative error below 1e-10 of the exact value wherever it is above 1e-300 in size;
float32: below 1e-4 where above 1e-30; never inf or NaN) holds for the value, d/dx and d/dalpha over
:math:`|x| \le 10^4` and :math:`10^{-6} \le \alpha \le 10^3`. The stable formulas live in
:mod:`actadapt.families`; the fused autograd in :mod:`actadapt._autograd`.
"""

from __future__ import annotations

from torch import Tensor

from ._autograd import cdf_activation
from .families import CdfFamily, check_form, get_family

__all__ = ["adaptive_gumbel", "adaptive_relu", "swish", "adaptive_activation"]


def _check_inputs(x: Tensor, alpha: Tensor) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if not isinstance(alpha, Tensor) or not alpha.is_floating_point():
        raise TypeError(
            f"alpha must be a floating-point tensor, got {getattr(alpha, 'dtype', type(alpha).__name__)}"
        )
    if alpha.dim() > x.dim():
        raise ValueError(f"alpha of shape {tuple(alpha.shape)} has more dims than x of shape {tuple(x.shape)}")


def adaptive_activation(x: Tensor, alpha: Tensor, family: "str | CdfFamily" = "gumbel", form: str = "bounded") -> Tensor:
    r"""The general adaptive activation: a cdf :math:`F_\alpha` from :mod:`actadapt.families` in a form.

    .. math::
        \text{bounded: } \sigma_\alpha(x) = F_\alpha(x), \qquad \text{gated: } \sigma_\alpha(x) = x\,F_\alpha(x)

    Args:
        x: input, any shape.
        alpha: positive shape parameter, broadcastable to ``x``.
        family: a registered family name (see :func:`actadapt.available_families`) or a
            :class:`~actadapt.families.CdfFamily`. Default: ``"gumbel"``.
        form: ``"bounded"`` or ``"gated"``. Default: ``"bounded"``.

    Shape:
        - x: :math:`(*)`; alpha: broadcastable to :math:`(*)`; output: :math:`(*)`, dtype of ``x``.

    Example::

        >>> import torch
        >>> from actadapt.functional import adaptive_activation
        >>> adaptive_activation(torch.tensor([0.0, 1.0]), torch.tensor(1.0), "normal", "gated")  # GELU
        tensor([0.0000, 0.8413])
    """
    _check_inputs(x, alpha)
    return cdf_activation(x, alpha, get_family(family), check_form(form) == "gated")


def adaptive_gumbel(x: Tensor, alpha: Tensor) -> Tensor:
    r"""Adaptive Gumbel (eq. 1), a bounded activation:

    .. math::
        \sigma_\alpha(x) = 1 - (1 + \alpha e^x)^{-1/\alpha}, \qquad \alpha > 0

    :math:`\alpha = 1` is the logistic sigmoid; :math:`\alpha \to 0` the Gumbel cdf :math:`1 - \exp(-e^x)`.

    Note:
        Evaluated as :math:`1 - e^{-L}`, :math:`L = \log(1 + \alpha e^x)/\alpha`, with ``L`` from
        :math:`e^x \log(1+v)/v` when :math:`v = \alpha e^x \le 1` and from :math:`\mathrm{softplus}(\log\alpha + x)/\alpha`
        above, so neither the lower tail (:math:`x \ll 0`) cancels nor :math:`\alpha e^x` overflows.

    Example::

        >>> import torch
        >>> from actadapt.functional import adaptive_gumbel
        >>> x = torch.tensor([-2.0, 0.0, 2.0])
        >>> torch.allclose(adaptive_gumbel(x, torch.tensor(1.0)), torch.sigmoid(x))
        True
    """
    return adaptive_activation(x, alpha, "gumbel", "bounded")


def adaptive_relu(x: Tensor, alpha: Tensor) -> Tensor:
    r"""Adaptive ReLU (eq. 2), a gated activation with the exponential cdf:

    .. math::
        \sigma_\alpha(x) = x\,(1 - e^{-\alpha x})\ \text{for}\ x > 0, \quad 0\ \text{otherwise}

    :math:`\alpha \to \infty` recovers ReLU. Smooth (:math:`C^1`) at 0.

    Example::

        >>> import torch
        >>> from actadapt.functional import adaptive_relu
        >>> adaptive_relu(torch.tensor([-1.0, 0.0, 1.0]), torch.tensor(1.0))
        tensor([0.0000, 0.0000, 0.6321])
    """
    return adaptive_activation(x, alpha, "exponential", "gated")


def swish(x: Tensor, alpha: Tensor) -> Tensor:
    r"""Swish (eq. 3), a gated activation with the logistic cdf:

    .. math::
        \sigma_\alpha(x) = x\,\mathrm{sigmoid}(\alpha x)

    :math:`\alpha = 1` is SiLU.

    Example::

        >>> import torch
        >>> from actadapt.functional import swish
        >>> x = torch.linspace(-3, 3, 7)
        >>> torch.allclose(swish(x, torch.tensor(1.0)), torch.nn.functional.silu(x))
        True
    """
    return adaptive_activation(x, alpha, "logistic", "gated")
