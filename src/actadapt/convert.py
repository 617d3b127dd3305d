r"""Model surgery: put adaptive activations at every activation call site of an existing model.

:func:`convert` finds the activations of a model by what they compute (:mod:`actadapt.discover`): activation
modules of any zoo (``nn.ReLU``, transformers' ``GELUActivation``, timm's ``Swish``) and, when it may run the
model on ``example_inputs``, every call: functional ones (``F.gelu``, ``torch.sigmoid``, ``x.relu()``) and each
call of a module used at several places. Each call site gets its own adaptive activation, sized from the
input it sees, starting from the function it replaces (``init="match"``, see
:data:`actadapt.activations.FIXED`), and the report lists every site.

Two ways to install them (``method=``):

* ``"modules"`` (default): the model keeps its class, its methods and its ``state_dict`` keys (plus the new
  alphas). A module called once is replaced by an adaptive module; a module called at several places by a
  :class:`~actadapt.callsites.CallSiteActivation` holding one per site; functional calls are routed to
  adaptive modules held by a :class:`~actadapt.callsites.CallSiteScope` on the module that makes them. This
  needs no tracing, so it works for models that ``torch.fx`` cannot trace (most transformers models).
* ``"fx"``: ``torch.fx`` symbolic tracing; returns a ``GraphModule`` in which every site is a module call.
  For models that trace and should compile or export as one graph; the model's own class is lost.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import torch.nn.functional as F
    >>> from actadapt import convert
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv, self.act, self.fc = nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Linear(8, 10)
    ...     def forward(self, x):
    ...         x = self.act(self.conv(x)).mean((2, 3))
    ...         return torch.sigmoid(self.fc(F.gelu(x)))
    >>> new, sites = convert(Net(), example_inputs=torch.randn(1, 3, 8, 8))
    >>> [(s.name, s.old_type, s.new_type, s.num_parameters) for s in sites]
    [('act', 'ReLU', 'AdaptiveReLU', 8), ('F.gelu#0', 'F.gelu', 'AdaptiveSwish', 8), ('torch.sigmoid#0', 'torch.sigmoid', 'AdaptiveGumbel', 10)]
    >>> type(new).__name__
    'Net'
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .activations import ALPHA_MAX, ActivationSpec, activation_spec
from .callsites import CallSiteActivation, CallSiteScope, replace_module
from .discover import Site, default_axis, record_sites, static_sites, what_it_computes
from .graph_sites import graph_sites, install_in_graph, trace
from .matching import matched_init
from .modules import AdaptiveActivation

__all__ = ["convert", "Conversion", "Replacement", "METHODS"]

METHODS = ("modules", "fx")
Target = Union[str, type, Callable[..., nn.Module]]
Patterns = Union[None, str, re.Pattern, Iterable[Union[str, re.Pattern]]]


@dataclass(frozen=True)
class Replacement:
    """One replaced activation call site.

    Attributes:
        name: the site's name: the module's qualified name (``"layer1.0.relu"``; ``""`` for the root), with
            ``#k`` for the k-th call site of a module called at several places, or ``"<owner>.F.gelu#k"`` for
            the k-th functional call in a module's ``forward``.
        old_type: what was there: the module's class name (``"ReLU"``, ``"GELUActivation"``) or the call
            (``"F.gelu"``, ``"torch.sigmoid"``, ``"Tensor.relu"``).
        new_type: class name of the adaptive module (``"LazyAdaptiveReLU"`` until sized).
        num_parameters: number of alphas; ``None`` while lazy.
        module: the new module.
        kind: the fixed activation that was recognised (``"gelu"``).
        location: where it is called (``"modeling_vit.py:300 (ViTPooler.forward)"``); ``""`` if not run.
        init: the initial alpha.
        max_error: the largest pointwise difference between the new activation at ``init`` and the old one
            (``init="match"``; ``None`` for a given number).
        dim: the axis that carries the alphas.
    """

    name: str
    old_type: str
    new_type: str
    num_parameters: Optional[int]
    module: nn.Module
    kind: str = ""
    location: str = ""
    init: float = 1.0
    max_error: Optional[float] = None
    dim: Optional[int] = None

    def __str__(self) -> str:
        n = "lazy" if self.num_parameters is None else self.num_parameters
        where = f" at {self.location}" if self.location else ""
        err = "" if self.max_error is None else f", max error {self.max_error:.3g}"
        return f"{self.name or '(root)'}: {self.old_type} -> {self.new_type} (alphas={n}, init={self.init:.4g}{err}){where}"


class Conversion(tuple):
    """What :func:`convert` returns; unpacks as ``model, replaced = convert(...)``.

    Attributes:
        model: the converted model (a copy unless ``inplace=True``).
        replaced: one :class:`Replacement` per replaced call site, in the order the model calls them (module
            order without ``example_inputs``).
        skipped: names of recognised sites left as they were (``names``/``exclude``/``types``/a mapping).
        output_change: with ``example_inputs``, ``||y_new - y_old|| / ||y_old||`` over the floating outputs
            of the two models on them (in eval mode), else ``None``.
        method: ``"modules"`` or ``"fx"``.
    """

    def __new__(cls, model: nn.Module, replaced: list, skipped: Sequence[str] = (), output_change: Optional[float] = None,
                method: str = "modules"):
        self = super().__new__(cls, (model, replaced))
        self.skipped = list(skipped)
        self.output_change = output_change
        self.method = method
        return self

    @property
    def model(self) -> nn.Module:
        return self[0]

    @property
    def replaced(self) -> list:
        return self[1]

    def summary(self) -> str:
        """A text report: one line per replaced call site, then what was left and the output change."""
        lines = [f"convert: replaced {len(self.replaced)} call site(s) ({self.method})"]
        lines += [f"  {r}" for r in self.replaced]
        if self.skipped:
            lines.append(f"  left as they were: {', '.join(self.skipped)}")
        if self.output_change is not None:
            lines.append(f"  relative output change on example_inputs: {self.output_change:.3g}")
        elif self.method == "modules":
            lines.append("  (no example_inputs: only activation modules were looked for, and sized lazily)")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ arguments
def _compile_patterns(names: Patterns):
    if names is None:
        return None
    if isinstance(names, (str, re.Pattern)):
        names = [names]
    patterns = list(names)
    for p in patterns:
        if not isinstance(p, (str, re.Pattern)):
            raise TypeError(f"names must hold glob strings or compiled regexes, got {type(p).__name__}")
    return patterns


def _name_matches(names: Iterable[str], patterns) -> bool:
    for name in names:
        for p in patterns:
            if (p.fullmatch(name) if isinstance(p, re.Pattern) else fnmatch.fnmatchcase(name, p)):
                return True
    return False


def _check_target(target: Any) -> None:
    if isinstance(target, str):
        if target.lower() != "auto":
            activation_spec(target, adaptive=True)  # fails with the valid names
    elif not callable(target):
        raise TypeError(f"an activation target must be a name, 'auto', a class or a factory, got {type(target).__name__}")


def _target_for(activation: Any, site: Site) -> Optional[Target]:
    """The target for ``site``; ``None`` leaves the site alone (a mapping without an entry for it)."""
    if not isinstance(activation, Mapping):
        return activation
    for key, target in activation.items():
        if isinstance(key, type) and site.module is not None and isinstance(site.module, key):
            return target
    for key, target in activation.items():
        if isinstance(key, str) and activation_spec(key).name == site.kind.name:
            return target
    return None


def _spec_of(target: Target, site: Site) -> Optional[ActivationSpec]:
    """The :class:`ActivationSpec` a target stands for, or ``None`` for an opaque factory."""
    if isinstance(target, str):
        return activation_spec(site.kind.match.target if target.lower() == "auto" else target, adaptive=True)
    if isinstance(target, type) and issubclass(target, AdaptiveActivation) and hasattr(target, "_FAMILY"):
        return activation_spec(f"{target._FAMILY}_{target._FORM}", adaptive=True)
    return None


def _init_for(init: Union[str, float], spec: Optional[ActivationSpec], site: Site) -> Tuple[float, Optional[float]]:
    if isinstance(init, str):
        if init != "match":
            raise ValueError(f"init must be 'match' or a positive number, got {init!r}")
        if spec is None:  # an opaque factory: nothing to fit
            return 1.0, None
        return matched_init(site.kind, spec, None if _computes_reference(site) else site.compute)
    return float(init), None


def _computes_reference(site: Site) -> bool:
    """Whether the site computes its kind's reference exactly (so the table's match applies)."""
    return what_it_computes(site.compute) is site.kind


# ------------------------------------------------------------------------------------ building
def _dim_and_size(site: Site, dim: Union[str, int], per_neuron: bool) -> Tuple[int, Optional[int]]:
    """``(dim, num_parameters)`` for a site's new module."""
    if site.shape is None:
        return (1 if dim == "auto" else int(dim)), (None if per_neuron else 1)
    nd = len(site.shape)
    if nd == 0:
        return 1, 1
    if dim == "auto":
        axis = site.axis if site.axis is not None else default_axis(site.shape)
    else:
        axis = int(dim) % nd
    n = int(site.shape[axis]) if per_neuron else 1
    return (-1 if axis == nd - 1 and nd >= 2 else axis), n


