r"""One factory for every activation name in the package: :func:`get_activation` and :func:`activation_spec`.

Names are case-insensitive and come from two places, nowhere else:

* **Fixed activations**, the table :data:`FIXED` below: ``relu`` (alias ``ReLU``), ``relu6``, ``leaky_relu``,
  ``elu`` (``celu``), ``selu``, ``gelu``, ``gelu_tanh``, ``quick_gelu``, ``silu``, ``mish``, ``softplus``,
  ``sigmoid`` (``Sig``), ``tanh``, ``hardtanh``, ``hardswish``, ``hardsigmoid``. Each row also says what
  :func:`actadapt.convert` puts in its place (``init="match"``) and how far that starts from it.
* **Adaptive activations**, from the cdf-family registry (:func:`actadapt.register_family`): every family
  in every form as ``"<family>_<form>"`` (``normal_gated``, ``cauchy_bounded``, ``gumbel_centred``), and the
  family aliases, which may imply a form: ``agumb``/``gumbel``/``adaptive_gumbel`` (AdaptiveGumbel),
  ``arelu``/``adaptive_relu`` (AdaptiveReLU), ``swish``/``aswish``/``adaptive_swish`` (AdaptiveSwish),
  ``adaptive_tanh`` (AdaptiveTanh), and ``arelu6`` (AdaptiveReLU clamped at 6, for ReLU6).

A name found in both reads as the fixed activation here (``get_activation("relu")`` is ``nn.ReLU``, as in
timm and in the paper's tables, where ReLU and Sig are the fixed baselines of AReLU and AGumb). Where only an
adaptive activation makes sense (a :func:`~actadapt.convert` target, the family of
:class:`~actadapt.AdaptiveActivation`, :func:`~actadapt.get_family`) a fixed name stands for its adaptive
version built on the same cdf: ``"relu"`` for AReLU, ``"silu"`` for Swish, ``"sigmoid"`` for the logistic cdf,
``"gelu"`` for the gated normal cdf (exact GELU at alpha = 1), ``"tanh"`` for AdaptiveTanh;
``activation_spec(name, adaptive=True)`` resolves a name that way.

Example::

    >>> import functools, torch, actadapt
    >>> actadapt.get_activation("AReLU", num_parameters=8, init=100.0)
    AdaptiveReLU(num_parameters=8, dim=1, init=100.0)
    >>> actadapt.get_activation("ReLU", num_parameters=8, init=100.0)  # fixed: the alpha arguments are ignored
    ReLU()
    >>> layer = actadapt.activation_layer("swish", num_parameters=None)  # a timm/torchvision act_layer
    >>> layer(inplace=True)
    LazyAdaptiveSwish(num_parameters=None, dim=1, init=1.0)
    >>> actadapt.activation_spec("Sig").function(torch.zeros(2))
    tensor([0.5000, 0.5000])
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .families import FORMS, available_families, family_aliases, get_family, implied_form
from .functional import adaptive_activation
from .modules import AdaptiveActivation, AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish, AdaptiveTanh

__all__ = [
    "ActivationSpec",
    "FixedActivation",
    "Match",
    "FIXED",
    "ALPHA_ARGUMENTS",
    "ALPHA_MAX",
    "get_activation",
    "activation_layer",
    "activation_spec",
    "available_activations",
    "fixed_activation",
]

#: Keyword arguments of the adaptive modules that a fixed activation accepts and ignores, so that one call
#: builds any cell of a grid over names (``get_activation(name, num_parameters=c, init=a)``).
ALPHA_ARGUMENTS = frozenset({"num_parameters", "init", "dim", "parametrization", "trainable", "device", "dtype"})


@dataclass(frozen=True)
class Match:
    r"""Where :func:`actadapt.convert` with ``init="match"`` starts in place of a fixed activation :math:`f`.

    Attributes:
        target: the adaptive activation put in (an :func:`activation_spec` name).
        alpha: its initial alpha.
        max_error: :math:`\max_x |\sigma_\alpha(x) - f(x)|` over ``x_range`` (0: the same function).
        x_range: where ``max_error`` holds; outside it ``note`` says what happens.
        note: how alpha was chosen and the error outside ``x_range``.
        grows: the function is the limit alpha -> inf of the target, so there is no best alpha and the error
            falls as :math:`1/\alpha`: :func:`actadapt.convert` raises alpha tenfold (up to
            :data:`ALPHA_MAX`) while the converted model's outputs on the example inputs are further than its
            ``tolerance`` from the original's.
    """

    target: str
    alpha: float
    max_error: float
    x_range: Tuple[float, float] = (-math.inf, math.inf)
    note: str = ""
    grows: bool = False


@dataclass(frozen=True)
class FixedActivation:
    """A fixed (non-adaptive) activation that the package knows by name and recognises in models.

    Attributes:
        name: canonical name (lower case).
        aliases: other names (``"Sig"``), case-insensitive.
        reference: the function itself, written with torch ops (``torch.relu``), any float dtype.
        layer: its ``torch.nn`` module class (or a partial), or ``None`` if torch has none.
        match: what replaces it when converting, see :class:`Match`.
        classes: ``torch.nn`` classes that compute it for some setting of their arguments (``nn.LeakyReLU``
            with any slope): the fallback when a module does not compute :attr:`reference` exactly.
        functions: the torch callables that compute it (``F.relu``, ``torch.relu``, ``Tensor.relu``, their
            in-place twins), which :func:`actadapt.convert` finds in ``forward``.
        monotone: non-decreasing in x.
        description: one line.
    """

    name: str
    aliases: Tuple[str, ...]
    reference: Callable[[Tensor], Tensor]
    layer: Optional[Callable[..., nn.Module]]
    match: Match
    classes: Tuple[type, ...] = ()
    functions: Tuple[Callable, ...] = ()
    monotone: bool = True
    description: str = ""


def _quick_gelu(x: Tensor) -> Tensor:
    return x * torch.sigmoid(1.702 * x)


_E = math.e
T = torch.Tensor
# The matched alphas and errors are measured by tests/test_activations.py with actadapt.matching on a
# float64 grid (alphas that best fit are minimax fits over [-12, 12]). ReLU-like functions have no best alpha
# (the error 1/(alpha e) falls as alpha grows); 100 keeps it below 0.4% of a unit-scale input while the
# gradient for alpha stays usable (it falls as 1/alpha), and convert raises it where a model needs more.
ALPHA_MAX = 1e4
FIXED: Tuple[FixedActivation, ...] = (
    FixedActivation(
        "relu", ("rectifier",), torch.relu, nn.ReLU,
        Match("arelu", 100.0, 1 / (100 * _E), note="1/(alpha e), at x = 1/alpha", grows=True),
        (nn.ReLU,), (F.relu, F.relu_, torch.relu, torch.relu_, T.relu, T.relu_), description="max(x, 0)",
    ),
    FixedActivation(
        "relu6", (), F.relu6, nn.ReLU6,
        Match("arelu6", 100.0, 1 / (100 * _E), note="1/(alpha e); AReLU clamped at 6, as ReLU6 clamps ReLU", grows=True),
        (nn.ReLU6,), (F.relu6,), description="min(max(x, 0), 6)",
    ),
    FixedActivation(
        "leaky_relu", ("lrelu",), F.leaky_relu, nn.LeakyReLU,
        Match("arelu", 100.0, 1 / (100 * _E), (0.0, math.inf), "0.01 |x| below 0 (the slope times |x|)", grows=True),
        (nn.LeakyReLU,), (F.leaky_relu, F.leaky_relu_), description="x, or 0.01 x below 0",
    ),
    FixedActivation(
        "elu", ("celu",), F.elu, nn.ELU,
        Match("arelu", 100.0, 1 / (100 * _E), (0.0, math.inf), "1 - e^x below 0 (up to 1)"),
        (nn.ELU, nn.CELU), (F.elu, F.elu_, F.celu, F.celu_, torch.celu, torch.celu_), description="x, or e^x - 1 below 0",
    ),
    FixedActivation(
        "selu", (), F.selu, nn.SELU,
        Match("arelu", 100.0, 1.0507009873554805 * 1.6732632423543772, (-math.inf, 0.0), "0.0507 x above 0"),
        (nn.SELU,), (F.selu, F.selu_, torch.selu, torch.selu_), description="1.0507 ELU(x; 1.6733)",
    ),
    FixedActivation(
        "gelu", (), F.gelu, nn.GELU,
        Match("swish", 1.772935, 0.013915, note="minimax fit; exact: target 'normal_gated', alpha 1"),
        (nn.GELU,), (F.gelu,), monotone=False, description="x Phi(x)",
    ),
    FixedActivation(
        "gelu_tanh", ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"),
        functools.partial(F.gelu, approximate="tanh"), functools.partial(nn.GELU, approximate="tanh"),
        Match("swish", 1.774496, 0.014218, note="minimax fit"),
        monotone=False, description="the tanh approximation of GELU",
    ),
    FixedActivation(
        "quick_gelu", (), _quick_gelu, None, Match("swish", 1.702, 0.0, note="exact"),
        monotone=False, description="x sigmoid(1.702 x)",
    ),
    FixedActivation(
        "silu", (), F.silu, nn.SiLU, Match("swish", 1.0, 0.0, note="exact"),
        (nn.SiLU,), (F.silu,), monotone=False, description="x sigmoid(x)",
    ),
    FixedActivation(
        "mish", (), F.mish, nn.Mish, Match("swish", 1.252511, 0.102282, note="minimax fit"),
        (nn.Mish,), (F.mish,), monotone=False, description="x tanh(softplus(x))",
    ),
    FixedActivation(
        "softplus", (), F.softplus, nn.Softplus,
        Match("arelu", 100.0, 0.693872, note="about log 2, near x = 0, where every gated form is 0"),
        (nn.Softplus,), (F.softplus,), description="log(1 + e^x)",
    ),
    FixedActivation(
        "sigmoid", ("sig", "logistic_sigmoid"), torch.sigmoid, nn.Sigmoid, Match("agumb", 1.0, 0.0, note="exact"),
        (nn.Sigmoid,), (torch.sigmoid, T.sigmoid, T.sigmoid_, torch.sigmoid_, F.sigmoid, torch.special.expit),
        description="1 / (1 + e^-x)",
    ),
    FixedActivation(
        "hardsigmoid", (), F.hardsigmoid, nn.Hardsigmoid,
        Match("logistic_bounded", 0.941274, 0.056052, note="minimax fit"),
        (nn.Hardsigmoid,), (F.hardsigmoid,), description="min(max(x/6 + 1/2, 0), 1)",
    ),
    FixedActivation(
        "tanh", (), torch.tanh, nn.Tanh, Match("adaptive_tanh", 1.0, 0.0, note="exact"),
        (nn.Tanh,), (torch.tanh, T.tanh, T.tanh_, torch.tanh_, F.tanh), description="tanh(x)",
    ),
    FixedActivation(
        "hardtanh", (), F.hardtanh, nn.Hardtanh, Match("adaptive_tanh", 1.0, 0.238406, note="at x = 1"),
        (nn.Hardtanh,), (F.hardtanh, F.hardtanh_), description="min(max(x, -1), 1)",
    ),
    FixedActivation(
        "hardswish", (), F.hardswish, nn.Hardswish, Match("swish", 1.048653, 0.123827, note="minimax fit"),
        (nn.Hardswish,), (F.hardswish,), monotone=False, description="x hardsigmoid(x)",
    ),
)

_FIXED_BY_NAME: dict[str, FixedActivation] = {}
for _entry in FIXED:
    for _key in (_entry.name, *_entry.aliases):
        _FIXED_BY_NAME[_key.lower()] = _entry

# The adaptive (family, form) pairs that have a class of their own, and their canonical short names.
_NAMED_CLASSES: dict[Tuple[str, str], Tuple[str, type]] = {
    ("gumbel", "bounded"): ("agumb", AdaptiveGumbel),
    ("exponential", "gated"): ("arelu", AdaptiveReLU),
    ("logistic", "gated"): ("swish", AdaptiveSwish),
    ("gumbel", "centred"): ("adaptive_tanh", AdaptiveTanh),
}


@dataclass(frozen=True)
class ActivationSpec:
    """What a name stands for. :func:`activation_spec` returns it; :func:`get_activation` calls it.

    Attributes:
        name: canonical name (``"arelu"``, ``"relu"``, ``"normal_gated"``).
        adaptive: ``True`` for an adaptive activation (it has alphas).
        layer: the module class, or a ``functools.partial`` of it: a timm/torchvision ``act_layer``.
        family, form: the cdf family and form of an adaptive activation; ``None`` for a fixed one.
        monotone: non-decreasing in x for every alpha (Swish and the other gated forms are not, except AReLU).
        max_value: the output clamp of an adaptive activation (``arelu6``: 6), else ``None``.
        fixed: the :class:`FixedActivation` row of a fixed activation, else ``None``.
    """

    name: str
    adaptive: bool
    layer: Callable[..., nn.Module]
    family: Optional[str] = None
    form: Optional[str] = None
    monotone: bool = True
    max_value: Optional[float] = None
    fixed: Optional[FixedActivation] = field(default=None, repr=False)

    def function(self, x: Tensor, alpha: Optional[Tensor] = None, *, check_alpha: Optional[bool] = None) -> Tensor:
        """The activation as a function of ``x`` (and ``alpha``, which a fixed activation ignores);
        ``check_alpha`` as in :func:`actadapt.functional.adaptive_activation`."""
        if not self.adaptive:
            return self.fixed.reference(x)  # type: ignore[union-attr]
        if alpha is None:
            raise TypeError(f"{self.name} is adaptive: function(x, alpha) needs alpha")
        out = adaptive_activation(x, alpha, self.family, self.form, check_alpha=check_alpha)  # type: ignore[arg-type]
        return out if self.max_value is None else torch.clamp(out, max=self.max_value)

    def __call__(self, **kwargs: Any) -> nn.Module:
        """Build the module. A fixed activation drops :data:`ALPHA_ARGUMENTS` (it has no alpha)."""
        if not self.adaptive:
            kwargs = {k: v for k, v in kwargs.items() if k not in ALPHA_ARGUMENTS}
            if self.layer is None:
                raise ValueError(f"{self.name!r} has no torch module; it is recognised by actadapt.convert only")
        return self.layer(**kwargs)


def _adaptive(family_name: str, form: str) -> ActivationSpec:
    named = _NAMED_CLASSES.get((family_name, form))
    if named is not None:
        name, layer = named
    else:
        name, layer = f"{family_name}_{form}", functools.partial(AdaptiveActivation, family_name, form)
    return ActivationSpec(name, True, layer, family_name, form, monotone=form != "gated" or family_name == "exponential")


# Adaptive activations with an output clamp: AReLU clamped at 6 stands for ReLU6.
_CLAMPED: dict[str, Tuple[str, float]] = {"arelu6": ("arelu", 6.0), "adaptive_relu6": ("arelu", 6.0)}


def _adaptive_spec(key: str) -> Optional[ActivationSpec]:
    """``key`` read as an adaptive activation: a family alias or name, optionally ``_<form>``."""
    if key in _CLAMPED:
        base, top = _CLAMPED[key]
        spec = _adaptive_spec(base)
        return ActivationSpec("arelu6", True, functools.partial(spec.layer, max_value=top), spec.family, spec.form,
                              spec.monotone, top)
    for form in FORMS:
        if key.endswith(f"_{form}") or key.endswith(f"-{form}"):
            base = key[: -len(form) - 1]
            try:
                fam = get_family(base)
            except ValueError:
                break
            implied = implied_form(base)
            if implied is not None and implied != form:
                return None
            return _adaptive(fam.name, form)
    try:
        fam = get_family(key)
    except ValueError:
        return None
    return _adaptive(fam.name, implied_form(key) or "bounded")


def _unknown(name: str, adaptive: bool) -> ValueError:
    names = ", ".join(available_activations(adaptive_only=adaptive))
    kind = "adaptive activation" if adaptive else "activation"
    return ValueError(f"unknown {kind} {name!r}; valid names: {names} (case-insensitive)")


def activation_spec(name: "str | ActivationSpec", adaptive: bool = False) -> ActivationSpec:
    """Look up an activation name (case-insensitive); an :class:`ActivationSpec` passes through.

    Args:
        name: a fixed or adaptive activation name or alias (see the module notes).
        adaptive: read ``name`` as an adaptive activation: a fixed name stands for its adaptive version on
            the same cdf (``"relu"`` is AReLU, ``"gelu"`` the gated normal cdf, ``"tanh"`` AdaptiveTanh).
            Default: ``False``

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if isinstance(name, ActivationSpec):
        return name
    if not isinstance(name, str):
        raise TypeError(f"an activation name must be a str, got {type(name).__name__}")
    key = name.lower()
    if not adaptive:
        fixed = _FIXED_BY_NAME.get(key)
        if fixed is not None:
            return fixed_activation(fixed)
    spec = _adaptive_spec(key)
    if spec is None:
        raise _unknown(name, adaptive)
    return spec


