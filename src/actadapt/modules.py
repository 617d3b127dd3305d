r"""``nn.Module`` wrappers around :func:`actadapt.functional.adaptive_activation`, modelled on ``nn.PReLU``.

Each module holds one raw parameter ``rho`` of shape ``(num_parameters,)`` and maps it to the positive shape
``alpha`` (``exp`` as the paper recommends, or ``softplus``); ``forward`` is one functional call with alpha
reshaped to broadcast along the neuron/channel axis ``dim``.

``num_parameters=None`` makes the module *lazy* (like ``nn.LazyLinear``): ``rho`` is an
``UninitializedParameter`` until the first forward, which reads the number of neurons from the input and
turns the module into its ordinary class (``LazyAdaptiveGumbel`` becomes ``AdaptiveGumbel``).
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy

from .families import CdfFamily, get_family, resolve_form
from .functional import adaptive_activation

__all__ = [
    "AdaptiveActivation",
    "AdaptiveGumbel",
    "AdaptiveReLU",
    "AdaptiveSwish",
    "AdaptiveTanh",
    "PARAMETRIZATIONS",
    "LazyAdaptiveActivation",
    "LazyAdaptiveGumbel",
    "LazyAdaptiveReLU",
    "LazyAdaptiveSwish",
    "LazyAdaptiveTanh",
]

PARAMETRIZATIONS = ("exp", "softplus")


def _rho_from_alpha(alpha: float, parametrization: str) -> float:
    r"""The raw value :math:`\rho` with :math:`\alpha = g(\rho)`, computed in double precision.

    ``softplus`` inverse: :math:`\rho = \log(e^\alpha - 1) = \alpha + \log(-\mathrm{expm1}(-\alpha))`, which is
    exact for tiny :math:`\alpha` (``expm1``) and does not overflow for large :math:`\alpha`.
    """
    if parametrization == "exp":
        return math.log(alpha)
    return alpha + math.log(-math.expm1(-alpha))


def _alpha_from_rho(rho: Tensor, parametrization: str) -> Tensor:
    r""":math:`\alpha = g(\rho)`: ``exp`` (the paper's choice) or ``softplus``."""
    return torch.exp(rho) if parametrization == "exp" else F.softplus(rho)


def _check_init(init, parametrization: str) -> float:
    try:
        init_f = float(init)
    except (TypeError, ValueError):
        raise TypeError(f"init must be a positive float, got {init!r}") from None
    if not (math.isfinite(init_f) and init_f > 0.0):
        raise ValueError(f"init is the initial alpha and must be finite and > 0, got {init!r}")
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(
            f"unknown parametrization {parametrization!r}; valid parametrizations: {', '.join(PARAMETRIZATIONS)}"
        )
    return init_f


def _rho_tensor(init: float, parametrization: str, dtype: torch.dtype) -> Tensor:
    """``rho`` for ``alpha = init`` as a 0-d tensor of ``dtype``, checked: ``g(rho)`` must be finite and > 0 there.

    ``init = 1e308`` gives ``alpha = inf`` in float32 (every output NaN), ``init = 1e-320`` gives 0: both are
    refused here with the range that ``dtype`` can hold, instead of failing later.
    """
    rho = torch.tensor(_rho_from_alpha(init, parametrization), dtype=torch.float64).to(dtype)  # inf on overflow
    alpha = _alpha_from_rho(rho, parametrization)
    if not (torch.isfinite(rho) and torch.isfinite(alpha) and alpha > 0):
        info = torch.finfo(dtype)
        raise ValueError(
            f"init={init!r} is not a finite, positive alpha in {dtype} after the {parametrization!r} "
            f"parametrization (alpha would be {alpha.item()!r}); use an init between {info.tiny:.3g} and "
            f"{info.max:.3g}, or a wider dtype"
        )
    return rho


class AdaptiveActivation(nn.Module):
    r"""An adaptive activation: the cdf :math:`F_\alpha` of a family, in bounded, gated or centred form, with
    a trainable shape :math:`\alpha > 0` per neuron/channel (or one shared).

    .. math::
        \text{bounded: } F_\alpha(x), \qquad \text{gated: } x\,F_\alpha(x), \qquad
        \text{centred: } 2F_\alpha(2x) - 1, \qquad \alpha = \exp(\rho) \ \text{or}\ \mathrm{softplus}(\rho)

    The trained parameter is the unconstrained :math:`\rho` (PAPER.md §1: train :math:`\rho` with
    :math:`\alpha = e^\rho`, so alpha stays positive).

    Args:
        family (str or CdfFamily): a registered cdf family or alias, see :func:`actadapt.available_families`.
            Activation names name the family of their adaptive version and imply its form: ``"relu"`` is the
            gated exponential family, ``"swish"``/``"silu"`` the gated logistic one, ``"gelu"`` the gated
            normal one. Default: ``"gumbel"``
        form (str or None): ``"bounded"``, ``"gated"`` or ``"centred"``; ``None`` takes the form the name
            implies, else ``"bounded"``. Default: ``None``
        num_parameters (int or None): 1 shares one alpha over the whole input; ``n`` gives one alpha per
            neuron/channel along ``dim``; ``None`` infers ``n`` from the first input (lazy module).
            Default: ``1``
        init (float): the initial alpha, ``> 0``; it must stay finite and positive in ``dtype`` after the
            parametrization. Default: ``1.0``
        dim (int): the input axis that carries the neurons/channels; negative counts from the end.
            Ignored when ``num_parameters == 1``. Default: ``1``
        parametrization (str): ``"exp"`` (:math:`\alpha = e^\rho`) or ``"softplus"``
            (:math:`\alpha = \log(1 + e^\rho)`). Default: ``"exp"``
        trainable (bool): if ``False``, ``rho`` is a buffer (saved in the ``state_dict``, not trained).
            Default: ``True``
        max_value (float or None): clamp the output from above, as ReLU6 clamps ReLU at 6:
            :math:`\min(\sigma_\alpha(x), m)`. Default: ``None`` (no clamp)
        inplace (bool): accepted so that the class can stand in as a timm/torchvision ``act_layer``, which
            is called with ``inplace=True``; the output is always a new tensor. Default: ``False``
        device: device of ``rho``. Default: ``None``
        dtype: dtype of ``rho``. Default: ``None``

    ``num_parameters`` and ``init`` are the first two arguments of the named classes, as in
    ``nn.PReLU(num_parameters, init)``: ``AdaptiveReLU(64, 100.0)``. The other arguments are keywords.

    Shape:
        - Input: :math:`(*)`, any shape. With ``num_parameters = n > 1`` the axis ``dim`` must have size
          ``n``: dim 1 for :math:`(N, C, *)` and :math:`(N, F)`, ``dim=-1`` for :math:`(N, L, C)`. A 1-D
          input :math:`(F)` is one unbatched sample: its only axis carries the neurons.
        - Output: :math:`(*)`, same shape and dtype as the input.

    Attributes:
        rho (Tensor): the raw parameter of shape ``(num_parameters,)`` (a buffer if not ``trainable``).
        alpha (Tensor): the positive shape, ``exp(rho)`` or ``softplus(rho)``, same shape (read only).

    .. note::
        As for ``nn.PReLU``, weight decay on ``rho`` is usually unwanted: use
        :func:`actadapt.param_groups`, which gives alpha its own learning rate and no weight decay.

    Example::

        >>> import torch
        >>> from actadapt import AdaptiveActivation
        >>> m = AdaptiveActivation("normal", "gated", num_parameters=4, init=1.0)  # starts as GELU
        >>> x = torch.randn(2, 4, 5)
        >>> torch.allclose(m(x), torch.nn.functional.gelu(x), atol=1e-6)
        True
        >>> m.alpha.shape
        torch.Size([4])
    """

    num_parameters: Optional[int]
    _show_family = True  # extra_repr shows family and form (the named subclasses do not need to)

    def __init__(
        self,
        family: Union[str, CdfFamily] = "gumbel",
        form: Optional[str] = None,
        num_parameters: Optional[int] = 1,
        init: float = 1.0,
        *,
        dim: int = 1,
        parametrization: str = "exp",
        trainable: bool = True,
        max_value: Optional[float] = None,
        inplace: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        fam = get_family(family)  # fails with the list of valid families
        self.form = resolve_form(family, form)
        # Keep the canonical name (picklable, resolves aliases); a CdfFamily object is kept as given.
        self.family: Union[str, CdfFamily] = fam.name if isinstance(family, str) else fam
        if num_parameters is not None and (
            isinstance(num_parameters, bool) or not isinstance(num_parameters, int) or num_parameters < 1
        ):
            raise ValueError(f"num_parameters must be a positive int or None (lazy), got {num_parameters!r}")
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"dim must be an int, got {type(dim).__name__}")
        init_f = _check_init(init, parametrization)
        _rho_tensor(init_f, parametrization, dtype or torch.get_default_dtype())  # fail now, not at first forward
        self.num_parameters = num_parameters
        self.dim = dim
        self.init = init_f
        self.parametrization = parametrization
        self.trainable = bool(trainable)
        if max_value is not None and not math.isfinite(float(max_value)):
            raise ValueError(f"max_value must be a finite number or None, got {max_value!r}")
        self.max_value = None if max_value is None else float(max_value)

        if num_parameters is None:
            rho: Tensor = UninitializedParameter(**factory_kwargs) if self.trainable else UninitializedBuffer(**factory_kwargs)
        else:
            rho = torch.empty(num_parameters, **factory_kwargs)
            rho = nn.Parameter(rho) if self.trainable else rho
        if self.trainable:
            self.rho = rho
        else:
            self.register_buffer("rho", rho)

        if num_parameters is None and not isinstance(self, LazyModuleMixin):
            # Become the lazy twin of this class (what LazyModuleMixin.__init__ would have set up); the first
            # forward sizes rho and turns the module back into type(self).
            self.__class__ = _lazy_class(type(self))
            self._load_hook = self._register_load_state_dict_pre_hook(self._lazy_load_hook)
            self._initialize_hook = self.register_forward_pre_hook(self._infer_parameters, with_kwargs=True)
        self.reset_parameters()

    # ------------------------------------------------------------------------------------ parameters
    def reset_parameters(self) -> None:
        r"""Fill ``rho`` so that ``alpha == init`` (to rounding). A no-op while the module is lazy.

        Raises:
            ValueError: if ``init`` is not a finite, positive alpha in ``rho``'s dtype.
        """
        if is_lazy(self.rho):
            return
        with torch.no_grad():
            self.rho.copy_(_rho_tensor(self.init, self.parametrization, self.rho.dtype).expand_as(self.rho))

    @property
    def alpha(self) -> Tensor:
        r"""The positive shape :math:`\alpha = g(\rho)`, shape ``(num_parameters,)``, differentiable in ``rho``."""
        if is_lazy(self.rho):
            raise RuntimeError(
                f"{self._get_name()} has num_parameters=None and has not seen an input yet; "
                "run a forward pass (or load a state_dict) to size alpha"
            )
        return self._alpha()

    def _apply(self, fn, recurse: bool = True):
        # .half(), .to(dtype), ...: a cast can turn a valid alpha into inf or 0 (init=1e6 in float16), so the
        # cast is where that fails, once, instead of every forward checking alpha's values (as nn.RNNBase
        # re-checks its weights in _apply).
        out = super()._apply(fn, recurse)
        if not is_lazy(self.rho):
            with torch.no_grad():
                alpha = _alpha_from_rho(self.rho, self.parametrization)
                ok = bool(torch.isfinite(alpha).all() and (alpha > 0).all())
            if not ok:
                info = torch.finfo(self.rho.dtype)
                raise ValueError(
                    f"{self._get_name()}: alpha is not finite and > 0 in {self.rho.dtype} after this cast "
                    f"(alpha between {info.tiny:.3g} and {info.max:.3g} fits); keep the module in a wider dtype "
                    "or give it a smaller init"
                )
        return out

    def _alpha(self) -> Tensor:
        # No lazy check here: forward runs after the lazy pre-hook, and torch.compile(fullgraph=True) cannot
        # trace is_lazy().
        return _alpha_from_rho(self.rho, self.parametrization)

    def _initialize_lazy(self, input: Tensor, *args, **kwargs) -> None:
        """Size ``rho`` from the first input (called by ``LazyModuleMixin``'s forward pre-hook)."""
        if not self.has_uninitialized_params():  # e.g. filled by load_state_dict
            self.num_parameters = int(self.rho.shape[0])
            return
        if not isinstance(input, Tensor):
            raise TypeError(f"{self._get_name()} expects a Tensor input, got {type(input).__name__}")
        if input.dim() == 0:
            raise ValueError(
                f"{self._get_name()} with num_parameters=None needs an input with a neuron axis (dim={self.dim}), "
                "got a 0-dim tensor"
            )
        n = int(input.shape[self._axis(input)])
        with torch.no_grad():
            self.rho.materialize((n,))
        self.num_parameters = n
        self.reset_parameters()

    # ------------------------------------------------------------------------------------ forward
    def _axis(self, input: Tensor) -> int:
        nd = input.dim()
        if nd == 1:  # one unbatched sample (F,): its only axis carries the neurons
            return 0
        axis = self.dim + nd if self.dim < 0 else self.dim
        if not 0 <= axis < nd:
            raise ValueError(
                f"{self._get_name()}: dim={self.dim} is out of range for an input of shape {tuple(input.shape)} "
                f"(expected dim in [{-nd}, {nd - 1}])"
            )
        return axis

    def _alpha_view(self, alpha: Tensor, input: Tensor) -> Tensor:
        n = alpha.shape[0]
        if self.num_parameters == 1:
            return alpha.reshape(())  # shared: broadcasts to any input
        axis = self._axis(input)
        if input.shape[axis] != n:
            site = getattr(self, "_converted_from", None)
            hint = (
                f"; this module replaced {site!r}: if that module is called at several places with different "
                "widths, convert(model, example_inputs=...) gives each call site its own alphas"
                if site is not None
                else ", or set dim= to the neuron/channel axis"
            )
            raise ValueError(
                f"{self._get_name()} has num_parameters={n} alphas along dim={self.dim}, but the input of shape "
                f"{tuple(input.shape)} has size {input.shape[axis]} on that axis (dim {axis}); "
                f"expected size {n} there{hint}"
            )
        # (n, 1, ..., 1): broadcasts against the trailing axes after `axis`  # (C, 1, 1) for (N, C, H, W)
        return alpha.reshape((n,) + (1,) * (input.dim() - axis - 1))

    def forward(self, input: Tensor) -> Tensor:
        # alpha = g(rho) is positive by construction: no per-call value check (see adaptive_activation)
        alpha = self._alpha_view(self._alpha(), input)
        out = adaptive_activation(input, alpha, self.family, self.form, check_alpha=False)
        return out if self.max_value is None else torch.clamp(out, max=self.max_value)

    def extra_repr(self) -> str:
        parts = []
        if type(self)._show_family:
            fam = self.family if isinstance(self.family, str) else self.family.name
            parts += [f"family={fam!r}", f"form={self.form!r}"]
        parts.append(f"num_parameters={self.num_parameters}")
        if self.num_parameters != 1:
            parts.append(f"dim={self.dim}")
        parts.append(f"init={self.init}")
        if self.parametrization != "exp":
            parts.append(f"parametrization={self.parametrization!r}")
        if self.max_value is not None:
            parts.append(f"max_value={self.max_value}")
        if not self.trainable:
            parts.append("trainable=False")
        return ", ".join(parts)


class _NamedAdaptive(AdaptiveActivation):
    """An :class:`AdaptiveActivation` with its family and form fixed by the class (``_FAMILY``, ``_FORM``)."""

    _show_family = False
    _FAMILY = "gumbel"
    _FORM = "bounded"

    def __init__(
        self,
        num_parameters: Optional[int] = 1,
        init: float = 1.0,
        *,
        dim: int = 1,
        parametrization: str = "exp",
        trainable: bool = True,
        max_value: Optional[float] = None,
        inplace: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            self._FAMILY, self._FORM, num_parameters, init, dim=dim, parametrization=parametrization,
            trainable=trainable, max_value=max_value, device=device, dtype=dtype,
        )


_NAMED_ARGS = r"""
    Args:
        num_parameters (int or None): 1 shared, ``n`` per neuron/channel along ``dim``, ``None`` lazy
            (inferred at the first forward). Default: ``1``
        init (float): the initial alpha, ``> 0`` (finite and positive in ``dtype`` after the
            parametrization). Default: ``1.0``
        dim (int): the axis carrying the neurons/channels (keyword). Default: ``1``
        parametrization (str): ``"exp"`` or ``"softplus"``. Default: ``"exp"``
        trainable (bool): ``False`` stores ``rho`` as a buffer. Default: ``True``
        max_value (float or None): clamp the output from above (6 for ReLU6). Default: ``None``
        inplace (bool): ignored (for use as a timm/torchvision ``act_layer``). Default: ``False``
        device: device of ``rho``. Default: ``None``
        dtype: dtype of ``rho``. Default: ``None``

    Shape:
        - Input: :math:`(*)`; with ``num_parameters = n > 1``, size ``n`` on ``dim`` (dim 1 of
          :math:`(N, C, *)`, ``dim=-1`` for :math:`(N, L, C)`).
        - Output: :math:`(*)`, same shape as the input.

    Attributes:
        rho (Tensor): raw parameter, shape ``(num_parameters,)``.
        alpha (Tensor): ``exp(rho)`` (or ``softplus(rho)``).
"""


class AdaptiveGumbel(_NamedAdaptive):
    __doc__ = r"""Adaptive Gumbel (eq. 1), bounded, with trainable :math:`\alpha > 0` per neuron/channel:

    .. math::
        \sigma_\alpha(x) = 1 - (1 + \alpha e^x)^{-1/\alpha}

    ``init=1`` starts as the logistic sigmoid; :math:`\alpha \to 0` approaches the Gumbel cdf
    :math:`1 - \exp(-e^x)`. The paper recommends it for fully connected layers.
""" + _NAMED_ARGS + r"""
    Example::

        >>> import torch
        >>> from actadapt import AdaptiveGumbel
        >>> m = AdaptiveGumbel(3)
        >>> x = torch.randn(4, 3)
        >>> torch.allclose(m(x), torch.sigmoid(x), atol=1e-6)
        True
    """

    _FAMILY, _FORM = "gumbel", "bounded"


class AdaptiveReLU(_NamedAdaptive):
    __doc__ = r"""Adaptive ReLU (eq. 2), gated exponential cdf, with trainable :math:`\alpha > 0` per neuron/channel:

    .. math::
        \sigma_\alpha(x) = x\,(1 - e^{-\alpha x})\ \text{for}\ x > 0, \qquad 0\ \text{otherwise}

    :math:`\alpha \to \infty` recovers ReLU (the largest difference is :math:`1/(\alpha e)`, at
    :math:`x = 1/\alpha`); ``init=1`` starts as :math:`x(1 - e^{-x})`. The paper recommends it for
    convolutional layers.
""" + _NAMED_ARGS + r"""
    Example::

        >>> import torch
        >>> from actadapt import AdaptiveReLU
        >>> m = AdaptiveReLU(8, 100.0)   # per channel of (N, 8, H, W), close to ReLU
        >>> m(torch.randn(2, 8, 5, 5)).shape
        torch.Size([2, 8, 5, 5])
    """

    _FAMILY, _FORM = "exponential", "gated"


class AdaptiveSwish(_NamedAdaptive):
    __doc__ = r"""Swish (eq. 3), gated logistic cdf, with trainable :math:`\alpha > 0` per neuron/channel:

    .. math::
        \sigma_\alpha(x) = x\,\mathrm{sigmoid}(\alpha x)

    ``init=1`` starts as SiLU.
""" + _NAMED_ARGS + r"""
    Example::

        >>> import torch
        >>> from actadapt import AdaptiveSwish
        >>> m = AdaptiveSwish(None, dim=-1)   # lazy: size read from the first input
        >>> x = torch.randn(2, 7, 16)
        >>> torch.allclose(m(x), torch.nn.functional.silu(x), atol=1e-6)
        True
        >>> m.alpha.shape
        torch.Size([16])
    """

    _FAMILY, _FORM = "logistic", "gated"


class AdaptiveTanh(_NamedAdaptive):
    __doc__ = r"""Adaptive tanh: the adaptive Gumbel (eq. 1) in the centred form, range :math:`(-1, 1)`:

    .. math::
        \sigma_\alpha(x) = 2\,F_\alpha(2x) - 1 = 1 - 2\,(1 + \alpha e^{2x})^{-1/\alpha}

    ``init=1`` starts as ``tanh`` exactly; other alphas bend it asymmetrically, as eq. 1 bends the sigmoid.
    :func:`actadapt.convert` puts it in place of ``tanh``.
""" + _NAMED_ARGS + r"""
    Example::

        >>> import torch
        >>> from actadapt import AdaptiveTanh
        >>> m = AdaptiveTanh(3)
        >>> x = torch.randn(4, 3)
        >>> torch.allclose(m(x), torch.tanh(x), atol=1e-6)
        True
    """

    _FAMILY, _FORM = "gumbel", "centred"


# ---------------------------------------------------------------------------------------- lazy twins
_LAZY_CLASSES: dict[type, type] = {}


def _make_lazy(cls: type) -> type:
    lazy = type(
        f"Lazy{cls.__name__}",
        (LazyModuleMixin, cls),
        {
            "cls_to_become": cls,
            # LazyModuleMixin comes first in the MRO and its initialize_parameters only raises.
            "initialize_parameters": AdaptiveActivation._initialize_lazy,
            "__module__": cls.__module__,
            "__doc__": f"{cls.__name__} with ``num_parameters=None`` before its first forward: ``rho`` is an "
            f"UninitializedParameter; the first input sizes it and the module becomes a {cls.__name__}. "
            f"Create it as ``{cls.__name__}(..., num_parameters=None)``.",
        },
    )
    _LAZY_CLASSES[cls] = lazy
    return lazy


def _lazy_class(cls: type) -> type:
    """The lazy twin of an AdaptiveActivation class (made on demand for user subclasses)."""
    lazy = _LAZY_CLASSES.get(cls)
    return lazy if lazy is not None else _make_lazy(cls)


# Module-level twins of the built-in classes, so that pickling an uninitialised module finds its class.
LazyAdaptiveActivation = _make_lazy(AdaptiveActivation)
LazyAdaptiveGumbel = _make_lazy(AdaptiveGumbel)
LazyAdaptiveReLU = _make_lazy(AdaptiveReLU)
LazyAdaptiveSwish = _make_lazy(AdaptiveSwish)
LazyAdaptiveTanh = _make_lazy(AdaptiveTanh)