def _factory_kwargs(site: Site, kwargs: dict, reference_dtype: Optional[torch.dtype]) -> dict:
    out = dict(kwargs)
    if site.device is not None:
        out.setdefault("device", site.device)
    dtype = reference_dtype or site.dtype
    if dtype is not None and dtype.is_floating_point:
        out.setdefault("dtype", dtype)
    return out


def _grows(init, spec: Optional[ActivationSpec], site: Site) -> bool:
    """Whether the site's alpha is the table's chosen (not fitted) one for a ReLU-like function."""
    match = site.kind.match
    return (
        init == "match" and match.grows and spec is not None
        and activation_spec(match.target, adaptive=True).name == spec.name and _computes_reference(site)
    )


def _build(site: Site, target: Target, init, dim, per_neuron, kwargs, reference_dtype) -> Tuple[nn.Module, Replacement]:
    spec = _spec_of(target, site)
    alpha, error = _init_for(init, spec, site)
    d, n = _dim_and_size(site, dim, per_neuron)
    factory = spec.layer if isinstance(target, str) else target  # a class stays itself (a user subclass too)
    module = factory(num_parameters=n, init=alpha, dim=d, **_factory_kwargs(site, kwargs, reference_dtype))
    if not isinstance(module, nn.Module):
        raise TypeError(f"the activation factory returned {type(module).__name__}, expected an nn.Module")
    if isinstance(module, AdaptiveActivation):
        module._converted_from = site.name  # named in the error if a lazy module meets two widths
    replacement = Replacement(
        site.name, site.label, type(module).__name__, getattr(module, "num_parameters", n), module,
        site.kind.name, site.location, alpha, error, d if n != 1 else None,
    )
    return module, replacement


