r"""Training helpers: select the alpha parameters, give them their own optimizer group, and the paper's penalties.

PAPER.md §1, eqs. 4-6: per neuron, :math:`\theta = [\alpha, w_0, w]` is trained by gradient steps (each part may
have its own learning rate) on the loss plus an L2 penalty :math:`\sum_j \theta_j^2` or an L1 penalty
:math:`\sum_j |\theta_j|`.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import actadapt
    >>> model = nn.Sequential(nn.Linear(10, 10), actadapt.AdaptiveGumbel(10), nn.Linear(10, 1))
    >>> opt = torch.optim.SGD(actadapt.param_groups(model, lr=0.01, alpha_lr=0.001, weight_decay=1e-4), lr=0.01)
    >>> [g["name"] for g in opt.param_groups]
    ['weights', 'alpha']
    >>> x, y = torch.randn(20, 10), torch.randn(20, 1)
    >>> loss = nn.functional.mse_loss(model(x), y) + actadapt.penalty(model, l1=1e-3, l2=1e-3)
    >>> loss.backward()
"""

from __future__ import annotations

from typing import Iterable, Iterator, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.parameter import is_lazy

from .modules import AdaptiveActivation

__all__ = [
    "named_alpha_parameters",
    "alpha_parameters",
    "param_groups",
    "l1_penalty",
    "l2_penalty",
    "penalty",
    "PENALTY_TARGETS",
]

PENALTY_TARGETS = ("all", "weights", "alpha")


def _adaptive_modules(model: nn.Module) -> Iterator[Tuple[str, AdaptiveActivation]]:
    for name, module in model.named_modules():  # named_modules skips repeated (shared) modules
        if isinstance(module, AdaptiveActivation):
            yield name, module


def named_alpha_parameters(model: nn.Module) -> Iterator[Tuple[str, nn.Parameter]]:
    """``(name, rho)`` for the trainable ``rho`` of every :class:`~actadapt.AdaptiveActivation` in ``model``.

    Names are those of ``model.named_parameters()`` (``"features.1.rho"``). Modules built with
    ``trainable=False`` hold ``rho`` as a buffer and are not listed; each parameter is listed once.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    seen: set[int] = set()
    for name, module in _adaptive_modules(model):
        rho = module._parameters.get("rho")
        if rho is not None and id(rho) not in seen:
            seen.add(id(rho))
            yield (f"{name}.rho" if name else "rho"), rho


def alpha_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Iterator over the raw alpha parameters ``rho`` of every adaptive activation in ``model``.

    ``alpha = exp(rho)`` (or ``softplus(rho)``): these are what an optimizer updates. Lazy modules yield their
    ``UninitializedParameter``, which an optimizer may hold before the first forward sizes it.

    Example::

        >>> from torch import nn
        >>> import actadapt
        >>> model = nn.Sequential(nn.Linear(3, 4), actadapt.AdaptiveReLU(4), nn.Linear(4, 2), actadapt.AdaptiveGumbel(2))
        >>> [p.shape for p in actadapt.alpha_parameters(model)]
        [torch.Size([4]), torch.Size([2])]
    """
    for _, rho in named_alpha_parameters(model):
        yield rho


def param_groups(
    model: nn.Module,
    lr: float,
    alpha_lr: Optional[float] = None,
    weight_decay: float = 0.0,
    alpha_weight_decay: float = 0.0,
) -> list[dict]:
    r"""Optimizer parameter groups: every other trainable parameter, and the alpha parameters apart.

    Args:
        model: the model.
        lr: learning rate of the weights and biases.
        alpha_lr: learning rate of the alpha parameters (``rho``). Default: ``None`` (same as ``lr``)
        weight_decay: weight decay of the weights and biases. Default: ``0.0``
        alpha_weight_decay: weight decay of ``rho``; usually unwanted, as for ``nn.PReLU``. Default: ``0.0``

    Returns:
        A list for ``torch.optim.*(groups, ...)``: ``{"name": "weights", "params": [...], "lr": lr,
        "weight_decay": weight_decay}`` and ``{"name": "alpha", "params": [...], "lr": alpha_lr,
        "weight_decay": alpha_weight_decay}``. A group with no parameters is left out. Parameters with
        ``requires_grad=False`` are left out.

    Example::

        >>> import torch
        >>> from torch import nn
        >>> import actadapt
        >>> model = nn.Sequential(nn.Linear(3, 4), actadapt.AdaptiveReLU(4))
        >>> opt = torch.optim.AdamW(actadapt.param_groups(model, lr=1e-3, alpha_lr=1e-2, weight_decay=0.05), lr=1e-3)
        >>> [(g["name"], g["lr"], g["weight_decay"]) for g in opt.param_groups]
        [('weights', 0.001, 0.05), ('alpha', 0.01, 0.0)]
    """
    for arg, value in (("lr", lr), ("weight_decay", weight_decay), ("alpha_weight_decay", alpha_weight_decay)):
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{arg} must be a non-negative number, got {value!r}")
    if alpha_lr is not None and (not isinstance(alpha_lr, (int, float)) or alpha_lr < 0):
        raise ValueError(f"alpha_lr must be a non-negative number or None (same as lr), got {alpha_lr!r}")
    alpha = [p for p in alpha_parameters(model) if p.requires_grad]
    alpha_ids = {id(p) for p in alpha}
    weights = [p for p in model.parameters() if p.requires_grad and id(p) not in alpha_ids]
    groups = [
        {"name": "weights", "params": weights, "lr": lr, "weight_decay": weight_decay},
        {"name": "alpha", "params": alpha, "lr": lr if alpha_lr is None else alpha_lr, "weight_decay": alpha_weight_decay},
    ]
    return [g for g in groups if g["params"]]


