r"""Find the activation call sites of a model, for :func:`actadapt.convert`.

* :func:`recognise_module` and :func:`recognise_call` tell what a module or a torch call computes by running
  it on a probe (a float64 grid on [-8, 8]) and comparing with the references of
  :data:`actadapt.activations.FIXED`, so that transformers' ``GELUActivation``, ``NewGELUActivation`` and
  ``SiLUActivation``, timm's and torchvision's classes and any other elementwise module are found, not only
  ``torch.nn`` classes. Modules with parameters or children are never probed.
* :func:`static_sites` lists the activation modules of a model without running it (one site per module).
* :func:`record_sites` runs the model once on example inputs and records every activation call: module
  calls and functional calls (``F.gelu``, ``torch.sigmoid``, ``x.relu()``), each with its call site (see
  :mod:`actadapt.callsites`), the input's shape and the axis that carries its channels. That axis is
  followed from the layers that make it: the last axis after ``linear``/``layer_norm``/``embedding``, axis 1
  after convolutions and ``batch_norm``/``group_norm``, through permutes, reshapes and elementwise ops.
"""

from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .activations import FIXED, FixedActivation
from .callsites import ACTIVATION_FUNCTIONS, CallSiteActivation, CallSiteScope, SiteKey, _next_key, caller_frame
from .callsites import describe_frame, site_location
from .modules import AdaptiveActivation

__all__ = [
    "Site", "what_it_computes", "recognise_module", "recognise_call", "is_inplace_call", "call_label", "pure_call",
    "static_sites", "record_sites",
]

_FIXED_BY_NAME = {e.name: e for e in FIXED}
_PROBE = torch.linspace(-8.0, 8.0, 321, dtype=torch.float64)
_REFERENCES: List[Tuple[FixedActivation, Tensor]] = []


def _references() -> List[Tuple[FixedActivation, Tensor]]:
    if not _REFERENCES:
        _REFERENCES.extend((e, e.reference(_PROBE)) for e in FIXED)
    return _REFERENCES


def what_it_computes(fn: Callable[[Tensor], Any]) -> Optional[FixedActivation]:
    """The first :data:`FIXED` activation whose reference ``fn`` reproduces on the probe, or ``None``."""
    try:
        with torch.no_grad():
            out = fn(_PROBE.clone())
    except Exception:  # noqa: BLE001 - a module that cannot take the probe is not an elementwise activation
        return None
    if not isinstance(out, Tensor) or out.shape != _PROBE.shape or not out.is_floating_point():
        return None
    out = out.detach().to(torch.float64)
    for entry, ref in _references():
        if torch.allclose(out, ref, rtol=1e-5, atol=1e-6):
            return entry
    return None


def recognise_module(module: nn.Module) -> Optional[FixedActivation]:
    """The known activation that ``module`` computes, or ``None``.

    A module qualifies if it has no children, parameters or buffers: it is run on the probe (its ``forward``,
    without hooks) and compared with every reference. A ``torch.nn`` activation class whose arguments make
    it differ from its reference (``nn.LeakyReLU(0.2)``) is recognised by its class.
    """
    if isinstance(module, (AdaptiveActivation, CallSiteActivation, CallSiteScope)):
        return None
    if next(module.children(), None) is not None:
        return None
    if next(module.parameters(recurse=False), None) is not None or next(module.buffers(recurse=False), None) is not None:
        return None
    entry = what_it_computes(module.forward)
    if entry is not None:
        return entry
    for e in FIXED:
        if e.classes and isinstance(module, e.classes):
            return e
    return None


_INPLACE_FUNCTIONS = frozenset(f for f in ACTIVATION_FUNCTIONS if getattr(f, "__name__", "").endswith("_"))
_SIGNATURES: Dict[Callable, Optional[inspect.Signature]] = {}


def _bind(func: Callable, args: tuple, kwargs: dict) -> Optional[inspect.BoundArguments]:
    if func not in _SIGNATURES:
        try:
            _SIGNATURES[func] = inspect.signature(func)
        except (TypeError, ValueError):  # C builtins without a signature
            _SIGNATURES[func] = None
    sig = _SIGNATURES[func]
    if sig is None:
        return None
    try:
        return sig.bind(*args, **kwargs)
    except TypeError:
        return None


def is_inplace_call(func: Callable, args: tuple, kwargs: dict) -> bool:
    """``True`` for ``x.relu_()``, ``F.relu(x, inplace=True)`` and the like."""
    if func in _INPLACE_FUNCTIONS:
        return True
    bound = _bind(func, args, kwargs)
    return bool(bound is not None and bound.arguments.get("inplace", False))


def recognise_call(func: Callable, args: tuple, kwargs: dict) -> Optional[FixedActivation]:
    """The known activation that ``func(*args, **kwargs)`` computes (``F.hardtanh(x, 0, 6)`` is ReLU6,
    ``F.gelu(x, approximate="tanh")`` the tanh GELU), or ``None`` if ``func`` is no activation function."""
    default = ACTIVATION_FUNCTIONS.get(func)
    if default is None:
        return None
    rest = {k: v for k, v in kwargs.items() if k not in ("input", "inplace")}
    extra = args[1:]
    bound = _bind(func, args, kwargs)
    if bound is not None and "inplace" in bound.arguments:  # drop a positional inplace flag
        names = list(bound.signature.parameters)
        extra = tuple(a for a, n in zip(args[1:], names[1:]) if n != "inplace")
    if any(isinstance(a, Tensor) for a in (*extra, *rest.values())):
        return _FIXED_BY_NAME[default]
    entry = what_it_computes(lambda x: func(x, *extra, **rest))
    return entry if entry is not None else _FIXED_BY_NAME[default]


def call_label(func: Callable) -> str:
    """``"F.gelu"``, ``"torch.sigmoid"``, ``"Tensor.relu"``: how a call reads in code."""
    name = getattr(func, "__name__", repr(func))
    qual = getattr(func, "__qualname__", name)
    if qual.startswith("TensorBase.") or qual.startswith("Tensor."):
        return f"Tensor.{name}"
    module = getattr(func, "__module__", None) or ""
    if module.startswith("torch.nn.functional") or module == "torch._C._nn":
        return f"F.{name}"
    if module.startswith("torch.special"):
        return f"torch.special.{name}"
    return f"torch.{name}"


@dataclass(eq=False)
class Site:
    """One activation call site.

    Attributes:
        kind: the fixed activation it computes.
        label: what it was: the module's class name (``"GELUActivation"``) or the call (``"F.gelu"``).
        compute: the site's own function of one tensor (for fitting an init to it).
        module: the activation module of a module site, else ``None``.
        module_names: every name under which that module is registered.
        owner: the qualified name of the module whose ``forward`` makes the call (``None`` when not run).
        key: its call-site key (:func:`actadapt.callsites.site_location`), ``None`` when not run.
        function: the qualified name of the calling function.
        location: ``"file.py:line (function)"`` of the call.
        inplace: a functional call that writes its result into its input.
        shape, axis, dtype, device: of the input seen, and the axis that carries its channels.
        name: the site's name in the report (set by :func:`name_sites`).
    """

    kind: FixedActivation
    label: str
    compute: Callable[[Tensor], Tensor]
    module: Optional[nn.Module] = None
    module_names: Tuple[str, ...] = ()
    owner: Optional[str] = None
    key: Optional[SiteKey] = None
    function: Optional[str] = None
    location: str = ""
    inplace: bool = False
    shape: Optional[torch.Size] = None
    axis: Optional[int] = None
    dtype: Optional[torch.dtype] = None
    device: Optional[torch.device] = None
    name: str = field(default="", init=False)


def _module_names(model: nn.Module) -> Dict[int, List[str]]:
    names: Dict[int, List[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), []).append(name)
    return names