# ------------------------------------------------------------------------------------ naming
def _name_sites(sites: List[Site]) -> None:
    """``layer1.0.relu`` for a module called once, ``layer1.0.relu#k`` for its k-th call site, and
    ``<owner>.F.gelu#k`` for the k-th functional call in ``owner``'s forward."""
    per_module: Dict[int, int] = {}
    for s in sites:
        if s.module is not None:
            per_module[id(s.module)] = per_module.get(id(s.module), 0) + 1
    seen: Dict[Any, int] = {}
    for s in sites:
        if s.module is not None:
            base = s.module_names[0]
            k = seen.get(id(s.module), 0)
            seen[id(s.module)] = k + 1
            s.name = base if per_module[id(s.module)] == 1 else f"{base}#{k}"
        else:
            prefix = f"{s.owner}." if s.owner else ""
            k = seen.get((s.owner, s.label), 0)
            seen[(s.owner, s.label)] = k + 1
            s.name = f"{prefix}{s.label}#{k}"


def _site_names(site: Site) -> Tuple[str, ...]:
    """Names that ``names``/``exclude`` patterns are matched against: the site's, and the module's names."""
    return (site.name, *site.module_names)


# ------------------------------------------------------------------------------------ install
def _install_modules(model: nn.Module, built: List[Tuple[Site, nn.Module]], all_sites: List[Site]) -> nn.Module:
    """Put the built modules in place (``method="modules"``), see the module notes."""
    new_of = {id(site): module for site, module in built}
    by_module: Dict[int, List[Site]] = {}
    functional: Dict[str, List[Site]] = {}
    for s in all_sites:
        if s.module is not None:
            by_module.setdefault(id(s.module), []).append(s)
        elif id(s) in new_of:
            functional.setdefault(s.owner or "", []).append(s)
    owners: Dict[str, CallSiteScope] = {}
    for sites in by_module.values():
        if not any(id(s) in new_of for s in sites):
            continue
        original = sites[0].module
        if len(sites) == 1:
            new = new_of[id(sites[0])]
        else:  # called at several places: one module per place (the original where a site is left alone)
            new = CallSiteActivation(
                [new_of.get(id(s), original) for s in sites], {s.key: i for i, s in enumerate(sites)}, sites[0].module_names[0]
            )
            for s in sites:
                owners.setdefault(s.owner or "", CallSiteScope(s.owner or ""))
        for name in sites[0].module_names:
            model = replace_module(model, name, new)
    for owner, sites in functional.items():
        scope = CallSiteScope(
            owner,
            {s.name[len(owner) + 1 if owner else 0:].replace("#", "_").replace(".", "_"): new_of[id(s)] for s in sites},
            functions={s.function for s in sites},
        )
        scope.keys = {s.key: k for s, k in zip(sites, scope.sites.keys())}
        scope.inplace = frozenset(k for s, k in zip(sites, scope.sites.keys()) if s.inplace)
        owners[owner] = scope  # it also marks the owner's forward for the module sites it calls
    for owner, scope in owners.items():
        scope.attach(model.get_submodule(owner))
    return model


