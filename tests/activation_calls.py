"""Count activation calls in a forward pass, independently of actadapt's own discovery: forward hooks on
activation modules and a torch-function mode for functional calls made outside them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from actadapt import AdaptiveActivation

FIXED_FUNCTIONS = {
    F.relu, F.relu_, torch.relu, torch.Tensor.relu, torch.Tensor.relu_, F.relu6, F.hardtanh, F.gelu, F.silu,
    F.leaky_relu, F.elu, F.mish, F.hardswish, F.hardsigmoid, torch.sigmoid, torch.Tensor.sigmoid, torch.tanh,
    torch.Tensor.tanh,
}
FIXED_MODULES = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish,
                 nn.LeakyReLU, nn.ELU)


def activation_calls(model: nn.Module, *args, extra_modules: tuple = (), **kwargs) -> tuple:
    """``(adaptive, fixed)``: calls of adaptive activation modules, and calls of fixed activations (modules in
    ``FIXED_MODULES + extra_modules``, or functions outside any of those modules) in ``model(*args, **kwargs)``."""
    fixed_modules = FIXED_MODULES + tuple(extra_modules)
    state = {"adaptive": 0, "fixed": 0, "depth": 0}

    class Count(TorchFunctionMode):
        def __torch_function__(self, func, types, a=(), kw=None):
            if func in FIXED_FUNCTIONS and state["depth"] == 0:
                state["fixed"] += 1
            return func(*a, **(kw or {}))

    def pre(m, a):
        if isinstance(m, AdaptiveActivation):
            state["adaptive"] += 1
        elif isinstance(m, fixed_modules):
            state["fixed"] += 1
        if isinstance(m, (AdaptiveActivation, *fixed_modules)):
            state["depth"] += 1

    def post(m, a, o):
        if isinstance(m, (AdaptiveActivation, *fixed_modules)):
            state["depth"] -= 1

    handles = [h for m in model.modules() for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        with Count(), torch.no_grad():
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return state["adaptive"], state["fixed"]