def static_sites(model: nn.Module) -> List[Site]:
    """One :class:`Site` per recognised activation module of ``model`` (``named_modules`` order)."""
    names = _module_names(model)
    sites: List[Site] = []
    seen: set = set()
    with torch.random.fork_rng(devices=[]):  # probing a dropout-like module must not move the user's RNG
        for _, module in model.named_modules():
            if id(module) in seen:
                continue
            seen.add(id(module))
            kind = recognise_module(module)
            if kind is not None:
                sites.append(Site(kind, type(module).__name__, module.forward, module, tuple(names[id(module)])))
    return sites


# ------------------------------------------------------------------------------- the channel axis
_LAST_AXIS_OPS = frozenset({"linear", "bilinear", "addmm", "layer_norm", "rms_norm", "embedding", "matmul", "__matmul__"})
_FIRST_AXIS_OPS = frozenset(
    {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "batch_norm",
     "group_norm", "instance_norm"}
)
_PERMUTE_OPS = frozenset({"permute", "transpose", "swapaxes", "swapdims", "movedim", "moveaxis", "t"})


class _Axes:
    """The channel axis of tensors made during one forward pass, keyed by identity (weakly held)."""

    def __init__(self) -> None:
        self._axes: Dict[int, Tuple[weakref.ref, int]] = {}

    def get(self, t: Any) -> Optional[int]:
        entry = self._axes.get(id(t)) if isinstance(t, Tensor) else None
        if entry is None or entry[0]() is not t:
            return None
        return entry[1]

    def set(self, t: Tensor, axis: Optional[int]) -> None:
        if axis is not None and 0 <= axis < t.dim():
            self._axes[id(t)] = (weakref.ref(t), axis)

    def follow(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(o, Tensor)]
        if not outs:
            return
        name = getattr(func, "__name__", "")
        if name in _LAST_AXIS_OPS:
            for o in outs:
                self.set(o, o.dim() - 1)
            return
        if name in _FIRST_AXIS_OPS:
            for o in outs:
                self.set(o, 1 if o.dim() > 1 else None)
            return
        source = next((a for a in args if self.get(a) is not None), None)
        if source is None:
            return
        axis = self.get(source)
        if name in _PERMUTE_OPS:
            self.set(outs[0], _permuted(name, source, args[1:], kwargs, axis))
            return
        for o in outs:
            self.set(o, _carried(source, o, axis))


def _permuted(name: str, x: Tensor, rest: tuple, kwargs: dict, axis: int) -> Optional[int]:
    nd = x.dim()
    perm = list(range(nd))
    try:
        if name == "permute":
            dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest or kwargs.get("dims")
            perm = [d % nd for d in dims]
        elif name == "t":
            perm = perm[::-1]
        elif name in ("transpose", "swapaxes", "swapdims"):
            a, b = (rest[0], rest[1]) if len(rest) >= 2 else (kwargs.get("dim0"), kwargs.get("dim1"))
            a, b = a % nd, b % nd
            perm[a], perm[b] = perm[b], perm[a]
        else:  # movedim(source, destination), ints only
            src, dst = (rest[0], rest[1]) if len(rest) >= 2 else (kwargs["source"], kwargs["destination"])
            src, dst = int(src) % nd, int(dst) % nd
            perm.pop(src)
            perm.insert(dst, src)
    except Exception:  # noqa: BLE001 - an unusual signature: give up on this tensor's axis
        return None
    return perm.index(axis) if axis in perm else None


def _carried(x: Tensor, out: Tensor, axis: int) -> Optional[int]:
    """Where ``axis`` of ``x`` is in ``out`` after an op that does not permute axes."""
    if out.dim() == x.dim():
        return axis
    # a reshape or reduction: the axis keeps its place if everything up to it, or from it on, is unchanged
    if out.shape[: axis + 1] == x.shape[: axis + 1]:
        return axis
    tail = x.dim() - axis
    if out.dim() >= tail and out.shape[out.dim() - tail:] == x.shape[axis:]:
        return out.dim() - tail
    return None


