r"""Call sites: one adaptive activation per place where a model calls an activation, without rewriting code.

:func:`actadapt.convert` replaces an activation module that is called once by an adaptive module. Two kinds of
call sites cannot be reached that way, and this module reaches them while the model keeps its class:

* a module called at several places (torchvision's ``Bottleneck`` calls one ``self.relu`` at two widths)
  becomes a :class:`CallSiteActivation`, which holds one adaptive module per call site and picks it by
  where it is called from;
* an activation called as a function in ``forward`` (``F.gelu(x)``, ``torch.sigmoid(x)``, ``x.relu()``) is
  routed to an adaptive module held by a :class:`CallSiteScope` attached to the module whose ``forward``
  makes the call (the *owner*), through a ``TorchFunctionMode`` that is active while the owner runs.

A call site is identified by :func:`site_location`: the owner's name, the function that makes the call and
its line, and how many calls that line has made since the owner's ``forward`` began (a loop gives each
iteration its own site, as ``torch.fx`` unrolls it). Owners mark the start and end of their ``forward``
with hooks held by their :class:`CallSiteScope`; everything here pickles, deep-copies and round-trips
through ``state_dict``.

.. note::
    Routing inspects the caller's frame (about a microsecond per routed call) and the functional router sees
    every torch call inside its owner. The routing runs outside ``torch.compile`` (``torch.compiler.disable``),
    so a compiled model breaks its graph at routed sites; plain module replacements, the common case, are
    unaffected, and ``convert(..., method="fx")`` gives one graph where a model traces.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

__all__ = ["CallSiteActivation", "CallSiteScope", "site_location", "replace_module", "ACTIVATION_FUNCTIONS",
           "UnknownCallSite"]

#: ``(owner name, function name, line offset in the function, occurrence)``
SiteKey = Tuple[Optional[str], str, int, int]


def _activation_functions() -> Dict[Callable, str]:
    from .activations import FIXED  # noqa: PLC0415 (activations imports modules, which must not import this)

    return {f: entry.name for entry in FIXED for f in entry.functions}


#: Every torch callable that computes a known fixed activation, mapped to its default kind.
ACTIVATION_FUNCTIONS: Dict[Callable, str] = _activation_functions()


class UnknownCallSite(RuntimeError):
    """An activation was called from a place that :func:`actadapt.convert` did not see."""


def _torch_file(*parts: str) -> str:
    return os.path.normcase(os.path.join(os.path.dirname(torch.__file__), *parts))


# Frames of the call machinery between a call site and the code that makes the call: nn.Module.__call__,
# the torch-function dispatch of F.* wrappers and Tensor methods, dynamo's wrappers, and this package's own.
_SKIP_FILES = frozenset(
    {
        _torch_file("nn", "modules", "module.py"),
        _torch_file("overrides.py"),
        _torch_file("nn", "functional.py"),
        _torch_file("_tensor.py"),
        os.path.normcase(os.path.abspath(__file__)),
        os.path.normcase(os.path.join(os.path.dirname(os.path.abspath(__file__)), "discover.py")),
    }
)
_SKIP_DIRS = (_torch_file("_dynamo") + os.sep,)


def _skipped(filename: str) -> bool:
    f = os.path.normcase(filename)
    return f in _SKIP_FILES or f.startswith(_SKIP_DIRS)


def caller_frame(depth: int = 1):
    """The first frame above this call that is not call machinery (see ``_SKIP_FILES``)."""
    frame = sys._getframe(depth)
    while frame is not None and _skipped(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


# torch.compile runs the rest of a function after a graph break in a "resume" function named after it
_RESUME = re.compile(r"torch_dynamo_resume_in_(\w+?)_at_\d+")


def function_name(code) -> str:
    """The qualified name of the function a code object belongs to (the original for dynamo's resumes)."""
    return _RESUME.sub(r"\1", getattr(code, "co_qualname", code.co_name))


def site_location(frame) -> Tuple[str, int]:
    """``(function name, line)`` of a frame: the place part of a call-site key."""
    return function_name(frame.f_code), frame.f_lineno


def describe_frame(frame) -> str:
    """``"modeling_whisper.py:617 (WhisperEncoder.forward)"`` for reports and errors."""
    code = frame.f_code
    return f"{os.path.basename(code.co_filename)}:{frame.f_lineno} ({getattr(code, 'co_qualname', code.co_name)})"


# ------------------------------------------------------------------------------------ owner scopes
class _Active(threading.local):
    def __init__(self) -> None:
        self.frames: list = []  # [(owner name, {location: calls so far}, mode or None)]


_ACTIVE = _Active()


def _next_key(owner: Optional[str], counts: Optional[dict], location: Tuple[str, int]) -> SiteKey:
    if counts is None:
        return (owner, location[0], location[1], 0)
    k = counts.get(location, 0)
    counts[location] = k + 1
    return (owner, location[0], location[1], k)


class _Router(TorchFunctionMode):
    """Sends the owner's functional activation calls to its adaptive modules; everything else passes."""

    def __init__(self, scope: "CallSiteScope") -> None:
        super().__init__()
        self.scope = scope

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in ACTIVATION_FUNCTIONS:  # the fast path, which torch.compile can trace
            return func(*args, **kwargs)
        return self._route(func, args, kwargs)

    @torch.compiler.disable
    def _route(self, func, args: tuple, kwargs: dict):
        frame = caller_frame(3)
        scope = self.scope
        if frame is None or site_location(frame)[0] not in scope.functions:
            return func(*args, **kwargs)  # not the owner's code: an adaptive module's internals, a library
        counts = _ACTIVE.frames[-1][1] if _ACTIVE.frames else None
        key = _next_key(scope.owner, counts, site_location(frame))
        name = scope.keys.get(key)
        if name is None:
            raise UnknownCallSite(_unknown_site_message(func, frame, key))
        x = args[0] if args else kwargs["input"]
        module = scope.sites[name]
        if name in scope.inplace:  # x.relu_(): the caller may use x, not the result. The clone keeps the
            return x.copy_(module(x.clone()))  # input that the adaptive module saves for backward unmodified.
        return module(x)


def _unknown_site_message(what: Any, frame, key: SiteKey) -> str:
    label = getattr(what, "__name__", type(what).__name__)
    return (
        f"{label} called at {describe_frame(frame)} (call {key[3] + 1} from that line in "
        f"{key[0] or 'the model'!r}) was not called there when convert ran example_inputs; convert again with "
        "example_inputs that take this path (convert runs them in eval mode), or use method='fx'"
    )


class CallSiteScope(nn.Module):
    r"""Marks an owner module's ``forward`` and holds the adaptive modules of its functional call sites.

    :func:`actadapt.convert` attaches it to the owner as the child ``actadapt_sites`` and registers its
    :meth:`enter`/:meth:`exit` as the owner's forward pre-hook and (always-called) forward hook.

    Args:
        owner (str): the owner's qualified name in the model (part of every site key).
        sites (dict): ``{site name: adaptive module}`` for the owner's functional calls.
        keys (dict): ``{site key: site name}``.
        functions (iterable of str): names of the functions (``co_qualname``) that make those calls.
        inplace (iterable of str): site names called in place (``x.relu_()``): the result is written into x.
    """

    def __init__(
        self,
        owner: str,
        sites: Optional[Dict[str, nn.Module]] = None,
        keys: Optional[Dict[SiteKey, str]] = None,
        functions: Iterable[str] = (),
        inplace: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.owner = owner
        self.sites = nn.ModuleDict(sites or {})
        self.keys: Dict[SiteKey, str] = dict(keys or {})
        self.functions = frozenset(functions)
        self.inplace = frozenset(inplace)

    def attach(self, owner_module: nn.Module) -> None:
        """Add this scope to ``owner_module`` as ``actadapt_sites`` and register its hooks there."""
        if "actadapt_sites" in owner_module._modules:
            raise RuntimeError(f"{self.owner or 'the model'!r} already has call sites attached (actadapt_sites)")
        owner_module.add_module("actadapt_sites", self)
        owner_module.register_forward_pre_hook(self.enter)
        owner_module.register_forward_hook(self.exit, always_call=True)

    @torch.compiler.disable
    def enter(self, module: nn.Module, args: Any) -> None:
        mode = _Router(self) if len(self.sites) else None
        _ACTIVE.frames.append((self.owner, {}, mode))
        if mode is not None:
            mode.__enter__()

    @torch.compiler.disable
    def exit(self, module: nn.Module, args: Any, output: Any) -> None:
        _, _, mode = _ACTIVE.frames.pop()
        if mode is not None:
            mode.__exit__(None, None, None)

    def extra_repr(self) -> str:
        return f"owner={self.owner or '(root)'!r}, functional sites={len(self.sites)}"


class CallSiteActivation(nn.Module):
    r"""Stands in for an activation module that a model calls at several places: one adaptive module per
    call site, chosen at each call by :func:`site_location` of the caller.

    Args:
        sites (list of nn.Module): the adaptive modules, one per call site, in the order first called.
        keys (dict): ``{site key: index into sites}``.
        replaced (str): the name of the module it replaced, for errors.

    Shape:
        - Input: the input of the call site's module. Output: the same shape.
    """

    def __init__(self, sites: Iterable[nn.Module], keys: Dict[SiteKey, int], replaced: str = "") -> None:
        super().__init__()
        self.sites = nn.ModuleList(sites)
        self.keys: Dict[SiteKey, int] = dict(keys)
        self.replaced = replaced

    @torch.compiler.disable
    def forward(self, input: Tensor) -> Tensor:
        frame = caller_frame(1)
        top = _ACTIVE.frames[-1] if _ACTIVE.frames else (None, None, None)
        key = _next_key(top[0], top[1], site_location(frame)) if frame is not None else None
        index = self.keys.get(key) if key is not None else None
        if index is None:
            raise UnknownCallSite(
                f"{self.replaced or 'this activation'}: " + _unknown_site_message(self, frame, key or (None, "", 0, 0))
            )
        return self.sites[index](input)

    def extra_repr(self) -> str:
        return f"replaced={self.replaced!r}, call sites={len(self.sites)}"


def replace_module(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` at the qualified ``name`` of ``model`` (any container: Sequential, ModuleList, ModuleDict);
    ``""`` replaces the root. Returns the (new) root."""
    if name == "":
        return new
    parent_name, _, child = name.rpartition(".")
    model.get_submodule(parent_name)._modules[child] = new
    return model
