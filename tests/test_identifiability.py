r"""The paper's Theorem 1 (identifiability), shown numerically in float64: distinct alpha give distinct functions.

For the three main activations (adaptive Gumbel, adaptive ReLU, Swish):

* every pair of distinct alphas on a wide grid is separated in sup-distance on a grid of x, by a margin that
  does not vanish, and that distance grows with |a - b|;
* for tiny differences the distance is |a - b| times sup |d sigma / d alpha| > 0 (no flat direction);
* alpha is recovered from the function alone: from the Taylor series the paper's proof uses (the
  coefficient of the first alpha-dependent term), and from a single value sigma(x0), which is strictly
  monotone in alpha.

One per-neuron module evaluates all alphas at once: column j of an (G, n) input is sigma_{alpha_j}.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from actadapt import AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish

pytestmark = pytest.mark.usefixtures("eager_backend")

DT = torch.float64
X = torch.linspace(-30.0, 30.0, 12001, dtype=DT)  # step 0.005
ALPHAS = [0.01, 0.05, 0.2, 0.5, 1.0, 2.0, 5.0, 20.0, 100.0]
CLASSES = [AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish]


def curves(cls, alphas, x=X):
    """(len(x), len(alphas)): column j is sigma_{alphas[j]}(x), through one per-neuron module."""
    alphas = torch.as_tensor(alphas, dtype=DT)
    m = cls(num_parameters=len(alphas), dtype=DT)
    with torch.no_grad():
        m.rho.copy_(alphas.log())
        return m(x[:, None].expand(-1, len(alphas)).contiguous())


def sup_dist(cls, a, b, x=X):
    c = curves(cls, [a, b], x)
    return (c[:, 0] - c[:, 1]).abs().max().item()


@pytest.mark.parametrize("cls", CLASSES)
def test_distinct_alphas_are_separated_in_sup_distance(cls):
    c = curves(cls, ALPHAS)
    for i, j in itertools.combinations(range(len(ALPHAS)), 2):
        d = (c[:, i] - c[:, j]).abs().max().item()
        # the smallest pair distance over this grid is about 0.011 (Gumbel, 0.01 vs 0.05)
        assert d > 1e-2, (cls.__name__, ALPHAS[i], ALPHAS[j], d)
    for i in range(len(ALPHAS)):
        assert (c[:, i] - c[:, i]).abs().max().item() == 0.0  # and only alpha = alpha gives distance 0


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("a", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("direction", [1, -1])
def test_sup_distance_grows_with_alpha_difference(cls, a, direction):
    ratios = [1.001, 1.01, 1.1, 1.5, 2.0, 3.0, 5.0]
    bs = [a * r**direction for r in ratios]
    d = np.array([sup_dist(cls, a, b) for b in bs])
    assert (d > 0).all()
    assert (np.diff(d) > 0).all(), d


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("a", [0.05, 0.5, 1.0, 3.0, 30.0])
def test_small_differences_are_first_order_in_the_alpha_gradient(cls, a):
    # sup|s_a - s_{a+h}| / h -> sup |d s / d alpha| > 0: the map alpha -> sigma_alpha has no flat direction
    h = a * 1e-6
    x = torch.linspace(-30.0, 30.0, 60001, dtype=DT)
    ratio = sup_dist(cls, a, a + h, x) / h
    # d sigma(x_i) / d alpha for every x_i at once: one alpha per x_i (all equal to a), input of shape (1, G)
    m = cls(num_parameters=len(x), dtype=DT, init=a)
    m(x[None]).sum().backward()
    sup_grad = (m.rho.grad / a).abs().max().item()  # d/d alpha = (d/d rho) / alpha
    assert sup_grad > 1e-5  # scales like 1/a^2 for the gated forms (sigma_a(x) = sigma_1(a x) / a)
    assert ratio == pytest.approx(sup_grad, rel=1e-3)


# --------------------------------------------------- recovering alpha from the function (Theorem 1's proof)
def _alpha_from_series(cls, sigma, x):
    if cls is AdaptiveGumbel:
        # z = e^x -> 0: 1 - (1 + a z)^(-1/a) = z - (1 + a) z^2 / 2 + O(z^3)
        z = torch.exp(x)
        return 2 * (z - sigma) / z**2 - 1
    if cls is AdaptiveReLU:
        # x -> 0+: x (1 - e^(-a x)) = a x^2 - a^2 x^3 / 2 + O(x^4)
        return sigma / x**2
    # Swish, x -> 0: x sigmoid(a x) = x / 2 + a x^2 / 4 + O(x^4)
    return 4 * (sigma - x / 2) / x**2


SERIES_POINT = {AdaptiveGumbel: -13.0, AdaptiveReLU: 1e-7, AdaptiveSwish: 1e-4}


@pytest.mark.parametrize("cls", CLASSES)
def test_alpha_recovered_from_the_series_coefficient(cls):
    alphas = [0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0]
    x = torch.tensor([SERIES_POINT[cls]], dtype=DT)
    sigma = curves(cls, alphas, x)[0]
    recovered = _alpha_from_series(cls, sigma, x[0])
    np.testing.assert_allclose(recovered.numpy(), alphas, rtol=1e-3, atol=2e-3 if cls is AdaptiveGumbel else 0)


# x0 where float64 still resolves sigma_alpha(x0) for every alpha in [1e-3, 1e3] (the gated forms saturate
# to ReLU once alpha * x0 >> 1, so x0 is small there)
@pytest.mark.parametrize(
    "cls,x0",
    [(AdaptiveGumbel, 0.0), (AdaptiveGumbel, 2.0), (AdaptiveReLU, 0.01), (AdaptiveSwish, 0.01), (AdaptiveSwish, -0.01)],
)
def test_single_value_is_strictly_monotone_in_alpha_and_inverts(cls, x0):
    grid = torch.logspace(-3, 3, 2001, dtype=DT)
    x = torch.tensor([x0], dtype=DT)
    values = curves(cls, grid, x)[0]
    steps = torch.diff(values)
    assert (steps > 0).all() or (steps < 0).all()  # injective: alpha -> sigma_alpha(x0)
    increasing = bool(steps[0] > 0)
    for true_alpha in [0.003, 0.2, 1.0, 7.5, 400.0]:
        target = curves(cls, [true_alpha], x)[0, 0]
        lo, hi = math.log(1e-3), math.log(1e3)  # bisection on log alpha
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            v = curves(cls, [math.exp(mid)], x)[0, 0]
            if (v < target) == increasing:
                lo = mid
            else:
                hi = mid
        assert math.exp(0.5 * (lo + hi)) == pytest.approx(true_alpha, rel=1e-6)
