"""actadapt: adaptive activation functions for PyTorch.

Every neuron learns the shape of its own activation, a cumulative distribution function with a trainable
shape parameter alpha (Farhadi, Partovi Nia & Lodi, "Activation Adaptation in Neural Networks", ICPRAM 2020).
``actadapt.plot`` (matplotlib) is imported on first use.
"""

from ._backend import get_backend, set_backend
from .families import CdfFamily, available_families, get_family, register_family
from .functional import adaptive_activation, adaptive_gumbel, adaptive_relu, adaptive_tanh, swish
from .modules import AdaptiveActivation, AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish, AdaptiveTanh
from .activations import ActivationSpec, activation_layer, activation_spec, available_activations, get_activation
from .training import alpha_parameters, l1_penalty, l2_penalty, named_alpha_parameters, param_groups, penalty
from .callsites import CallSiteActivation, CallSiteScope, UnknownCallSite
from .convert import Conversion, Replacement, convert
from .inspect import AlphaRow, alpha_dict, alpha_table, format_alpha_table

__version__ = "0.1.0"

__all__ = [
    "adaptive_activation",
    "adaptive_gumbel",
    "adaptive_relu",
    "adaptive_tanh",
    "swish",
    "CdfFamily",
    "available_families",
    "get_family",
    "register_family",
    "get_backend",
    "set_backend",
    "AdaptiveActivation",
    "AdaptiveGumbel",
    "AdaptiveReLU",
    "AdaptiveSwish",
    "AdaptiveTanh",
    "ActivationSpec",
    "get_activation",
    "activation_layer",
    "activation_spec",
    "available_activations",
    "alpha_parameters",
    "named_alpha_parameters",
    "param_groups",
    "l1_penalty",
    "l2_penalty",
    "penalty",
    "convert",
    "Conversion",
    "Replacement",
    "CallSiteActivation",
    "CallSiteScope",
    "UnknownCallSite",
    "alpha_dict",
    "alpha_table",
    "format_alpha_table",
    "AlphaRow",
    "plot",
    "__version__",
]


def __getattr__(name: str):
    # actadapt.plot on first use: it imports matplotlib only inside its functions, but keeping the module
    # itself out of `import actadapt` keeps the start-up lean.
    if name == "plot":
        import importlib

        module = importlib.import_module(".plot", __name__)
        globals()["plot"] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