# --------------------------------------------------------------------------------------- penalties
def _zero_like_first(params: list[Tensor]) -> Tensor:
    if params:
        return params[0].new_zeros(())
    return torch.zeros(())


def l1_penalty(params: Iterable[Tensor]) -> Tensor:
    r"""The L1 penalty of eq. 6: :math:`\sum_j |\theta_j|` over every element of every tensor in ``params``.

    Returns a 0-dim tensor (0 for no parameters), differentiable in ``params``.
    """
    params = list(params)
    total = _zero_like_first(params)
    for p in params:
        total = total + p.abs().sum()
    return total


def l2_penalty(params: Iterable[Tensor]) -> Tensor:
    r"""The L2 penalty of eq. 5: :math:`\sum_j \theta_j^2` over every element of every tensor in ``params``
    (no factor 1/2, no square root). Returns a 0-dim tensor (0 for no parameters)."""
    params = list(params)
    total = _zero_like_first(params)
    for p in params:
        total = total + p.square().sum()
    return total


def _penalised_tensors(model: nn.Module, on: str, alpha_space: str) -> list[Tensor]:
    # Lazy (not yet sized) parameters have no value yet and are skipped.
    alpha_ids = {id(p) for p in alpha_parameters(model)}
    out: list[Tensor] = []
    if on in ("all", "weights"):
        out += [p for p in model.parameters() if p.requires_grad and id(p) not in alpha_ids and not is_lazy(p)]
    if on in ("all", "alpha"):
        for _, module in _adaptive_modules(model):
            rho = module._parameters.get("rho")
            if rho is None or not rho.requires_grad or is_lazy(rho):
                continue
            out.append(module.alpha if alpha_space == "alpha" else rho)
    return out


def penalty(
    model: nn.Module, l1: float = 0.0, l2: float = 0.0, on: str = "all", alpha_space: str = "alpha"
) -> Tensor:
    r"""The paper's penalty (eqs. 4-6), :math:`\lambda_1 \sum_j |\theta_j| + \lambda_2 \sum_j \theta_j^2`, to add
    to the loss.

    Args:
        model: the model.
        l1: :math:`\lambda_1`, weight of the L1 norm. Default: ``0.0``
        l2: :math:`\lambda_2`, weight of the squared L2 norm. Default: ``0.0``
        on: which parameters form :math:`\theta`: ``"all"`` (weights, biases and alpha, as in the paper),
            ``"weights"`` (every trainable parameter except alpha) or ``"alpha"``. For another selection use
            :func:`l1_penalty` / :func:`l2_penalty` on any list of tensors. Default: ``"all"``
        alpha_space: penalise the positive ``"alpha"`` itself (the paper's :math:`\theta` holds :math:`\alpha`)
            or its raw parameter ``"rho"`` (which pulls alpha towards ``exp(0) = 1``). Default: ``"alpha"``

    Returns:
        A 0-dim tensor, differentiable in the selected parameters.
    """
    if on not in PENALTY_TARGETS:
        raise ValueError(f"unknown penalty target on={on!r}; valid targets: {', '.join(PENALTY_TARGETS)}")
    if alpha_space not in ("alpha", "rho"):
        raise ValueError(f"alpha_space must be 'alpha' or 'rho', got {alpha_space!r}")
    for arg, value in (("l1", l1), ("l2", l2)):
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{arg} must be a non-negative number, got {value!r}")
    tensors = _penalised_tensors(model, on, alpha_space)
    total = _zero_like_first(tensors)
    if l1:
        total = total + l1 * l1_penalty(tensors)
    if l2:
        total = total + l2 * l2_penalty(tensors)
    return total
