r"""Weight initialisation rules of the experiment models, each drawn from an explicit ``torch.Generator`` so
that a seeded run starts from the same point every time.

* :func:`lecun_init` -- LeCun et al. 1998 ("Efficient BackProp"): weights and biases
  :math:`\sim \mathcal N(0, 1/\text{fan\_in})` (the paper's Table 1 students).
* :func:`glorot_uniform_` -- Glorot & Bengio 2010: weights :math:`\sim U(-b, b)`,
  :math:`b = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}`, zero biases (Kim's 2014 code).
* :func:`torch_linear_init_` -- PyTorch's ``nn.Linear`` default: weights by ``kaiming_uniform_(a=sqrt(5))``,
  i.e. :math:`U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})`, and biases from the same law.

:func:`init_linear_` applies one of them, by name (:data:`LINEAR_INITS`), to an ``nn.Linear``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

__all__ = ["LINEAR_INITS", "lecun_init", "glorot_uniform_", "torch_linear_init_", "init_linear_"]

LINEAR_INITS = ("glorot", "lecun", "torch")


def lecun_init(generator: torch.Generator, fan_in: int, fan_out: int, dtype: torch.dtype):
    """LeCun et al. 1998 ("Efficient BackProp"): weights and biases ~ N(0, 1/fan_in).

    Drawn in float64 then cast, so float32 and float64 runs start from the same point.
    Returns ``(W (fan_in, fan_out), b (fan_out,))``.
    """
    std = 1.0 / math.sqrt(fan_in)
    W = torch.randn(fan_in, fan_out, generator=generator, dtype=torch.float64) * std
    b = torch.randn(fan_out, generator=generator, dtype=torch.float64) * std
    return W.to(dtype), b.to(dtype)


@torch.no_grad()
def glorot_uniform_(layer: nn.Module, generator: Optional[torch.Generator] = None) -> None:
    r"""Glorot-uniform weights and zero biases of a ``Linear`` (weight ``(out, in)``) or ``Conv1d`` (weight
    ``(out, in, w)``), in place: :math:`U(-b, b)`, :math:`b = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}` with
    ``fan_in = in * w`` and ``fan_out = out * w`` (Kim's code, after Theano's convention)."""
    w = layer.weight
    receptive = w[0, 0].numel()  # w for a convolution, 1 for a linear layer
    fan_in, fan_out = w[0].numel(), w.shape[0] * receptive
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    w.uniform_(-bound, bound, generator=generator)
    layer.bias.zero_()


@torch.no_grad()
def torch_linear_init_(layer: nn.Linear, generator: Optional[torch.Generator] = None) -> None:
    r"""PyTorch's ``nn.Linear.reset_parameters``, drawn from ``generator``: ``kaiming_uniform_(weight, a=sqrt(5))``,
    whose bound is :math:`\text{gain} \sqrt{3 / \text{fan\_in}} = \sqrt{2 / (1 + 5)} \sqrt{3 / \text{fan\_in}}
    = 1 / \sqrt{\text{fan\_in}}`, then biases :math:`\sim U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})`.
    With a generator seeded ``s`` it gives the weights ``torch.manual_seed(s); nn.Linear(...)`` gives (tested)."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(layer.in_features)
    layer.bias.uniform_(-bound, bound, generator=generator)


@torch.no_grad()
def init_linear_(layer: nn.Linear, rule: str, generator: Optional[torch.Generator] = None) -> None:
    """Initialise ``layer`` (weight ``(out, in)``, bias ``(out,)``) in place by ``rule``, one of
    :data:`LINEAR_INITS`: ``"glorot"`` (:func:`glorot_uniform_`), ``"lecun"`` (:func:`lecun_init`, weights and
    biases ~ N(0, 1/in)) or ``"torch"`` (:func:`torch_linear_init_`)."""
    if rule == "glorot":
        glorot_uniform_(layer, generator)
    elif rule == "lecun":
        W, b = lecun_init(generator, layer.in_features, layer.out_features, layer.weight.dtype)
        layer.weight.copy_(W.t())
        layer.bias.copy_(b)
    elif rule == "torch":
        torch_linear_init_(layer, generator)
    else:
        raise ValueError(f"unknown initialisation {rule!r}; valid: {', '.join(LINEAR_INITS)}")
