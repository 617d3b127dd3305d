r"""Model surgery: replace the activation modules of an existing model with adaptive ones.

:func:`convert` walks ``named_children()`` recursively (so ``nn.Sequential``, ``nn.ModuleList``,
``nn.ModuleDict`` and torchvision-style nested models all work), swaps every selected activation module for
an :class:`~actadapt.AdaptiveActivation`, and reports what it replaced.

.. note::
    Only activation *modules* can be replaced. An activation called as a function inside ``forward``
    (``F.relu(x)``, ``torch.sigmoid(x)``, ``x.relu()``) is not a module and stays as it is: rewrite that
    ``forward`` to call a module (or an :class:`~actadapt.AdaptiveActivation`) instead. :func:`convert` warns
    when it finds nothing to replace.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from actadapt import convert
    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10), nn.Sigmoid())
    >>> new, replaced = convert(model, "auto", example_inputs=torch.randn(1, 3, 8, 8))
    >>> [(r.name, r.old_type, r.new_type, r.num_parameters) for r in replaced]
    [('1', 'ReLU', 'AdaptiveReLU', 8), ('4', 'Sigmoid', 'AdaptiveGumbel', 10)]
"""

from __future__ import annotations

import copy
import fnmatch
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .modules import AdaptiveActivation, AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish

__all__ = ["convert", "Conversion", "Replacement", "DEFAULT_TYPES", "ACTIVATIONS", "AUTO"]

#: Activation module types that :func:`convert` replaces by default (``isinstance`` match).
DEFAULT_TYPES: Tuple[type, ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
)


def _normal_gated(**kwargs: Any) -> AdaptiveActivation:
    return AdaptiveActivation("normal", "gated", **kwargs)


#: Names accepted for ``activation`` (lower case), each a class or a factory taking the module keyword
#: arguments (``num_parameters``, ``dim``, ``init``, ...).
ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "gumbel": AdaptiveGumbel,
    "agumb": AdaptiveGumbel,
    "relu": AdaptiveReLU,
    "arelu": AdaptiveReLU,
    "swish": AdaptiveSwish,
    "silu": AdaptiveSwish,
    "gelu": _normal_gated,
}

#: ``activation="auto"``: like for like, first ``isinstance`` match wins. Sigmoid-shaped (saturating)
#: activations become the adaptive Gumbel (alpha=1 is the sigmoid), SiLU-like ones Swish (alpha=1 is SiLU),
#: GELU the gated normal cdf (alpha=1 is GELU), everything else (ReLU-like) the adaptive ReLU. Note that Tanh
#: and Hardtanh (range -1..1) become a cdf (range 0..1).
AUTO: Tuple[Tuple[type, str], ...] = (
    (nn.Sigmoid, "gumbel"),
    (nn.Hardsigmoid, "gumbel"),
    (nn.Tanh, "gumbel"),
    (nn.ReLU6, "relu"),  # a Hardtanh subclass
    (nn.Hardtanh, "gumbel"),
    (nn.SiLU, "swish"),
    (nn.Hardswish, "swish"),
    (nn.Mish, "swish"),
    (nn.GELU, "gelu"),
    (nn.Module, "relu"),  # ReLU, ReLU6, LeakyReLU, ELU, SELU, CELU, Softplus, Hardtanh, anything else
)

ActivationSpec = Union[str, type, Callable[..., nn.Module]]


@dataclass(frozen=True)
class Replacement:
    """One replaced module.

    Attributes:
        name: its qualified name in the model (``"features.3"``; ``""`` for the root).
        old_type: class name of the module replaced (``"ReLU"``).
        new_type: class name of the new module (``"AdaptiveReLU"``; ``"LazyAdaptiveReLU"`` until sized).
        num_parameters: number of alphas; ``None`` while lazy (sized at the first forward, or at once when
            ``example_inputs`` is given).
        module: the new module itself.
    """

    name: str
    old_type: str
    new_type: str
    num_parameters: Optional[int]
    module: nn.Module

    def __str__(self) -> str:
        n = "lazy" if self.num_parameters is None else self.num_parameters
        return f"{self.name or '(root)'}: {self.old_type} -> {self.new_type} (num_parameters={n})"


