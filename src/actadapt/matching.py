r"""The initial alpha at which an adaptive activation starts closest to a fixed one (``init="match"``).

For the pairs that :func:`actadapt.convert` uses by default the answer is a row of
:data:`actadapt.activations.FIXED` (exact where a family contains the function: SiLU is Swish at alpha 1, the
sigmoid is the Gumbel cdf at alpha 1, tanh the centred Gumbel at alpha 1). For any other pair
:func:`fit_alpha` finds it: the alpha that minimises the largest pointwise difference

.. math::
    \alpha^* = \arg\min_{\alpha \in [10^{-2},\, 10^{2}]}\ \max_{x \in [-12, 12]} |\sigma_\alpha(x) - f(x)|

on a float64 grid (coarse log grid, then golden-section search in :math:`\log\alpha`).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from .activations import ActivationSpec, FixedActivation, activation_spec

__all__ = ["max_error", "fit_alpha", "matched_init", "FIT_RANGE", "ALPHA_RANGE"]

FIT_RANGE = (-12.0, 12.0)
ALPHA_RANGE = (1e-2, 1e2)
# Fewer than 32768 points in all: torch's grain for splitting an op over threads, so that a fit does not
# wait on busy threads (and each evaluation costs tens of microseconds).
_GRID_POINTS = 16001  # step 1.5e-3 on [-12, 12]
_NEAR_ZERO = torch.linspace(-0.05, 0.05, 8001, dtype=torch.float64)  # step 1.25e-5: ReLU-like errors peak at 1/alpha


def _grid(x_range: Tuple[float, float]) -> Tensor:
    """A float64 grid of ``x_range`` clipped to [-50, 50] (beyond, every difference here is monotone), with
    step 1e-5 near 0, where a ReLU-like error ``x e^{-alpha x}`` peaks (at ``1/alpha >= 1e-4``); fewer than 32768 points."""
    lo, hi = max(x_range[0], -50.0), min(x_range[1], 50.0)
    near = _NEAR_ZERO[(_NEAR_ZERO >= lo) & (_NEAR_ZERO <= hi)]
    return torch.cat([torch.linspace(lo, hi, _GRID_POINTS, dtype=torch.float64), near])


def max_error(
    reference: Callable[[Tensor], Tensor],
    target: "str | ActivationSpec",
    alpha: float,
    x_range: Tuple[float, float] = FIT_RANGE,
) -> float:
    r""":math:`\max_x |\sigma_\alpha(x) - f(x)|` on a float64 grid of ``x_range`` (clipped to [-50, 50])."""
    spec = activation_spec(target, adaptive=True)
    x = _grid(x_range)
    with torch.no_grad():
        diff = spec.function(x, torch.tensor(alpha, dtype=torch.float64)) - reference(x).to(torch.float64)
    return float(diff.abs().max())


def fit_alpha(
    reference: Callable[[Tensor], Tensor],
    target: "str | ActivationSpec",
    x_range: Tuple[float, float] = FIT_RANGE,
    alpha_range: Tuple[float, float] = ALPHA_RANGE,
) -> Tuple[float, float]:
    """``(alpha, max error)``: the alpha of ``target`` closest to ``reference`` in the max norm, see the notes."""
    spec = activation_spec(target, adaptive=True)
    x = _grid(x_range)
    with torch.no_grad():
        ref = reference(x).to(torch.float64)

    def err(log_a: float) -> float:
        with torch.no_grad():
            return float((spec.function(x, torch.tensor(math.exp(log_a), dtype=torch.float64)) - ref).abs().max())

    lo, hi = math.log(alpha_range[0]), math.log(alpha_range[1])
    grid = [lo + (hi - lo) * i / 80 for i in range(81)]
    errors = [err(g) for g in grid]
    best = min(range(len(grid)), key=errors.__getitem__)
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - golden * (b - a), a + golden * (b - a)
    fc, fd = err(c), err(d)
    for _ in range(48):  # the bracket shrinks to ~1e-10 of its width
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - golden * (b - a)
            fc = err(c)
        else:
            a, c, fc = c, d, fd
            d = a + golden * (b - a)
            fd = err(d)
    candidates = [(errors[best], grid[best]), (fc, c), (fd, d)]
    e, log_a = min(candidates)
    if lo <= 0.0 <= hi:  # alpha = 1 is each family's canonical member (GELU in the normal one): exact if it ties
        e_one = err(0.0)
        if e_one <= e * (1 + 1e-9) + 1e-15:
            return 1.0, e_one
    return math.exp(log_a), e


_FITS: Dict[Tuple[bytes, str], Tuple[float, float]] = {}
_FINGERPRINT_X = torch.linspace(-12.0, 12.0, 97, dtype=torch.float64)


def matched_init(
    kind: Optional[FixedActivation], target: ActivationSpec, function: Optional[Callable[[Tensor], Tensor]] = None
) -> Tuple[float, float]:
    """``(alpha, max error)`` for putting ``target`` in place of ``kind`` (or of ``function``, which computes it).

    The row of :data:`~actadapt.activations.FIXED` when ``target`` is the one it names and no ``function`` is
    given; otherwise :func:`fit_alpha` against ``function`` (a call site's own, e.g. a ``LeakyReLU(0.2)``) or
    ``kind.reference``, cached per pair.
    """
    if function is None and kind is not None and activation_spec(kind.match.target, adaptive=True).name == target.name:
        return kind.match.alpha, kind.match.max_error
    reference = function if function is not None else (kind.reference if kind is not None else None)
    if reference is None:
        raise ValueError("init='match' needs the function being replaced")
    with torch.no_grad():  # the function's values identify it: equal functions share one fit
        fingerprint = reference(_FINGERPRINT_X).to(torch.float64).numpy().round(12).tobytes()
    cache_key = (fingerprint, target.name)
    if cache_key not in _FITS:
        _FITS[cache_key] = fit_alpha(reference, target)
    return _FITS[cache_key]
