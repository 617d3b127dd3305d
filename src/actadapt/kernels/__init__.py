"""The fused operator for the three paper activations: one registration, one file per device, one dispatcher.

* :mod:`.ops`: ``actadapt::cdf_activation`` and its backward, registered with ``torch.library`` (device
  kernels, fake implementations, autograd, vmap);
* :mod:`.cpu`: the C++ kernel (``csrc/activations.cpp``), built per instruction set;
* :mod:`.gpu`: the Triton kernels (CUDA; CPU tensors under Triton's interpreter);
* :mod:`.dispatch`: which activations, devices and backends the operator serves, and what runs it;
* :mod:`.reference`: the pure-PyTorch formulas every kernel matches, and the fallback.

Only :mod:`actadapt._autograd` (and the tests) import this package; it imports nothing of actadapt's but
:mod:`actadapt.families` and :mod:`actadapt._backend`.
"""

from .dispatch import FUSED, fused_kind, takes
from .ops import cdf_activation, cdf_activation_backward

__all__ = ["FUSED", "fused_kind", "takes", "cdf_activation", "cdf_activation_backward"]