class Conversion(NamedTuple):
    """What :func:`convert` returns; unpacks as ``model, replaced = convert(...)``.

    Attributes:
        model: the converted model (a copy unless ``inplace=True``).
        replaced: one :class:`Replacement` per replaced module name, in ``named_modules()`` order.
    """

    model: nn.Module
    replaced: list

    def summary(self) -> str:
        """A short text report, one line per replaced module."""
        if not self.replaced:
            return "convert: nothing replaced"
        return "\n".join([f"convert: replaced {len(self.replaced)} module(s)", *(f"  {r}" for r in self.replaced)])


def _compile_patterns(names: Union[None, str, re.Pattern, Iterable[Union[str, re.Pattern]]]):
    if names is None:
        return None
    if isinstance(names, (str, re.Pattern)):
        names = [names]
    patterns = list(names)
    for p in patterns:
        if not isinstance(p, (str, re.Pattern)):
            raise TypeError(f"names must hold glob strings or compiled regexes, got {type(p).__name__}")
    return patterns


def _name_matches(name: str, patterns) -> bool:
    for p in patterns:
        if isinstance(p, re.Pattern):
            if p.fullmatch(name):
                return True
        elif fnmatch.fnmatchcase(name, p):
            return True
    return False


def _resolve_spec(spec: ActivationSpec) -> Callable[..., nn.Module]:
    if isinstance(spec, str):
        key = spec.lower()
        if key not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {spec!r}; valid names: {', '.join(sorted(ACTIVATIONS))}, 'auto', "
                "or pass an AdaptiveActivation class or a factory"
            )
        return ACTIVATIONS[key]
    if callable(spec):
        return spec
    raise TypeError(f"activation must be a name, a class, a factory or a mapping, got {type(spec).__name__}")


def _choose(activation, old: nn.Module) -> ActivationSpec:
    if isinstance(activation, str) and activation.lower() == "auto":
        activation = AUTO
    if isinstance(activation, Mapping):
        activation = tuple(activation.items())
    if isinstance(activation, tuple):
        for old_type, spec in activation:
            if isinstance(old, old_type):
                return spec
        raise ValueError(f"no activation given for a module of type {type(old).__name__} in the mapping")
    return activation


