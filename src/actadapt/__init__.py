"""actadapt: adaptive activation functions for PyTorch.

Every neuron learns the shape of its own activation, a cumulative distribution function with a trainable
shape parameter alpha (Farhadi, Partovi Nia & Lodi, "Activation Adaptation in Neural Networks", ICPRAM 2020).
"""

from ._backend import get_backend, set_backend
from .families import CdfFamily, available_families, get_family, register_family
from .functional import adaptive_activation, adaptive_gumbel, adaptive_relu, swish

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
    "__version__",
]
