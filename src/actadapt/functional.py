r"""Adaptive activation functions, as plain differentiable functions of ``x`` and ``alpha``.

Every function takes

* ``x``: a floating-point tensor of any shape;
* ``alpha``: a positive floating-point tensor broadcastable to ``x``. A scalar shares one alpha; per-neuron
  alpha for an ``(N, C, H, W)`` input is shaped ``(C, 1, 1)`` (or ``(1, C, 1, 1)``), for ``(N, F)`` it is
  ``(F,)``;

and returns a tensor of ``x``'s shape and dtype, differentiable with respect to both. The gradient for
``alpha`` is summed over the broadcast axes, as usual.

``alpha = 0`` is allowed as the limit of each family (for the Gumbel family the Gumbel cdf
:math:`1 - \exp(-e^x)`, PAPER.md §1). An ``alpha`` that is negative, infinite or NaN is an error, never a
silent NaN: ``ValueError`` for a CPU ``alpha``, checked with one reduction and no extra pass over ``x``. For an
``alpha`` on an accelerator (and under ``torch.compile``) the same check is a device-side assertion
(``torch._assert_async``), which does not wait for the device: a bad alpha stops the program at the next
synchronisation with a ``RuntimeError`` that carries the same message. Under ``torch.func`` transforms
(``vmap``, ``grad``), which can run neither, there is no check. The check costs a few microseconds
per call; :func:`set_alpha_check` turns it off for hot loops over small tensors once a setup is known good
(as ``torch.distributions`` lets its argument validation be turned off).

Accuracy (float64: relative error below 1e-10 of the exact value wherever it is above 1e-300 in size;
float32: below 1e-4 where above 1e-30; never inf or NaN) holds for the value, d/dx and d/dalpha over
:math:`|x| \le 10^4` and :math:`10^{-6} \le \alpha \le 10^3`. The stable formulas live in
:mod:`actadapt.families`; the fused autograd in :mod:`actadapt._autograd`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._autograd import cdf_activation
from .families import CdfFamily, check_form, get_family

__all__ = ["adaptive_gumbel", "adaptive_relu", "swish", "adaptive_tanh", "adaptive_activation", "set_alpha_check"]

_BAD_ALPHA = "alpha must be finite and >= 0 (0 is the limit alpha -> 0)"
_CHECK = {"alpha": True}


def set_alpha_check(enabled: bool) -> bool:
    """Turn the check of alpha's values on (the default) or off for every call; returns the previous setting.

    Measured on 2 cores, the check added 5.6% to a step of the Table 1 batched trainer (8 layers of 10
    neurons, batch 20: every call is a few microseconds of work); on a convolution layer it is lost in noise.
    """
    previous = _CHECK["alpha"]
    _CHECK["alpha"] = bool(enabled)
    return previous


def _check_inputs(x: Tensor, alpha: Tensor, check_alpha: "bool | None" = None) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if not isinstance(alpha, Tensor) or not alpha.is_floating_point():
        raise TypeError(
            f"alpha must be a floating-point tensor, got {getattr(alpha, 'dtype', type(alpha).__name__)}"
        )
    if alpha.dim() > x.dim():
        raise ValueError(f"alpha of shape {tuple(alpha.shape)} has more dims than x of shape {tuple(x.shape)}")
    if _CHECK["alpha"] if check_alpha is None else check_alpha:
        _check_alpha_values(alpha)


def _check_alpha_values(alpha: Tensor) -> None:
    """Fail on an alpha that is negative, inf or NaN, without a host synchronisation off the CPU.

    On the CPU one ``aminmax`` reduction over alpha (per-neuron: a few hundred numbers) and two reads.
    Elsewhere, and while ``torch.compile`` traces, an asynchronous device-side assertion.
    """
    if alpha.numel() == 0 or alpha.device.type == "meta":
        return
    if not torch.compiler.is_compiling() and torch._C._are_functorch_transforms_active():
        return  # torch.func (vmap, grad): neither .item() nor _assert_async can run on its wrapped tensors
    if alpha.device.type == "cpu" and not torch.compiler.is_compiling():
        with torch.no_grad():
            lo, hi = torch.aminmax(alpha.detach())
        lo, hi = lo.item(), hi.item()
        if not (lo >= 0.0 and hi < math.inf):  # also False for NaN
            bad = lo if not lo >= 0.0 else hi
            raise ValueError(f"{_BAD_ALPHA}, got {bad!r} (alpha of shape {tuple(alpha.shape)})")
        return
    with torch.no_grad():
        ok = torch.all((alpha >= 0) & (alpha < math.inf))
    torch._assert_async(ok, f"actadapt: {_BAD_ALPHA}")


def adaptive_activation(
    x: Tensor, alpha: Tensor, family: "str | CdfFamily" = "gumbel", form: str = "bounded", *,
    check_alpha: "bool | None" = None,
) -> Tensor:
    r"""The general adaptive activation: a cdf :math:`F_\alpha` from :mod:`actadapt.families` in a form.

    .. math::
        \text{bounded: } \sigma_\alpha(x) = F_\alpha(x), \qquad \text{gated: } \sigma_\alpha(x) = x\,F_\alpha(x),
        \qquad \text{centred: } \sigma_\alpha(x) = 2F_\alpha(2x) - 1

    Args:
        x: input, any shape.
        alpha: positive, finite shape parameter (0 gives the family's limit), broadcastable to ``x``.
        family: a registered family name (see :func:`actadapt.available_families`) or a
            :class:`~actadapt.families.CdfFamily`. Default: ``"gumbel"``.
        form: ``"bounded"``, ``"gated"`` or ``"centred"``. Default: ``"bounded"``.
        check_alpha: check alpha's values (see the module notes); ``None`` follows :func:`set_alpha_check`.
            The modules pass ``False``: their alpha is :math:`g(\rho) > 0` by construction, and a NaN
            :math:`\rho` is a diverged training run (the loss shows it), not a bad argument. Default: ``None``

    Raises:
        ValueError: for an alpha that is negative, inf or NaN (see the module notes for CUDA).

    Shape:
        - x: :math:`(*)`; alpha: broadcastable to :math:`(*)`; output: :math:`(*)`, dtype of ``x``.

    Example::

        >>> import torch
        >>> from actadapt.functional import adaptive_activation
        >>> adaptive_activation(torch.tensor([0.0, 1.0]), torch.tensor(1.0), "normal", "gated")  # GELU
        tensor([0.0000, 0.8413])
    """
    _check_inputs(x, alpha, check_alpha)
    fam, form = get_family(family), check_form(form)
    if form == "centred":
        # 2 F(2x) - 1, the bounded form moved to (-1, 1) (tanh(x) = 2 sigmoid(2x) - 1)
        return 2.0 * cdf_activation(2.0 * x, alpha, fam, False) - 1.0
    return cdf_activation(x, alpha, fam, form == "gated")


def adaptive_gumbel(x: Tensor, alpha: Tensor, *, check_alpha: "bool | None" = None) -> Tensor:
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
    return adaptive_activation(x, alpha, "gumbel", "bounded", check_alpha=check_alpha)


def adaptive_relu(x: Tensor, alpha: Tensor, *, check_alpha: "bool | None" = None) -> Tensor:
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
    return adaptive_activation(x, alpha, "exponential", "gated", check_alpha=check_alpha)


def swish(x: Tensor, alpha: Tensor, *, check_alpha: "bool | None" = None) -> Tensor:
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
    return adaptive_activation(x, alpha, "logistic", "gated", check_alpha=check_alpha)


def adaptive_tanh(x: Tensor, alpha: Tensor, *, check_alpha: "bool | None" = None) -> Tensor:
    r"""Adaptive tanh: the adaptive Gumbel (eq. 1) in the centred form, range :math:`(-1, 1)`:

    .. math::
        \sigma_\alpha(x) = 2\,F_\alpha(2x) - 1 = 1 - 2\,(1 + \alpha e^{2x})^{-1/\alpha}

    :math:`\alpha = 1` is ``tanh`` exactly (:math:`\tanh x = 2\,\mathrm{sigmoid}(2x) - 1`); other alphas bend it
    asymmetrically as eq. 1 bends the sigmoid.

    Example::

        >>> import torch
        >>> from actadapt.functional import adaptive_tanh
        >>> x = torch.linspace(-3, 3, 7)
        >>> torch.allclose(adaptive_tanh(x, torch.tensor(1.0)), torch.tanh(x))
        True
    """
    return adaptive_activation(x, alpha, "gumbel", "centred", check_alpha=check_alpha)
