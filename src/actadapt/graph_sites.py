r"""``convert(..., method="fx")``: the activation call sites of a ``torch.fx`` graph.

:func:`trace` traces a model keeping recognised activation modules whole (one node each),
:func:`graph_sites` lists one :class:`~actadapt.discover.Site` per activation node (module calls,
``F.gelu``-style calls and ``x.relu()``-style methods, each call of a reused module its own), and
:func:`install_in_graph` puts an adaptive module at each of them, so that every site is a module call of the
returned ``GraphModule``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from .callsites import ACTIVATION_FUNCTIONS, _skipped, replace_module
from .discover import Site, pure_call, call_label, is_inplace_call, recognise_call, recognise_module, static_sites

__all__ = ["trace", "graph_sites", "install_in_graph"]


class _Tracer(torch.fx.Tracer):
    """Keeps recognised activation modules as single calls (leaves) in the graph."""

    def __init__(self, activation_modules: frozenset = frozenset()) -> None:  # no arguments: unpickling re-traces
        super().__init__()
        self.activation_modules = activation_modules
        self.record_stack_traces = True  # the report's locations are the model's source lines

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return id(m) in self.activation_modules or super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module) -> torch.fx.GraphModule:
    """``torch.fx`` symbolic tracing with activation modules kept whole; a clear ``ValueError`` if it fails."""
    leaves = frozenset(id(s.module) for s in static_sites(model))
    try:
        graph = _Tracer(leaves).trace(model)
    except Exception as e:  # noqa: BLE001 - every tracing failure gets the same advice
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"convert(method='fx'): {type(model).__name__} does not trace with torch.fx ({type(e).__name__}: "
            f"{first[:200]}); use method='modules' (the default), which needs no tracing"
        ) from None
    for node in graph.nodes:  # `from __future__ import annotations` leaves types as strings, which fx cannot pickle
        if isinstance(node.type, str):
            node.type = None
    return torch.fx.GraphModule(model, graph, class_name=type(model).__name__)


def _node_location(node: torch.fx.Node) -> str:
    """``"file.py:line (function)"`` of the source line a node was traced from."""
    found = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', node.meta.get("stack_trace") or "")
    found = [f for f in found if "/fx/" not in f[0].replace(chr(92), "/") and not _skipped(f[0])]
    if not found:
        return ""
    path, line, function = found[-1]
    return f"{path.replace(chr(92), '/').rsplit('/', 1)[-1]}:{line} ({function})"


def _node_function(node: torch.fx.Node) -> Optional[Callable]:
    if node.op == "call_function" and node.target in ACTIVATION_FUNCTIONS:
        return node.target
    if node.op == "call_method":
        method = getattr(torch.Tensor, str(node.target), None)
        if method in ACTIVATION_FUNCTIONS:
            return method
    return None


def graph_sites(gm: torch.fx.GraphModule) -> List[Tuple[torch.fx.Node, Site]]:
    """One site per activation node of the graph, in graph (= execution) order."""
    out = []
    kinds: Dict[int, Any] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            m = gm.get_submodule(node.target)
            if id(m) not in kinds:
                kinds[id(m)] = recognise_module(m)
            if kinds[id(m)] is not None:
                site = Site(kinds[id(m)], type(m).__name__, m.forward, m, (str(node.target),), location=_node_location(node))
                out.append((node, site))
            continue
        func = _node_function(node)
        if func is None:
            continue
        args = (None, *node.args[1:])
        dynamic = any(isinstance(a, torch.fx.Node) for a in (*node.args[1:], *node.kwargs.values()))
        kwargs = {} if dynamic else dict(node.kwargs)
        kind = recognise_call(func, args if not dynamic else (None,), kwargs)
        extra = {k: v for k, v in kwargs.items() if k not in ("input", "inplace")}
        site = Site(kind, call_label(func), pure_call(func, args[1:] if not dynamic else (), extra),  # type: ignore[arg-type]
                    inplace=is_inplace_call(func, args, dict(node.kwargs)), location=_node_location(node))
        site.owner = ""
        out.append((node, site))
    return out


def install_in_graph(gm: torch.fx.GraphModule, built: List[Tuple[Site, nn.Module]], nodes: Dict[int, torch.fx.Node]) -> torch.fx.GraphModule:
    calls: Dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    for site, module in built:
        node = nodes[id(site)]
        if node.op == "call_module" and calls[str(node.target)] == 1:
            replace_module(gm, str(node.target), module)
            continue
        path = f"actadapt_sites.{node.name}"
        gm.add_submodule(path, module)
        x = node.args[0] if node.args else node.kwargs["input"]
        with gm.graph.inserting_before(node):
            if site.inplace:  # write the result into x, as the in-place call did
                clone = gm.graph.call_method("clone", (x,))
                act = gm.graph.call_module(path, (clone,))
                new = gm.graph.call_method("copy_", (x, act))
            else:
                new = gm.graph.call_module(path, (x,))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm
