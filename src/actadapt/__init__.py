"""actadapt: adaptive activation functions for PyTorch.

Every neuron learns the shape of its own activation, a cumulative distribution function with a trainable
shape parameter alpha (Farhadi, Partovi Nia & Lodi, "Activation Adaptation in Neural Networks", ICPRAM 2020).
"""

from ._backend import get_backend, set_backend
from .families import CdfFamily, available_families, get_family, register_family
from .functional import adaptive_activation, adaptive_gumbel, adaptive_relu, swish
from .modules import AdaptiveActivation, AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish
from .training import alpha_parameters, l1_penalty, l2_penalty, named_alpha_parameters, param_groups, penalty
from .convert import Conversion, Replacement, convert
from .inspect import AlphaRow, alpha_dict, alpha_table, format_alpha_table

__version__ = "0.1.0"

__all__ = [
    "adaptive_activation",
    "adaptive_gumbel",
    "adaptive_relu",
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
    "alpha_parameters",
    "named_alpha_parameters",
    "param_groups",
    "l1_penalty",
    "l2_penalty",
    "penalty",
    "convert",
    "Conversion",
    "Replacement",
    "alpha_dict",
    "alpha_table",
    "format_alpha_table",
    "AlphaRow",
    "__version__",
]