def fixed_activation(entry: FixedActivation) -> ActivationSpec:
    """The :class:`ActivationSpec` of a row of :data:`FIXED`."""
    return ActivationSpec(entry.name, False, entry.layer, monotone=entry.monotone, fixed=entry)  # type: ignore[arg-type]


def get_activation(name: "str | ActivationSpec", **kwargs: Any) -> nn.Module:
    """Build the activation ``name``: ``get_activation("AReLU", num_parameters=20, init=1.0)``.

    Args:
        name: an activation name, see :func:`available_activations` (``"ReLU"``, ``"AReLU"``, ``"AGumb"``,
            ``"Sig"``, ``"Swish"``, ``"normal_gated"``, ...).
        **kwargs: the module's arguments. Adaptive activations take ``num_parameters``, ``init``, ``dim``,
            ``parametrization``, ``trainable``, ``device``, ``dtype``; a fixed activation ignores those
            (:data:`ALPHA_ARGUMENTS`) and takes its own (``inplace``, ``negative_slope``).

    Returns:
        a new ``nn.Module``.
    """
    return activation_spec(name)(**kwargs)


def activation_layer(name: "str | ActivationSpec", **kwargs: Any) -> Callable[..., nn.Module]:
    """A class or ``functools.partial`` for a timm/torchvision-style ``act_layer`` argument.

    ``timm.create_model("resnet18", act_layer=actadapt.activation_layer("arelu", num_parameters=None))``
    gives every block a lazy per-channel AReLU; the model calls it with ``inplace=True``, which the adaptive
    modules accept and ignore. A fixed activation drops :data:`ALPHA_ARGUMENTS`.
    """
    spec = activation_spec(name)
    if not spec.adaptive:
        kwargs = {k: v for k, v in kwargs.items() if k not in ALPHA_ARGUMENTS}
        if spec.layer is None:
            raise ValueError(f"{spec.name!r} has no torch module; it is recognised by actadapt.convert only")
    return functools.partial(spec.layer, **kwargs) if kwargs else spec.layer


def available_activations(adaptive_only: bool = False) -> list:
    """Every accepted name (canonical names and aliases, lower case), sorted; the ``<family>_<form>`` names
    are listed for the registered families."""
    names = set() if adaptive_only else set(_FIXED_BY_NAME)
    names.update(family_aliases())
    for fam in available_families():
        names.add(fam)
        names.update(f"{fam}_{form}" for form in FORMS)
    names.update(n for n, _ in _NAMED_CLASSES.values())
    names.update(_CLAMPED)
    return sorted(names)
