"""The cdf registry: lookup, errors, and user-registered families (autograd supplies their gradients)."""

from __future__ import annotations

import math

import pytest
import torch

import actadapt
from actadapt import families
from actadapt.functional import adaptive_activation

BUILT_IN = {"gumbel", "exponential", "logistic", "normal", "laplace", "cauchy"}


def test_registry_holds_the_required_families():
    assert BUILT_IN <= set(actadapt.available_families())
    for name in BUILT_IN:
        assert actadapt.get_family(name).analytic


@pytest.mark.parametrize("alias,name", [("AGumb", "gumbel"), ("Box-Cox-Gumbel", "gumbel"), ("sigmoid", "logistic"),
                                        ("GELU", "normal"), ("EXPONENTIAL", "exponential")])
def test_lookup_is_case_insensitive_and_knows_aliases(alias, name):
    assert actadapt.get_family(alias).name == name


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        actadapt.get_family("weibul")
    message = str(err.value)
    assert "'weibul'" in message
    for name in BUILT_IN:
        assert name in message


def test_family_object_passes_through():
    fam = actadapt.get_family("laplace")
    assert actadapt.get_family(fam) is fam


def test_registering_twice_needs_overwrite():
    families.register_family("test_dup", lambda x, a: torch.sigmoid(a * x), overwrite=True)
    with pytest.raises(ValueError, match="already registered"):
        families.register_family("test_dup", lambda x, a: torch.sigmoid(a * x))
    with pytest.raises(TypeError, match="callable"):
        families.register_family("test_bad", "not a function")


def test_user_family_from_a_plain_function_gets_autograd_gradients():
    # Gompertz-like cdf written by a user with plain torch ops: F(x) = 1 - exp(-(e^{alpha x} - 1))
    fam = families.register_family(
        "test_gompertz", lambda x, a: -torch.expm1(-torch.expm1(a * x)), description="test", overwrite=True
    )
    assert not fam.analytic
    x = torch.linspace(-3, 2, 17, dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    for form in ("bounded", "gated"):
        assert torch.autograd.gradcheck(lambda x, a: adaptive_activation(x, a, "test_gompertz", form), (x, a))
        y = adaptive_activation(x, a, "test_gompertz", form)
        gx, = torch.autograd.grad(y.sum(), x)
        # d/dx of the bounded form is the density alpha e^{alpha x} exp(-(e^{alpha x} - 1))
        t = (a * x).detach()
        density = a.detach() * torch.exp(t) * torch.exp(-torch.expm1(t))
        F = -torch.expm1(-torch.expm1(t))
        expected = density if form == "bounded" else F + x.detach() * density
        torch.testing.assert_close(gx, expected, rtol=1e-12, atol=1e-14)


def test_user_family_with_analytic_gradients_uses_them(eager_backend):
    calls = []

    def grads(x, a):
        calls.append(1)
        return families.logistic_cdf_and_grads(x, a)

    families.register_family("test_logistic_copy", families.logistic_cdf, grads, overwrite=True)
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    a = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    adaptive_activation(x, a, "test_logistic_copy", "gated").sum().backward()
    assert calls, "the analytic backward was not used"
    expected = torch.autograd.grad(adaptive_activation(x, a, "logistic", "gated").sum(), (x,))[0]
    torch.testing.assert_close(x.grad, expected)


@pytest.mark.parametrize("family", sorted(BUILT_IN))
def test_alpha_is_a_scale_or_shape_parameter_that_changes_the_cdf(family):
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    F1 = adaptive_activation(x, torch.tensor(0.5, dtype=torch.float64), family)
    F2 = adaptive_activation(x, torch.tensor(2.0, dtype=torch.float64), family)
    assert (F1 - F2).abs().max() > 1e-2


def test_laplace_and_cauchy_medians_and_tails():
    a = torch.tensor(1.0, dtype=torch.float64)
    x = torch.tensor([0.0, -1e6], dtype=torch.float64)
    assert adaptive_activation(x, a, "laplace")[0] == 0.5
    assert adaptive_activation(x, a, "cauchy")[0] == 0.5
    # heavy tail: F(-t) ~ 1/(pi t), not exponentially small
    assert math.isclose(adaptive_activation(x, a, "cauchy")[1].item(), 1 / (math.pi * 1e6), rel_tol=1e-10)