def convert(
    model: nn.Module,
    activation: Union[ActivationSpec, Mapping[type, ActivationSpec]] = "gumbel",
    *,
    types: Optional[Sequence[type]] = DEFAULT_TYPES,
    names: Union[None, str, re.Pattern, Iterable[Union[str, re.Pattern]]] = None,
    exclude: Union[None, str, re.Pattern, Iterable[Union[str, re.Pattern]]] = None,
    per_neuron: bool = True,
    dim: int = 1,
    init: float = 1.0,
    inplace: bool = False,
    example_inputs: Any = None,
    **kwargs: Any,
) -> Conversion:
    r"""Replace the activation modules of ``model`` with adaptive activations.

    A module is replaced when it is an instance of one of ``types`` *and* (if ``names`` is given) its
    qualified name matches one of ``names`` *and* it matches none of ``exclude``. Adaptive activations are
    never replaced again.

    Args:
        model: any ``nn.Module``; it may itself be an activation (then the new root is returned).
        activation: what to put in: ``"gumbel"`` (:class:`AdaptiveGumbel`), ``"relu"`` (:class:`AdaptiveReLU`),
            ``"swish"`` (:class:`AdaptiveSwish`), ``"gelu"`` (gated normal cdf), ``"auto"`` (like for like, see
            :data:`AUTO`); an :class:`AdaptiveActivation` subclass or any factory called with the keyword
            arguments ``num_parameters``, ``dim``, ``init`` and ``**kwargs``; or a mapping
            ``{old type: any of these}``, matched with ``isinstance`` in order. Default: ``"gumbel"``
        types: activation classes to replace (``isinstance``), or ``None`` for any module (then ``names``
            must select). Default: :data:`DEFAULT_TYPES` (ReLU, ReLU6, LeakyReLU, ELU, SELU, CELU, GELU, SiLU,
            Mish, Softplus, Sigmoid, Tanh, Hardtanh, Hardswish, Hardsigmoid)
        names: module-name patterns (``"features.*"``, ``"*.act"``): strings are globs (``fnmatch``,
            case-sensitive), compiled ``re.Pattern`` objects must match the whole name. Default: ``None``
            (no name filter)
        exclude: module-name patterns to leave alone, same syntax. Default: ``None``
        per_neuron: one alpha per neuron/channel along ``dim``, sized from the first input the module sees
            (``num_parameters=None``, a lazy module), so nobody counts channels; ``False`` shares one alpha
            per replaced module. Default: ``True``
        dim: the neuron/channel axis of the activations' inputs: 1 for ``(N, C, ...)`` and ``(N, F)``, -1 for
            ``(N, L, C)``. Default: ``1``
        init: initial alpha. Default: ``1.0``
        inplace: modify ``model`` itself instead of a deep copy. Default: ``False``
        example_inputs: an input (or a tuple of positional inputs) to run once through the converted model,
            under ``torch.no_grad()`` and in eval mode (training flags restored afterwards), so that the lazy
            alphas are sized and the report has their ``num_parameters``. Default: ``None``
        **kwargs: passed on to the new modules (``parametrization``, ``trainable``, ``device``, ``dtype``).

    Returns:
        :class:`Conversion`, a named tuple ``(model, replaced)``: the converted model and a list of
        :class:`Replacement` (``name``, ``old_type``, ``new_type``, ``num_parameters``, ``module``).

    .. note::
        Only modules are found: ``F.relu`` and the like called inside ``forward`` cannot be replaced.
        A module instance used at several places of the model (or called several times in ``forward``)
        becomes one adaptive module there too, so those places share alphas; with ``per_neuron=True`` they
        must have the same number of channels. Until its first forward (or ``example_inputs``) a per-neuron
        module is lazy: create the optimizer after that forward, or at least after ``convert``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if types is not None:
        types = tuple(types)
        bad = [t for t in types if not (isinstance(t, type) and issubclass(t, nn.Module))]
        if bad:
            raise TypeError(f"types must be nn.Module subclasses, got {bad!r}")
    name_patterns = _compile_patterns(names)
    exclude_patterns = _compile_patterns(exclude)
    if types is None and name_patterns is None:
        raise ValueError("types=None replaces modules by name only: give names=[...] patterns too")
    if not (isinstance(activation, (str, Mapping)) or callable(activation)):
        raise TypeError(
            f"activation must be a name, an AdaptiveActivation class, a factory or a mapping, got {type(activation).__name__}"
        )
    if isinstance(activation, str) and activation.lower() != "auto":
        _resolve_spec(activation)  # fail early on an unknown name

    if not inplace:
        model = copy.deepcopy(model)

    def selected(name: str, module: nn.Module) -> bool:
        if isinstance(module, AdaptiveActivation):
            return False
        if types is not None and not isinstance(module, types):
            return False
        if name_patterns is not None and not _name_matches(name, name_patterns):
            return False
        if exclude_patterns is not None and _name_matches(name, exclude_patterns):
            return False
        return True

    made: dict[int, nn.Module] = {}  # id(old module) -> new one, so a shared module stays shared
    replaced: list[Tuple[str, nn.Module, nn.Module]] = []

    def build(name: str, old: nn.Module) -> nn.Module:
        if id(old) in made:
            new = made[id(old)]
        else:
            factory = _resolve_spec(_choose(activation, old))
            new = factory(num_parameters=None if per_neuron else 1, dim=dim, init=init, **kwargs)
            if not isinstance(new, nn.Module):
                raise TypeError(f"the activation factory returned {type(new).__name__}, expected an nn.Module")
            made[id(old)] = new
        replaced.append((name, old, new))
        return new

    def walk(parent: nn.Module, prefix: str) -> None:
        # named_children() lists a child registered under two names twice with remove_duplicate=False.
        for child_name, child in list(parent._modules.items()):
            if child is None:
                continue
            name = f"{prefix}.{child_name}" if prefix else child_name
            if selected(name, child):
                setattr(parent, child_name, build(name, child))
            else:
                walk(child, name)

    if selected("", model):
        model = build("", model)
    else:
        walk(model, "")

    if not replaced:
        warnings.warn(
            "convert: no activation module matched (types/names); activations called as functions in "
            "forward (F.relu, torch.sigmoid) are not modules and cannot be replaced",
            UserWarning,
            stacklevel=2,
        )
    if example_inputs is not None:
        _dry_run(model, example_inputs)

    report = [
        Replacement(
            name,
            type(old).__name__,
            type(new).__name__,
            _num_parameters(new),
            new,
        )
        for name, old, new in replaced
    ]
    return Conversion(model, report)


def _num_parameters(module: nn.Module) -> Optional[int]:
    if isinstance(module, AdaptiveActivation):
        return module.num_parameters
    return None


def _dry_run(model: nn.Module, example_inputs: Any) -> None:
    flags = [(m, m.training) for m in model.modules()]
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        for m, training in flags:
            m.training = training
