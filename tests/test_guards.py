"""Non-finite values stopped at the door (issue 14, module and functional guards): an ``init`` must give a finite,
positive alpha in the module's dtype after the parametrization, and the functional form refuses an alpha that
is negative, infinite or NaN instead of returning NaN."""

from __future__ import annotations

import math
import re

import pytest
import torch

import actadapt
from actadapt import AdaptiveActivation, AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish
from actadapt import functional as AF


# ------------------------------------------------------------------------ module init
@pytest.mark.parametrize(
    "init,parametrization,dtype",
    [
        (1e308, "exp", torch.float32),  # alpha = inf: every output NaN before the guard
        (1e308, "softplus", torch.float32),  # rho overflows float32 (an OverflowError traceback before)
        (1e-320, "exp", torch.float64),  # rounds to alpha = 0 ... in float64 it is a positive subnormal:
        (1e-320, "exp", torch.float32),  # alpha exactly 0
        (1e-320, "softplus", torch.float32),
        (1e5, "exp", torch.float16),  # above float16's max
        (1e-9, "exp", torch.float16),  # below float16's smallest subnormal
    ],
)
def test_init_that_the_dtype_cannot_hold_is_refused(init, parametrization, dtype):
    if dtype == torch.float64 and init == 1e-320:  # representable: accepted, alpha exact to rounding
        m = AdaptiveGumbel(2, init, parametrization=parametrization, dtype=dtype)
        assert (m.alpha > 0).all() and m.alpha[0].item() == pytest.approx(1e-320, rel=1e-3)
        return
    message = re.escape(f"init={init!r} is not a finite, positive alpha in {dtype}") + ".*use an init between"
    with pytest.raises(ValueError, match=message):
        AdaptiveGumbel(2, init, parametrization=parametrization, dtype=dtype)


@pytest.mark.parametrize("cls", [AdaptiveGumbel, AdaptiveReLU, AdaptiveSwish])
def test_large_and_small_inits_that_fit_give_that_alpha_and_finite_outputs(cls):
    x = torch.linspace(-20, 20, 41, dtype=torch.float64)
    for init in (1e-300, 1e-6, 1e3, 1e300):
        m = cls(1, init, dtype=torch.float64)
        assert m.alpha.item() == pytest.approx(init, rel=1e-12)
        if 1e-6 <= init <= 1e3:  # the accuracy contract's range
            assert torch.isfinite(m(x)).all()


def test_lazy_module_checks_init_at_construction_and_after_sizing():
    with pytest.raises(ValueError, match="not a finite, positive alpha in torch.float32"):
        AdaptiveGumbel(None, 1e308)
    m = AdaptiveGumbel(None, 1e300, dtype=torch.float64)
    m(torch.zeros(2, 3, dtype=torch.float64))
    assert m.alpha.shape == (3,)


def test_a_module_cast_to_a_narrower_dtype_fails_at_the_cast_not_with_nan():
    m = AdaptiveReLU(3, 1e6)
    with pytest.raises(ValueError, match=r"alpha is not finite and > 0 in torch.float16 after this cast"):
        m.half()  # exp(log 1e6) is inf in float16
    ok = AdaptiveReLU(3, 10.0).half()  # a cast that keeps alpha in range is fine
    assert ok(torch.ones(2, 3, dtype=torch.float16)).isfinite().all()


def test_a_module_does_not_check_alpha_on_every_call():
    # alpha = exp(rho) > 0 by construction; a NaN rho is a diverged training run, which the loss shows
    m = AdaptiveReLU(3)
    with torch.no_grad():
        m.rho[1] = math.nan
    y = m(torch.ones(2, 3))
    assert y[:, 1].isnan().all() and y[:, [0, 2]].isfinite().all()


# ------------------------------------------------------------------------ functional alpha
@pytest.mark.parametrize("bad", [-1.0, -1e-30, math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("fn", [AF.adaptive_gumbel, AF.adaptive_relu, AF.swish, AF.adaptive_tanh])
def test_functional_refuses_negative_infinite_and_nan_alpha(fn, bad):
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"alpha must be finite and >= 0 .*got"):
        fn(x, torch.tensor(bad))
    alpha = torch.ones(3)
    alpha[1] = bad  # one bad channel is enough
    with pytest.raises(ValueError, match="alpha must be finite"):
        fn(x, alpha)


def test_alpha_zero_is_the_documented_limit_and_finite():
    x = torch.linspace(-30, 5, 36, dtype=torch.float64)
    torch.testing.assert_close(AF.adaptive_gumbel(x, torch.tensor(0.0, dtype=torch.float64)), -torch.expm1(-torch.exp(x)))
    for family in ("gumbel", "exponential", "logistic", "normal", "laplace", "cauchy"):
        for form in ("bounded", "gated", "centred"):
            assert torch.isfinite(AF.adaptive_activation(x, torch.zeros(()), family, form)).all()


def test_device_side_check_is_used_where_a_host_sync_would_cost(monkeypatch):
    """Off the CPU (and while torch.compile traces) the check is torch._assert_async: no host synchronisation.
    Exercised on the CPU by pretending to compile; there the assertion raises at once."""
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    calls = []
    real = torch._assert_async
    monkeypatch.setattr(torch, "_assert_async", lambda *a: (calls.append(a), real(*a)))
    AF._check_alpha_values(torch.ones(3))
    assert len(calls) == 1
    with pytest.raises(RuntimeError, match="alpha must be finite"):
        AF._check_alpha_values(torch.tensor([1.0, -1.0]))


# ------------------------------------------------------------------------ the centred form
def test_adaptive_tanh_is_tanh_at_alpha_one_and_has_correct_gradients():
    x = torch.linspace(-6, 6, 25, dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(AF.adaptive_tanh(x, torch.ones((), dtype=torch.float64)), torch.tanh(x))
    assert torch.autograd.gradcheck(AF.adaptive_tanh, (x, a))
    ref = 1 - 2 * (1 + a * torch.exp(2 * x)) ** (-1 / a)  # the textbook formula, moderate range
    torch.testing.assert_close(AF.adaptive_tanh(x, a), ref)


def test_named_activation_families_imply_their_form():
    assert actadapt.get_family("relu").name == "exponential" and actadapt.get_family("swish").name == "logistic"
    x = torch.randn(3, 4)
    torch.testing.assert_close(AdaptiveActivation("swish", "gated")(x), AdaptiveSwish()(x))
    torch.testing.assert_close(AdaptiveActivation("swish")(x), AdaptiveSwish()(x))
    torch.testing.assert_close(AdaptiveActivation("relu", num_parameters=4)(x), AdaptiveReLU(4)(x))
    torch.testing.assert_close(AdaptiveActivation("gelu")(x), torch.nn.functional.gelu(x))
    with pytest.raises(ValueError, match="'swish' is the gated form of the 'logistic' family; for the bounded form name the family 'logistic'"):
        AdaptiveActivation("swish", "bounded")


def test_the_check_can_be_turned_off_for_hot_loops():
    previous = AF.set_alpha_check(False)
    try:
        assert torch.isnan(AF.adaptive_gumbel(torch.zeros(2), torch.tensor(-1.0))).all()  # the documented cost
    finally:
        AF.set_alpha_check(previous)
    with pytest.raises(ValueError):
        AF.adaptive_gumbel(torch.zeros(2), torch.tensor(-1.0))