def default_axis(shape: torch.Size) -> int:
    """The channel axis when the layers around a call do not say: 1 for images (N, C, H, W) and (N, F),
    the last for sequences (N, L, C), 0 for a vector."""
    nd = len(shape)
    return 0 if nd <= 1 else (nd - 1 if nd == 3 else 1)


# ------------------------------------------------------------------------------------- recording
class _Recorder(TorchFunctionMode):
    def __init__(self, activation_modules: Dict[int, FixedActivation], opaque: set, names: Dict[int, List[str]]) -> None:
        super().__init__()
        self.activation_modules = activation_modules
        self.opaque = opaque  # activation modules and adaptive ones: the calls inside them are not sites
        self.names = names
        self.stack: List[Tuple[nn.Module, dict]] = []
        self.axes = _Axes()
        self.sites: List[Site] = []

    # module stack ---------------------------------------------------------------
    def _owner(self) -> Tuple[Optional[str], Optional[dict]]:
        if not self.stack:
            return None, None
        module, counts = self.stack[-1]
        return self.names[id(module)][0], counts

    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        kind = self.activation_modules.get(id(module))
        if kind is not None and not self._inside_activation():
            frame = caller_frame(2)
            x = args[0] if args else None
            self._add(Site(kind, type(module).__name__, module.forward, module, tuple(self.names[id(module)])), frame, x)
        self.stack.append((module, {}))

    def post_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        self.stack.pop()

    def _inside_activation(self) -> bool:
        return bool(self.stack) and id(self.stack[-1][0]) in self.opaque

    def _add(self, site: Site, frame, x: Any) -> None:
        owner, counts = self._owner()
        site.owner = owner
        if frame is not None:
            site.key = _next_key(owner, counts, site_location(frame))
            site.function = site_location(frame)[0]
            site.location = describe_frame(frame)
        if isinstance(x, Tensor):
            site.shape, site.dtype, site.device = x.shape, x.dtype, x.device
            site.axis = self.axes.get(x)
        self.sites.append(site)

    # torch calls ----------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in ACTIVATION_FUNCTIONS and not self._inside_activation():
            kind = recognise_call(func, args, kwargs)
            x = args[0] if args else kwargs.get("input")
            extra = {k: v for k, v in kwargs.items() if k not in ("input", "inplace")}
            compute = pure_call(func, args[1:], extra)
            site = Site(kind, call_label(func), compute, inplace=is_inplace_call(func, args, kwargs))  # type: ignore[arg-type]
            self._add(site, caller_frame(2), x)
        out = func(*args, **kwargs)
        self.axes.follow(func, args, kwargs, out)
        return out


def pure_call(func: Callable, rest: tuple, kwargs: dict) -> Callable[[Tensor], Tensor]:
    """``x -> func(x, *rest, **kwargs)`` on a copy of ``x``, without a positional in-place flag."""
    rest = tuple(a for a in rest if not isinstance(a, bool))  # a positional inplace flag
    return lambda x: func(x.clone(), *rest, **kwargs)


def record_sites(model: nn.Module, args: tuple, kwargs: dict) -> Tuple[List[Site], Any]:
    """Run ``model(*args, **kwargs)`` once and return ``(sites, output)``: every activation call, in order.

    The caller sets the mode (eval) and the grad state; hooks are removed however the run ends.
    """
    names = _module_names(model)
    with torch.random.fork_rng(devices=[]):
        activation_modules = {id(s.module): s.kind for s in static_sites(model)}
    opaque = set(activation_modules) | {
        id(m) for m in model.modules() if isinstance(m, (AdaptiveActivation, CallSiteActivation, CallSiteScope))
    }
    recorder = _Recorder(activation_modules, opaque, names)
    handles = []
    try:
        for module in {id(m): m for m in model.modules()}.values():
            handles.append(module.register_forward_pre_hook(recorder.pre_hook))
            handles.append(module.register_forward_hook(recorder.post_hook, always_call=True))
        with recorder:
            output = model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return recorder.sites, output