# ------------------------------------------------------------------------------------ runs
def _split_inputs(example_inputs: Any) -> Tuple[tuple, dict]:
    if isinstance(example_inputs, Mapping):
        return (), dict(example_inputs)
    if isinstance(example_inputs, tuple):
        return example_inputs, {}
    return (example_inputs,), {}


class _EvalRun:
    """Eval mode and grad enabled (so that no inference fast path skips an activation) for one run; the
    training flags are restored and no parameter keeps a gradient."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self):
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        self.grad = torch.enable_grad()
        self.grad.__enter__()
        return self

    def __exit__(self, *exc):
        self.grad.__exit__(*exc)
        for m, training in self.flags:
            m.training = training
        return False


def _float_tensors(out: Any) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, Mapping):
        return [t for v in out.values() for t in _float_tensors(v)]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in _float_tensors(v)]
    return []


def relative_change(old: Any, new: Any) -> float:
    """``||new - old|| / ||old||`` over the floating tensors of two outputs of the same structure (float64)."""
    a, b = _float_tensors(old), _float_tensors(new)
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        raise ValueError("the converted model's outputs do not have the original's structure")
    num = sum(float((y.detach().double() - x.detach().double()).square().sum()) for x, y in zip(a, b))
    den = sum(float(x.detach().double().square().sum()) for x in a)
    return math.sqrt(num / den) if den > 0 else math.sqrt(num)


def _reference_dtype(model: nn.Module) -> Optional[torch.dtype]:
    for p in model.parameters():
        if p.is_floating_point() and not isinstance(p, nn.parameter.UninitializedParameter):
            return p.dtype
    return None


# ------------------------------------------------------------------------------------ convert
def convert(
    model: nn.Module,
    activation: Union[Target, Mapping[Union[type, str], Target]] = "auto",
    *,
    init: Union[str, float] = "match",
    example_inputs: Any = None,
    method: str = "modules",
    types: Optional[Sequence[type]] = None,
    names: Patterns = None,
    exclude: Patterns = None,
    per_neuron: bool = True,
    dim: Union[str, int] = "auto",
    tolerance: float = 1e-2,
    inplace: bool = False,
    **kwargs: Any,
) -> Conversion:
    r"""Put an adaptive activation at every activation call site of ``model``.

    Args:
        model: any ``nn.Module``; it may itself be an activation (then the new root is returned).
        activation: what to put in. ``"auto"``: for each site the adaptive activation that contains the one
            there, or comes closest (:data:`actadapt.activations.FIXED`: ReLU-like -> AReLU, SiLU/GELU-like ->
            Swish, sigmoid -> AGumb, tanh -> AdaptiveTanh, hardsigmoid -> logistic). An adaptive activation
            name (``"arelu"``, ``"agumb"``, ``"swish"``, ``"normal_gated"``; a fixed name means its adaptive
            version: ``"relu"`` is AReLU, ``"gelu"`` the gated normal cdf); an :class:`AdaptiveActivation`
            subclass or a factory called with ``num_parameters``, ``init``, ``dim`` and ``**kwargs``; or a
            mapping ``{module type or activation name ("relu", "gelu"): any of these}``, which leaves sites
            it has no entry for alone. Default: ``"auto"``
        init: ``"match"`` starts each site from the function it replaces (exact for SiLU, sigmoid and tanh;
            the documented alpha and error for the others; a minimax fit for a pair not in the table); a
            number starts every alpha there. Default: ``"match"``
        example_inputs: an input, a tuple of positional inputs or a dict of keyword inputs. With them the
            model is run once (eval mode, training flags restored, no gradients kept) to find every call
            site, functional ones included, and to size every alpha now; the converted model is run once
            more to check it and measure :attr:`Conversion.output_change`. Without them only activation
            modules are found, and their alphas are sized at the first forward (lazy modules: build the
            optimizer after that forward). Default: ``None``
        method: ``"modules"`` (keep the model's class) or ``"fx"`` (a ``torch.fx.GraphModule``), see the
            module notes. Default: ``"modules"``
        types: only module sites of these classes (``isinstance``); functional sites are then left. Default:
            ``None`` (every recognised activation)
        names: site-name patterns to convert (``"features.*"``, ``"*.act"``, ``"encoder.F.gelu#*"``): strings
            are globs (``fnmatch``, case-sensitive), compiled ``re.Pattern`` objects must match the whole name;
            a module's site also matches by the module's names. Default: ``None`` (no name filter)
        exclude: site-name patterns to leave alone, same syntax. Default: ``None``
        per_neuron: one alpha per channel of each site's input; ``False`` shares one alpha per site.
            Default: ``True``
        dim: the channel axis: ``"auto"`` follows it from the layer that makes the input (the last axis
            after ``linear``/``layer_norm``, axis 1 after convolutions and ``batch_norm``; without that,
            1 for 2-D and 4-D+ inputs, the last for 3-D ones), or an int for every site. Without
            ``example_inputs`` ``"auto"`` means 1. Default: ``"auto"``
        tolerance: with ``init="match"`` and ``example_inputs``: ReLU-like functions are the limit
            alpha -> inf of AReLU, so their alpha is a choice (100, error ``1/(100 e)``); while the relative
            output change is above ``tolerance`` those alphas are raised tenfold (up to 1e4), as long as
            each step lowers the change by 10% or more. Default: ``1e-2``
        inplace: modify ``model`` itself instead of a deep copy. Default: ``False``
        **kwargs: passed on to the new modules (``parametrization``, ``trainable``, ``device``, ``dtype``).

    Returns:
        :class:`Conversion`, unpacking as ``(model, replaced)``, with ``skipped``, ``output_change`` and
        ``summary()``.

    Raises:
        ValueError: an unknown name, method or init; a model that does not trace with ``method="fx"``.
        UnknownCallSite: (later, in forward) a routed activation called from a place the example run did
            not take.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    if types is not None:
        types = tuple(types)
        bad = [t for t in types if not (isinstance(t, type) and issubclass(t, nn.Module))]
        if bad:
            raise TypeError(f"types must be nn.Module subclasses, got {bad!r}")
    name_patterns, exclude_patterns = _compile_patterns(names), _compile_patterns(exclude)
    targets = list(activation.values()) if isinstance(activation, Mapping) else [activation]
    for t in targets:
        _check_target(t)
    if isinstance(init, str):
        if init != "match":
            raise ValueError(f"init must be 'match' or a positive number, got {init!r}")
    elif not (isinstance(init, (int, float)) and not isinstance(init, bool) and math.isfinite(init) and init > 0):
        raise ValueError(f"init must be 'match' or a finite number > 0, got {init!r}")
    if not (dim == "auto" or (isinstance(dim, int) and not isinstance(dim, bool))):
        raise ValueError(f"dim must be 'auto' or an int, got {dim!r}")

    if not inplace:
        model = copy.deepcopy(model)
    reference_dtype = kwargs.pop("dtype", None) or _reference_dtype(model)
    inputs = _split_inputs(example_inputs) if example_inputs is not None else None

    nodes: Dict[int, torch.fx.Node] = {}
    original_output = None
    if method == "fx":
        model = trace(model)
        pairs = graph_sites(model)
        sites = [s for _, s in pairs]
        if inputs is not None:
            with _EvalRun(model):
                recorded, original_output = record_sites(model, *inputs)
            if len(recorded) != len(sites):
                raise RuntimeError(f"convert(method='fx'): the graph has {len(sites)} activation calls but the run made {len(recorded)}")
            for s, r in zip(sites, recorded):
                s.shape, s.axis, s.dtype, s.device = r.shape, r.axis, r.dtype, r.device
        nodes = {id(s): n for n, s in pairs}
    elif inputs is not None:
        with _EvalRun(model):
            sites, original_output = record_sites(model, *inputs)
    else:
        sites = static_sites(model)
    _name_sites(sites)

    built: List[Tuple[Site, nn.Module]] = []
    replaced: List[Replacement] = []
    skipped: List[str] = []
    for site in sites:
        site_names = _site_names(site)
        target = _target_for(activation, site)
        keep = (
            target is not None
            and (types is None or (site.module is not None and isinstance(site.module, types)))
            and (name_patterns is None or _name_matches(site_names, name_patterns))
            and (exclude_patterns is None or not _name_matches(site_names, exclude_patterns))
        )
        if not keep:
            skipped.append(site.name)
            continue
        module, replacement = _build(site, target, init, dim, per_neuron, kwargs, reference_dtype)  # type: ignore[arg-type]
        built.append((site, module))
        replaced.append(replacement)

    if not replaced:
        warnings.warn(
            "convert: no activation was replaced" + ("" if sites else "; none was found")
            + ("" if inputs is not None else " (without example_inputs only activation modules are looked for: pass "
                                               "example_inputs to find F.relu-style calls too)"),
            UserWarning,
            stacklevel=2,
        )
    if method == "fx":
        model = install_in_graph(model, built, nodes)  # type: ignore[arg-type]
    else:
        model = _install_modules(model, built, sites)

    output_change = None
    if inputs is not None and replaced:
        def change() -> float:
            with _EvalRun(model):
                return relative_change(original_output, model(*inputs[0], **inputs[1]))

        output_change = change()
        growing = [i for i, (site, _) in enumerate(built) if _grows(init, _spec_of(_target_for(activation, site), site), site)]
        if growing and output_change > tolerance:
            output_change, replaced = _grow_alphas(built, replaced, growing, output_change, tolerance, change)
    elif inputs is not None:
        output_change = 0.0
    return Conversion(model, replaced, skipped, output_change, method)


def _grow_alphas(built, replaced, growing, output_change, tolerance, change):
    """Raise the chosen alphas of ReLU-like sites tenfold while the output change is above ``tolerance``
    and each step lowers it by at least 10% (up to :data:`ALPHA_MAX`); see :class:`~actadapt.activations.Match`."""

    def set_alpha(a: float) -> None:
        for i in growing:
            module = built[i][1]
            module.init = a
            module.reset_parameters()

    alpha = replaced[growing[0]].init
    while output_change > tolerance and alpha * 10 <= ALPHA_MAX:
        set_alpha(alpha * 10)
        new_change = change()
        if new_change > 0.9 * output_change:  # not the ReLU-like sites that move the outputs
            set_alpha(alpha)
            break
        alpha, output_change = alpha * 10, new_change
    replaced = list(replaced)
    for i in growing:
        r = replaced[i]
        error = None if r.max_error is None else r.max_error * r.init / alpha
        replaced[i] = dataclasses.replace(r, init=alpha, max_error=error)
    return output_change, replaced
